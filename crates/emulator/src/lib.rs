//! A LivePerson Conversational Cloud API emulator with a deterministic synthetic data set:
//! "Thrive Air", an airline's customer service, for tests, benchmarks and the demo.
//!
//! It answers the calls lpdrop makes against the real service, with LivePerson's paths, status
//! codes and payload shapes (see `shared/docs/liveperson-api.md` §1, §2.1, §3 and §10):
//!
//! - `GET /api/account/{account}/service/{service}/baseURI.json?version=1.0`: the Domain API,
//!   unauthenticated, answering with the emulator's own bare `host:port` (no scheme, like
//!   LivePerson's bare hostnames).
//! - `POST /messaging_history/api/account/{account}/conversations/search`: Messaging
//!   Interactions search, OAuth 1.0a-verified over the query parameters, with LivePerson's
//!   window rules (required `start`, 10-minute rounding, 92-day span), paging (`offset`,
//!   `limit` ≤ 100, `_metadata.count`), `status`/`skillIds`/`agentIds` filters and
//!   `contentToRetrieve`.
//! - `POST .../conversations/conversation/search`: get by conversation id(s).
//!
//! # Why it is built this way
//!
//! - **No storage.** Conversation `i` is computed from `(seed, i)` with SplitMix64 whenever it
//!   is asked for. Start times sit on a fixed grid (one conversation per `86_400_000 /
//!   per_day` ms slot, jittered inside its slot), so the conversations of any window are found
//!   by arithmetic, counts without filters are O(1), and a year of data costs no memory.
//!   Filters look only at a cheap per-conversation "skeleton" drawn from its own hash stream.
//! - **Deterministic.** The same `(seed, per_day, index)` always gives byte-identical JSON, so
//!   a test can compare what the client wrote with [`Dataset::conversation`] directly.
//! - **Realistically awkward.** Records reproduce the vendor's quirks (string vs number ids,
//!   `"undefined"`/`"null"` placeholders, SDE numbers as strings, `csat` vs `csatRate`, rich
//!   content as a JSON string, non-ASCII text), because that is what the client's lenient
//!   decoding has to survive in production.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use lpdrop_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::default(), "127.0.0.1:0".parse().unwrap()).await?;
//! let domain = emulator.domain_url(); // e.g. "http://127.0.0.1:41234", used as LP_DOMAIN
//! # let _ = domain;
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod catalog;
mod dataset;
mod record;
mod rng;
mod search;
mod server;

use lpdrop_liveperson::oauth1::ApiKey;

pub use dataset::{Dataset, ORIGIN_MS};
pub use search::{
    CONTENT_KEYS, DEFAULT_CONTENT, DEFAULT_LIMIT, MAX_LIMIT, MAX_SPAN_MS, WINDOW_ROUNDING_MS,
};
pub use server::Emulator;

/// How an emulator instance behaves and what data it serves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Seed of the synthetic data set; a different seed gives different conversations.
    pub seed: u64,
    /// Conversations per UTC day.
    pub per_day: u32,
    /// The only account the emulator knows; any other answers 401.
    pub account_id: String,
    /// The one API key whose OAuth 1.0a signatures are accepted.
    pub api_key: ApiKey,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            seed: 42,
            per_day: 2000,
            account_id: "12345678".to_string(),
            api_key: ApiKey {
                app_key: "emulator".to_string(),
                app_secret: "emulator".to_string(),
                access_token: "emulator".to_string(),
                access_token_secret: "emulator".to_string(),
            },
        }
    }
}
