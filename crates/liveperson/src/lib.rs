//! LivePerson Conversational Cloud API client.
//!
//! - [`client`]: Domain API discovery, Messaging Interactions and Engagement History search,
//!   get-by-id, account configuration lists, retries, the account-wide request budget, and
//!   paging a [`Window`] to its end.
//! - [`auth`]: the credentials: API key (OAuth 1.0a, [`oauth1`]), login bearer, OAuth 2.0 client
//!   credentials.
//! - [`records`]: typed, lenient conversation records; [`lenient`]: the scalar rules behind them.
//! - [`sde`]: engagement attributes (SDEs), shared by conversation and chat records.
//! - [`chat_records`]: Engagement History (legacy chat) records.
//! - [`account_records`]: users (agents), skills and agent groups.
//! - [`page`]: page envelopes, and decoding each record on its own so that a bad one can be
//!   quarantined without losing its page.
//! - [`webhook`]: the Connector API webhooks: signatures and notification bodies.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use lpdrop_liveperson::{Client, ClientConfig, SearchFilters, Window, oauth1::ApiKey};
//! let key = ApiKey {
//!     app_key: "emulator".into(),
//!     app_secret: "emulator".into(),
//!     access_token: "emulator".into(),
//!     access_token_secret: "emulator".into(),
//! };
//! let client = Client::connect(ClientConfig::new("http://127.0.0.1:8080", "12345678", key)).await?;
//! let window = Window::parse("2026-11-20", "2026-11-21")?;
//! let page = client.search_page(window, &SearchFilters::default(), 0).await?;
//! # Ok(()) }
//! ```

pub mod account_records;
pub mod auth;
pub mod chat_records;
pub mod client;
pub mod lenient;
mod limiter;
pub mod oauth1;
pub mod page;
pub mod records;
pub mod sde;
pub mod webhook;
pub mod window;

pub use auth::Auth;
pub use chat_records::ChatRecord;
pub use client::{
    AccountConfigAnswer, AccountEntity, Client, ClientConfig, Error, FetchStats, FetchedPage,
    Filters, RequestBudget, RetryPolicy, SearchFilters,
};
pub use limiter::SharedSchedule;
pub use records::Conversation;
pub use window::Window;
