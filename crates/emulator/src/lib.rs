//! A LivePerson Conversational Cloud API emulator with a deterministic synthetic data set:
//! "Thrive Air", an airline's customer service, for tests, benchmarks and the demo.
//!
//! It answers the calls lpdrop makes against the real service, with LivePerson's paths, status
//! codes and payload shapes (see `shared/docs/liveperson-api.md` §1–§5 and §10):
//!
//! - `GET /api/account/{account}/service/{service}/baseURI.json?version=1.0`: the Domain API,
//!   unauthenticated, answering with the emulator's own bare `host:port` (no scheme, like
//!   LivePerson's bare hostnames).
//! - `POST /messaging_history/api/account/{account}/conversations/search`: Messaging
//!   Interactions search with LivePerson's window rules (required `start`, 10-minute rounding,
//!   92-day span), paging (`offset`, `limit` ≤ 100, `_metadata.count`),
//!   `status`/`skillIds`/`agentIds` filters and `contentToRetrieve`.
//! - `POST .../conversations/conversation/search`: get by conversation id(s) (≤ 100).
//! - `POST .../conversations/consumer/search`: validated (`consumer` and `status` required);
//!   answers an empty page, as consumer ids are not indexed.
//! - `POST /interaction_history/api/account/{account}/interactions/search`: Engagement History
//!   search over synthetic legacy chats (1-month window, ended chats only, `skillIds`,
//!   `agentIds`, `agentGroupIds`, `engagementId`, `interactive`...).
//! - `GET /api/account/{account}/configuration/le-users/{users,skills,agentGroups}`: account
//!   configuration from the catalog (`v` required, `include_deleted`, `select`, `If-Match` →
//!   304 with `ac-revision`).
//! - `POST /api/account/{account}/login?v=1.3`, `.../refresh`, `.../logout`: the Login Service
//!   (bearer token, `Session_id` cookie, `csrf`, `sessionTTl`).
//! - `POST /sentinel/api/account/{account}/app/token?v=1.0` (and `/sentinel/api/v2/...`): OAuth
//!   2.0 client credentials, answering a JWT access token.
//!
//! Data calls accept an OAuth 1.0a signature (verified over the query parameters) or a live
//! bearer token (from the login or token endpoint); anything else is 401.
//!
//! [`Faults`] adds faults and limits ([`faults`] has the spec syntax), and
//! [`EmulatorConfig::vendor_fixtures`] serves the vendor's example payloads as they are.
//!
//! It also *sends*: [`WebhookSender`] POSTs signed Connector API webhook notifications
//! (`X-LivePerson-Signature`, conversation changes and messaging events) of the same synthetic
//! conversations to a listener, with LivePerson's time-to-live retries, order within a
//! conversation only, injectable [`WebhookFaults`] (redeliveries, delays, shuffling, aborted
//! connections) and an optional ledger of what was acknowledged; see [`webhooks`]. The
//! notifications agree with the Messaging Interactions records the API serves (ids, texts,
//! `seq`, statuses), so a listener's output can be checked against the batch path.
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

mod account;
mod catalog;
mod chat;
mod dataset;
pub mod dump;
pub mod faults;
mod fixtures;
mod record;
mod rng;
mod search;
mod server;
mod sessions;
pub mod webhooks;

use std::fmt;
use std::time::Duration;

use lpdrop_liveperson::oauth1::ApiKey;

pub use account::ACCOUNT_REVISION;
pub use dataset::{Dataset, ORIGIN_MS};
pub use faults::{Faults, Trigger};
pub use search::{
    CONTENT_KEYS, DEFAULT_CONTENT, DEFAULT_LIMIT, MAX_CHAT_SPAN_MS, MAX_LIMIT, MAX_SPAN_MS,
    WINDOW_ROUNDING_MS,
};
pub use server::{Emulator, EmulatorStats};
pub use webhooks::{WebhookConfig, WebhookFaults, WebhookReport, WebhookSender};

/// An account configuration list as the emulator serves it with `include_deleted=true`:
/// `users`, `skills` or `agentGroups` (`None` for any other name).
pub fn account_config_list(entity: &str) -> Option<Vec<serde_json::Value>> {
    account::Entity::parse(entity).map(|e| account::list(e, true))
}

/// A name and a secret (a login's username and password, an OAuth client's id and secret).
/// `Debug` does not show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub id: String,
    pub secret: String,
}

impl Credentials {
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        Credentials {
            id: id.into(),
            secret: secret.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

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
    /// Legacy chats per UTC day (Engagement History).
    pub chats_per_day: u32,
    /// The one user the Login Service accepts (username, password).
    pub login: Credentials,
    /// The one OAuth 2.0 client the token endpoint accepts (client id, client secret).
    pub oauth_client: Credentials,
    /// Lifetime of a login session (`sessionTTl`) without refresh.
    pub session_ttl: Duration,
    /// Lifetime of a Sentinel access token.
    pub token_ttl: Duration,
    /// Faults and limits of the data endpoints (none by default).
    pub faults: Faults,
    /// Serve the vendor's example payloads (`tests/fixtures/liveperson-docs/`) as they are,
    /// instead of the synthetic data set:
    ///
    /// - MI search: the first page of a window is one of the two MI examples, picked by the
    ///   UTC day of the window's rounded start (day number modulo 2: `msghist-search-example`,
    ///   then `msghist-search-example-sdes`); deeper pages are empty with the same `count`.
    /// - EH search: likewise with the three EH examples (`enghist-search-example`,
    ///   `-richcontent`, `-paging-sdes`: day modulo 3); by `engagementId`, the example holding
    ///   it (or an empty page).
    /// - MI get-by-id: the first MI example holding a requested id (or an empty page).
    /// - Users, skills, agent groups: the one-entity example inside a JSON array.
    ///
    /// Requests are authenticated and validated as usual; faults still apply.
    pub vendor_fixtures: bool,
    /// Answer a search with no hits with 204 and an empty body (instead of 200, `count: 0`):
    /// LivePerson documents both.
    pub empty_as_no_content: bool,
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
            chats_per_day: 500,
            login: Credentials::new("emulator", "emulator"),
            oauth_client: Credentials::new("emulator", "emulator"),
            session_ttl: Duration::from_secs(8 * 3600),
            token_ttl: Duration::from_secs(3600),
            faults: Faults::default(),
            vendor_fixtures: false,
            empty_as_no_content: false,
        }
    }
}
