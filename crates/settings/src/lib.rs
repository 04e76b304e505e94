//! Setting values with one grammar each, used by every flag, config key and crate:
//!
//! - [`config_file`]: the TOML configuration file, the third layer after flags and the
//!   environment, and how values are shown (secrets hidden);
//! - [`duration`]: `250ms`, `90s`, `5m`, `24h`, `7d`, `1h 30m` (humantime's grammar), for
//!   every duration flag, environment variable and config-file key;
//! - [`url`]: one redactor for URLs shown to people (user-info passwords and secret query
//!   parameters), and one loopback rule for where plain http is allowed;
//! - [`source`]: which LivePerson API a drop or job reads.

pub mod config_file;
pub mod duration;
pub mod source;
pub mod url;

pub use duration::{Duration, parse_duration};
pub use source::Source;
pub use url::{is_loopback_host, is_loopback_url, redact_url, require_tls_unless_loopback};
