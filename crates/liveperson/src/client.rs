//! The HTTP client: Domain API discovery, authentication (OAuth 1.0a, login bearer, OAuth 2.0
//! client credentials), one account-wide request budget, retries, and paging windows of
//! Messaging Interactions and Engagement History search results to their end, with truncated
//! (`isPartial`) records fetched again in full. Also the account configuration lists (users,
//! skills, agent groups).
//!
//! # Request budget
//!
//! Every request of a [`Client`] and of its clones (search pages, get-by-id, account
//! configuration, Domain API lookups, logins) waits for one of [`ClientConfig::concurrency`]
//! slots, held until its answer is in (not while the answer is checked), and for a token of one
//! shared pace. LivePerson publishes no rate: the pace is found from its 429s (additive
//! increase, multiplicative decrease; see `limiter.rs`). There is none until the first 429,
//! unless [`ClientConfig::max_requests_per_second`] is set: then it starts there and never goes
//! above it. A 429 backs off the request that got it (from 1 s, doubling) and lowers the pace
//! of all; one that carries `Retry-After` also holds back every request for that long.
//!
//! # Retries
//!
//! 4xx answers fail at once, except 429 (waits from [`RetryPolicy::throttle_delay`], doubling,
//! with jitter, at least `Retry-After`) and a 401 on a renewable token (the token is renewed
//! once). 5xx answers, connection errors, timeouts, bodies cut short and pages reporting
//! partial shard results are retried after 5, 10, 15 s, then 2, 4, 8... minutes (scaled by
//! [`RetryPolicy::server_error_delay`]), but no wait is longer than [`RetryPolicy::max_delay`]
//! (60 s by default). With the defaults (6 attempts) a request that keeps failing is tried
//! after 5, 10, 15, 60 and 60 s (each up to 25% more, for jitter), about 2.5 minutes in all;
//! a queued job then retries as a whole after the worker's `--retry-backoff`.
//! When the attempts run out, the error names the request (API, window, offset) and the last
//! thing that went wrong.
//!
//! # Order of pages
//!
//! [`Client::fetch_window`] and [`Client::fetch_chat_window`] fetch several sub-windows and
//! pages at once, yet hand pages to the consumer in a fixed order: by sub-window, then by
//! offset. The pages of one sub-window are contiguous.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, ready};
use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use crate::auth::Auth;
use crate::auth::{self, Session};
use crate::lenient::{Bool, Text};
use crate::limiter::{Limiter, Outcome};
use crate::oauth1::{self, ApiKey, Nonce};
use crate::page::{parse_entity_list, parse_envelope};
use crate::window::{MAX_CHAT_SEARCH_SPAN_MS, MAX_SEARCH_SPAN_MS, ROUNDING_MS, Window};

/// LivePerson's public Domain API.
pub const DEFAULT_DOMAIN: &str = "https://api.liveperson.net";
/// Largest page the search accepts.
pub const MAX_PAGE_SIZE: u32 = 100;
/// `offset + limit` past which an Elasticsearch-backed search may refuse to page; windows with
/// more hits are split instead of paged deeper (API doc §3.5).
pub const DEFAULT_MAX_HITS_PER_WINDOW: u64 = 10_000;
/// Most conversation ids one get-by-id call takes (§3.1).
pub const MAX_IDS_PER_CALL: usize = 100;

/// Pages fetched ahead of the one the consumer waits for, per request slot. Pages are handed
/// over in order, so a page that waits out a 429's back-off (at least 1 s) holds the others
/// back; 8 per slot (32 with the default 4, about 1.6 s at 20 requests/s) lets the slots go on
/// fetching meanwhile. At most that many answers wait in memory, and only when the consumer is
/// slower than the API or one page is late.
const LOOKAHEAD_PER_SLOT: usize = 8;

/// Every node the MI search can return, so that nothing is left out of a drop (API doc §3.4:
/// sending the list means listing the defaults too).
pub const CONTENT_TO_RETRIEVE: &[&str] = &[
    "campaign",
    "messageRecords",
    "agentParticipants",
    "agentParticipantsLeave",
    "agentParticipantsActive",
    "consumerParticipants",
    "transfers",
    "interactions",
    "messageScores",
    "messageStatuses",
    "conversationSurveys",
    "coBrowseSessions",
    "summary",
    "sdes",
    "unAuthSdes",
    "monitoring",
    "dialogs",
    "responseTime",
    "skillChanges",
    "intents",
    "uniqueIntents",
    "latestAgentSurvey",
    "previouslySubmittedAgentSurveys",
];

/// What went wrong talking to LivePerson. Messages name the request, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid LivePerson domain {url:?}: {reason}")]
    Config { url: String, reason: String },
    #[error("{request}: HTTP {status}: {body}")]
    Status {
        request: String,
        status: u16,
        body: String,
    },
    #[error("{request}: {message}")]
    Transport { request: String, message: String },
    #[error("{request}: {reason}")]
    Response { request: String, reason: String },
    #[error("{request}: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        request: String,
        attempts: u32,
        last: String,
    },
}

impl Error {
    /// 429, 5xx, connection problems and unreadable bodies may succeed on another try.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            Error::Transport { .. } | Error::Response { .. } => true,
            Error::Config { .. } | Error::RetriesExhausted { .. } => false,
        }
    }

    /// True when no later attempt can succeed without a person changing something: the API
    /// refused the request (4xx other than 408 and 429: a rejected key, a missing permission,
    /// a bad request) or the settings are unusable. A job that meets one ends at once instead
    /// of being retried until it is dead.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            Error::Config { .. } => true,
            Error::Transport { .. } | Error::Response { .. } | Error::RetriesExhausted { .. } => {
                false
            }
        }
    }

    /// What a person should check for a permanent error, if there is something specific.
    pub fn hint(&self) -> Option<&'static str> {
        match self.status() {
            Some(401) => Some(
                "LivePerson rejected the credentials: check LP_APP_KEY, LP_APP_SECRET, \
                 LP_ACCESS_TOKEN and LP_ACCESS_TOKEN_SECRET (or LP_CLIENT_ID and \
                 LP_CLIENT_SECRET) of the worker",
            ),
            Some(403) => Some(
                "LivePerson refused access: check that the API key has the permissions of the \
                 API it reads (Messaging Interactions, Engagement History, account configuration) \
                 for this account",
            ),
            _ => None,
        }
    }

    /// What went wrong, without the request's name (which [`Error::RetriesExhausted`] gives
    /// once, not twice).
    fn cause(&self) -> String {
        match self {
            Error::Status { status, body, .. } => format!("HTTP {status}: {body}"),
            Error::Transport { message, .. } => message.clone(),
            Error::Response { reason, .. } => reason.clone(),
            Error::Config { .. } | Error::RetriesExhausted { .. } => self.to_string(),
        }
    }

    /// The HTTP status of an error answer (`None` for other errors).
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// How failed requests are retried (vendor guidance, API doc §0 and §6).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First wait after a 429; doubles per attempt (LivePerson: at least 1 s).
    pub throttle_delay: Duration,
    /// Wait after a 5xx or connection error, times the attempt number for the first three
    /// (LivePerson: 5, 10, 15 s), then 24 times it, doubling (2, 4, 8 min for 5 s), each capped
    /// at [`RetryPolicy::max_delay`]: by default 5, 10, 15, 60, 60 s.
    pub server_error_delay: Duration,
    /// Least wait after a 429 from the login service (LivePerson: 5 s).
    pub login_throttle_delay: Duration,
    /// No single wait is longer than this (`Retry-After` included).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            throttle_delay: Duration::from_secs(1),
            server_error_delay: Duration::from_secs(5),
            login_throttle_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Every delay divided by `factor` (for tests and benchmarks against the emulator).
    pub fn scaled_down(mut self, factor: u32) -> Self {
        let factor = factor.max(1);
        self.throttle_delay /= factor;
        self.server_error_delay /= factor;
        self.login_throttle_delay /= factor;
        self.max_delay /= factor;
        self
    }

    fn delay(&self, attempt: u32, error: &Error, retry_after: Option<Duration>) -> Duration {
        let attempt = attempt.max(1);
        let base = match error {
            Error::Status { status: 429, .. } => self
                .throttle_delay
                .saturating_mul(2u32.saturating_pow(attempt - 1)),
            _ if attempt <= 3 => self.server_error_delay.saturating_mul(attempt),
            _ => self
                .server_error_delay
                .saturating_mul(24)
                .saturating_mul(2u32.saturating_pow(attempt - 4)),
        };
        // Jitter (up to +25%) keeps concurrent requests from retrying in lockstep.
        let unit = (uuid::Uuid::new_v4().as_u128() & 0xffff) as f64 / 65535.0;
        let jitter = base.mul_f64(0.25 * unit);
        base.saturating_add(jitter)
            .max(retry_after.unwrap_or_default())
            .min(self.max_delay)
    }
}

/// Everything the client needs to reach one account.
#[derive(Clone)]
pub struct ClientConfig {
    /// Domain API base URL (`LP_DOMAIN`); its scheme is used for every service host.
    pub domain: String,
    pub account_id: String,
    /// The API key (OAuth 1.0a), used unless [`ClientConfig::auth`] is set.
    pub api_key: ApiKey,
    /// How to authenticate, when not with `api_key`.
    pub auth: Option<Auth>,
    /// The required `source` query parameter (at most 20 characters).
    pub source: String,
    pub page_size: u32,
    /// Requests in flight at once, across every request of the client and its clones.
    pub concurrency: usize,
    /// Requests per second across the client and its clones at most (a token bucket): the pace
    /// starts there, a 429 lowers it, and it climbs back to it. `None`: no pace until the first
    /// 429, then one found from the 429s. LivePerson publishes no number; it answers 429 when
    /// an account asks too much.
    pub max_requests_per_second: Option<f64>,
    /// Requests the pace lets through at once after idling (at least 1).
    pub rate_burst: u32,
    /// Time limit of one request, answer included.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub max_hits_per_window: u64,
    /// A request budget to share with other clients of the same account, instead of a fresh
    /// one made from `concurrency`, `max_requests_per_second` and `rate_burst` (which the
    /// shared budget was made from). See [`RequestBudget`].
    pub budget: Option<RequestBudget>,
}

/// One account's request budget: its request slots and its pace (see [`crate::client`]'s
/// notes on rate limits). Every clone of a [`Client`] shares its budget; a worker also gives
/// the same one to every job of an account, so that `--api-concurrency` and `--api-max-rps`
/// hold for the whole process, and a pace found from the API's 429s by one job carries over
/// to the next instead of being found again.
#[derive(Clone)]
pub struct RequestBudget(Arc<Limiter>);

impl RequestBudget {
    /// A fresh budget with the configuration's slots, rate ceiling and burst.
    pub fn new(config: &ClientConfig) -> Self {
        RequestBudget(Arc::new(Limiter::new(
            config.concurrency,
            config.max_requests_per_second,
            config.rate_burst,
        )))
    }

    /// Whether two handles are the same budget.
    pub fn same_as(&self, other: &RequestBudget) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Sharing the account's pace with other processes (the worker's pace board): the pace
    /// this budget cut itself to on a 429 since the last call, if it did.
    pub fn take_cut(&self) -> Option<f64> {
        self.0.take_cut()
    }

    /// Takes `rate` requests per second, cut to by another process of the account, as this
    /// budget's pace from now on.
    pub fn adopt_rate(&self, rate: f64) {
        self.0.adopt(rate)
    }

    /// `members` processes, this one included, share the account: this budget keeps its
    /// share of the request slots and of the pace (and of `--api-max-rps`).
    pub fn share_with(&self, members: u32) {
        self.0.share(members)
    }

    /// Spaces this budget's requests on `schedule`, shared with the other processes of the
    /// account, whenever others share it ([`RequestBudget::share_with`]) and a pace is found.
    pub fn set_shared_schedule(&self, schedule: Arc<dyn crate::limiter::SharedSchedule>) {
        self.0.set_schedule(schedule)
    }

    /// The pace now, requests per second (`None`: no 429 seen and no limit configured).
    pub fn rate(&self) -> Option<f64> {
        self.0.rate()
    }
}

impl fmt::Debug for RequestBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBudget").finish_non_exhaustive()
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ClientConfig");
        d.field("domain", &self.domain)
            .field("account_id", &self.account_id);
        match &self.auth {
            Some(auth) => d.field("auth", auth),
            None => d.field("api_key", &self.api_key),
        };
        d.field("source", &self.source)
            .field("page_size", &self.page_size)
            .field("concurrency", &self.concurrency)
            .field("max_requests_per_second", &self.max_requests_per_second)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration with an API key (OAuth 1.0a) and the defaults.
    pub fn new(domain: impl Into<String>, account_id: impl Into<String>, api_key: ApiKey) -> Self {
        ClientConfig {
            domain: domain.into(),
            account_id: account_id.into(),
            api_key,
            auth: None,
            source: "lpdrop".into(),
            page_size: MAX_PAGE_SIZE,
            concurrency: 4,
            max_requests_per_second: None,
            rate_burst: 1,
            request_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            max_hits_per_window: DEFAULT_MAX_HITS_PER_WINDOW,
            budget: None,
        }
    }

    /// A configuration with any [`Auth`] and the defaults.
    pub fn with_auth(domain: impl Into<String>, account_id: impl Into<String>, auth: Auth) -> Self {
        let mut config = Self::new(domain, account_id, ApiKey::default());
        config.auth = Some(auth);
        config
    }

    /// The credentials in use: [`ClientConfig::auth`], or else the API key.
    pub fn effective_auth(&self) -> Auth {
        self.auth
            .clone()
            .unwrap_or_else(|| Auth::OAuth1(self.api_key.clone()))
    }
}

/// Filters of a Messaging Interactions search beyond the time window. [`Filters`] adds agent
/// ids; every search function takes either.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilters {
    pub skill_ids: Vec<i64>,
    pub status: Vec<String>,
}

impl SearchFilters {
    /// These filters plus `agentIds` (the assigned agent).
    pub fn with_agent_ids(&self, agent_ids: Vec<String>) -> Filters {
        Filters {
            agent_ids,
            ..Filters::from(self)
        }
    }
}

/// Every search filter the client sends.
///
/// - Messaging Interactions: `skillIds` (any skill held during the conversation), `status`
///   (`OPEN`, `CLOSE`) and `agentIds` (the assigned agent).
/// - Engagement History: `skillIds` and `agentIds`; `status` does not apply (it returns ended
///   chats only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub skill_ids: Vec<i64>,
    pub status: Vec<String>,
    pub agent_ids: Vec<String>,
}

impl From<&SearchFilters> for Filters {
    fn from(f: &SearchFilters) -> Self {
        Filters {
            skill_ids: f.skill_ids.clone(),
            status: f.status.clone(),
            agent_ids: Vec::new(),
        }
    }
}

impl From<SearchFilters> for Filters {
    fn from(f: SearchFilters) -> Self {
        Filters::from(&f)
    }
}

impl From<&Filters> for Filters {
    fn from(f: &Filters) -> Self {
        f.clone()
    }
}

/// One raw search page and the sub-window it answers.
#[derive(Debug, Clone)]
pub struct FetchedPage {
    pub window: Window,
    pub offset: u64,
    pub body: Bytes,
}

/// Counts from fetching one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Sub-windows paged (after halving the busy ones).
    pub windows: u64,
    pub pages: u64,
    /// Sum of `_metadata.count` over the sub-windows.
    pub reported_hits: u64,
}

/// An account configuration list (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEntity {
    Users,
    Skills,
    AgentGroups,
}

impl AccountEntity {
    fn path(self) -> &'static str {
        match self {
            AccountEntity::Users => "users",
            AccountEntity::Skills => "skills",
            AccountEntity::AgentGroups => "agentGroups",
        }
    }
}

/// An account configuration answer.
#[derive(Debug, Clone)]
pub struct AccountConfigAnswer {
    /// The JSON array of entities; empty when `not_modified`.
    pub body: Bytes,
    /// The `ac-revision` (or `ETag`) header: pass it as `if_match` next time.
    pub revision: Option<String>,
    /// 304: nothing changed since the revision given.
    pub not_modified: bool,
}

/// The two search APIs, which page the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Messaging,
    Chat,
}

impl Api {
    fn service(self) -> &'static str {
        match self {
            Api::Messaging => "msgHist",
            Api::Chat => "engHistDomain",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Api::Messaging => "MI search",
            Api::Chat => "EH search",
        }
    }

    fn max_span_ms(self) -> i64 {
        match self {
            Api::Messaging => MAX_SEARCH_SPAN_MS,
            Api::Chat => MAX_CHAT_SEARCH_SPAN_MS,
        }
    }

    fn records_key(self) -> &'static str {
        match self {
            Api::Messaging => "conversationHistoryRecords",
            Api::Chat => "interactionHistoryRecords",
        }
    }
}

#[derive(Debug, Deserialize)]
struct DomainAnswer {
    #[serde(rename = "baseURI")]
    base_uri: String,
}

/// One request, as the retry loop sends it.
struct Call {
    method: Method,
    /// Without the query.
    url: String,
    query: Vec<(String, String)>,
    /// Content type and body.
    body: Option<(&'static str, String)>,
    headers: Vec<(&'static str, String)>,
    /// Carries the client's credentials (everything but the Domain API and token endpoints).
    signed: bool,
    /// Names the request in errors.
    what: String,
    /// A 2xx body that fails this is retried (cut short, partial shards...).
    check: fn(&[u8]) -> Result<(), String>,
    /// Least wait after a 429.
    throttle_floor: Duration,
    /// Error messages may quote the answer (not for the login and token endpoints).
    quote_body: bool,
}

impl Call {
    fn new(method: Method, url: String, what: String) -> Self {
        Call {
            method,
            url,
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
            signed: true,
            what,
            check: check_any,
            throttle_floor: Duration::ZERO,
            quote_body: true,
        }
    }

    fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    fn json(mut self, body: String) -> Self {
        self.body = Some(("application/json", body));
        self
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    auth: Auth,
    origin: Origin,
    /// `scheme://authority` of the Domain API.
    domain_base: String,
    msg_hist: OnceLock<String>,
    /// Service name → base URL, from the Domain API.
    services: Mutex<HashMap<String, String>>,
    limiter: Arc<Limiter>,
    session: tokio::sync::Mutex<Option<Session>>,
}

/// A connected client for one account: service hosts resolved, HTTP pool ready. Clones share
/// the connection pool, the request budget and the token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("msg_hist", &self.msg_hist_url())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Client {
    /// Validates the configuration and resolves the `msgHist` host through the Domain API
    /// (other services are resolved on first use).
    pub async fn connect(config: ClientConfig) -> Result<Client, Error> {
        let bad = |reason: String| Error::Config {
            url: config.domain.clone(),
            reason,
        };
        if config.source.is_empty() || config.source.chars().count() > 20 {
            return Err(bad(format!(
                "the source parameter must be 1 to 20 characters, got {:?}",
                config.source
            )));
        }
        if config.page_size == 0 || config.page_size > MAX_PAGE_SIZE {
            return Err(bad(format!(
                "the page size must be 1 to {MAX_PAGE_SIZE}, got {}",
                config.page_size
            )));
        }
        if let Some(rate) = config.max_requests_per_second
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(bad(format!(
                "the request rate must be a positive number, got {rate}"
            )));
        }
        let (origin, authority) = Origin::parse(&config.domain)?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(15).min(config.request_timeout))
            .user_agent(concat!("lpdrop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?;
        let domain_base = format!("{}://{}", origin.scheme, authority);
        let client = Client {
            inner: Arc::new(Inner {
                http,
                auth: config.effective_auth(),
                limiter: config
                    .budget
                    .clone()
                    .unwrap_or_else(|| RequestBudget::new(&config))
                    .0,
                config,
                origin,
                domain_base,
                msg_hist: OnceLock::new(),
                services: Mutex::new(HashMap::new()),
                session: tokio::sync::Mutex::new(None),
            }),
        };
        let msg_hist = client.service_url("msgHist").await?;
        let _ = client.inner.msg_hist.set(msg_hist);
        Ok(client)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Base URL of the Messaging Interactions host, e.g. `https://va.msghist.liveperson.net`.
    pub fn msg_hist_url(&self) -> &str {
        self.inner.msg_hist.get().map_or("", String::as_str)
    }

    /// The base URL of a service (`msgHist`, `engHistDomain`, `accountConfigReadOnly`,
    /// `agentVep`, `sentinel`...), looked up once through the Domain API.
    pub async fn service_url(&self, service: &str) -> Result<String, Error> {
        if let Some(url) = lock(&self.inner.services).get(service) {
            return Ok(url.clone());
        }
        let account = &self.inner.config.account_id;
        let mut call = Call::new(
            Method::GET,
            format!(
                "{}/api/account/{account}/service/{service}/baseURI.json",
                self.inner.domain_base
            ),
            format!("Domain API lookup of {service} for account {account}"),
        )
        .query(&[("version", "1.0")]);
        call.signed = false;
        let answer = self.execute(&call).await?;
        let parsed: DomainAnswer =
            serde_json::from_slice(&answer.body).map_err(|e| Error::Response {
                request: call.what.clone(),
                reason: format!("unexpected answer ({e}): {}", snippet(&answer.body)),
            })?;
        let url = self.inner.origin.service_url(&parsed.base_uri)?;
        lock(&self.inner.services).insert(service.to_string(), url.clone());
        Ok(url)
    }

    // ---- Messaging Interactions ------------------------------------------------------------

    /// Checks that the key works for this account: one search page of the last hour, which
    /// needs the key and the Messaging Interactions permission, exactly what a sync needs.
    pub async fn check_key(&self) -> Result<(), Error> {
        let now = chrono::Utc::now().timestamp_millis();
        let window = Window::try_new(now - 3_600_000, now).map_err(|e| Error::Config {
            url: self.inner.config.domain.clone(),
            reason: e.to_string(),
        })?;
        self.search_page(window, &SearchFilters::default(), 0)
            .await
            .map(|_| ())
    }

    /// Fetches one Messaging Interactions search page, retrying what may succeed on another
    /// try; records flagged `info.isPartial` are replaced by their full version (get-by-id).
    pub async fn search_page(
        &self,
        window: Window,
        filters: impl Into<Filters>,
        offset: u64,
    ) -> Result<Bytes, Error> {
        let filters = filters.into();
        let page = self
            .search_once(Api::Messaging, window, &filters, offset)
            .await?;
        self.complete_page(Api::Messaging, window, page).await
    }

    /// Fetches every page of `window` and sends them to `out` in order of sub-window and
    /// offset (see the module documentation), partial records completed.
    ///
    /// The window is cut into sub-windows of at most `max_span_ms` (and at most the API's 3
    /// months); a sub-window with more hits than `max_hits_per_window` is halved until it
    /// fits, so paging never goes too deep. When `out` closes, fetching stops quietly.
    pub async fn fetch_window(
        &self,
        window: Window,
        filters: impl Into<Filters>,
        max_span_ms: i64,
        out: mpsc::Sender<FetchedPage>,
    ) -> Result<FetchStats, Error> {
        self.fetch_windowed(Api::Messaging, window, filters.into(), max_span_ms, out)
            .await
    }

    /// Full records by conversation id (`conversations/conversation/search`), at most 100 ids
    /// per call: one page per call, with every `contentToRetrieve` node and `v=2`.
    pub async fn conversations_by_ids(&self, ids: &[String]) -> Result<Vec<Bytes>, Error> {
        let mut pages = Vec::with_capacity(ids.len().div_ceil(MAX_IDS_PER_CALL));
        for chunk in ids.chunks(MAX_IDS_PER_CALL) {
            pages.push(self.by_ids_once(chunk).await?);
        }
        Ok(pages)
    }

    // ---- Engagement History ------------------------------------------------------------------

    /// Fetches one Engagement History search page (ended chats whose start lies in `window`,
    /// at most one month), partial records completed (a search by `engagementId`).
    pub async fn search_chat_page(
        &self,
        window: Window,
        filters: impl Into<Filters>,
        offset: u64,
    ) -> Result<Bytes, Error> {
        let filters = filters.into();
        let page = self
            .search_once(Api::Chat, window, &filters, offset)
            .await?;
        self.complete_page(Api::Chat, window, page).await
    }

    /// [`Client::fetch_window`] for the Engagement History API: sub-windows of at most
    /// `max_span_ms` and one month, pages of `interactionHistoryRecords`, in the same order.
    pub async fn fetch_chat_window(
        &self,
        window: Window,
        filters: impl Into<Filters>,
        max_span_ms: i64,
        out: mpsc::Sender<FetchedPage>,
    ) -> Result<FetchStats, Error> {
        self.fetch_windowed(Api::Chat, window, filters.into(), max_span_ms, out)
            .await
    }

    // ---- Account configuration -------------------------------------------------------------

    /// An account configuration list, deleted entities included (`include_deleted=true`,
    /// `v=4.0`), from `accountConfigReadOnly`. With `if_match` (a revision from an earlier
    /// answer) an unchanged list answers 304 (`not_modified`).
    pub async fn account_config(
        &self,
        entity: AccountEntity,
        if_match: Option<&str>,
    ) -> Result<AccountConfigAnswer, Error> {
        let base = self.service_url("accountConfigReadOnly").await?;
        let account = &self.inner.config.account_id;
        let mut call = Call::new(
            Method::GET,
            format!(
                "{base}/api/account/{account}/configuration/le-users/{}",
                entity.path()
            ),
            format!(
                "account configuration {} of account {account}",
                entity.path()
            ),
        )
        .query(&[("v", "4.0"), ("include_deleted", "true")]);
        call.check = |body| parse_entity_list(body).map(|_| ());
        if let Some(revision) = if_match {
            call.headers.push(("If-Match", revision.to_string()));
        }
        let answer = self.execute(&call).await?;
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(AccountConfigAnswer {
            revision: header("ac-revision").or_else(|| header("etag")),
            not_modified: answer.status == 304,
            body: if answer.status == 304 {
                Bytes::new()
            } else {
                answer.body
            },
        })
    }

    /// Every user (agent), deleted ones included: the raw JSON array (§5).
    pub async fn users(&self) -> Result<Bytes, Error> {
        Ok(self.account_config(AccountEntity::Users, None).await?.body)
    }

    /// Every skill, deleted ones included: the raw JSON array (§5).
    pub async fn skills(&self) -> Result<Bytes, Error> {
        Ok(self.account_config(AccountEntity::Skills, None).await?.body)
    }

    /// Every agent group, deleted ones included: the raw JSON array (§5).
    pub async fn agent_groups(&self) -> Result<Bytes, Error> {
        Ok(self
            .account_config(AccountEntity::AgentGroups, None)
            .await?
            .body)
    }

    // ---- Searching and paging --------------------------------------------------------------

    /// One search page as the API answered it (retried until whole and not partial).
    async fn search_once(
        &self,
        api: Api,
        window: Window,
        filters: &Filters,
        offset: u64,
    ) -> Result<Bytes, Error> {
        let base = self.service_url(api.service()).await?;
        let account = &self.inner.config.account_id;
        let config = &self.inner.config;
        let offset_s = offset.to_string();
        let limit = config.page_size.to_string();
        // Bounds are inclusive on the API side: ask up to the last millisecond of the window.
        let mut body = json!({"start": {"from": window.from_ms(), "to": window.to_ms() - 1}});
        let (path, query): (&str, Vec<(&str, &str)>) = match api {
            Api::Messaging => {
                body["contentToRetrieve"] = json!(CONTENT_TO_RETRIEVE);
                if !filters.skill_ids.is_empty() {
                    body["skillIds"] = json!(filters.skill_ids);
                }
                if !filters.status.is_empty() {
                    body["status"] = json!(filters.status);
                }
                if !filters.agent_ids.is_empty() {
                    body["agentIds"] = json!(filters.agent_ids);
                }
                (
                    "messaging_history/api/account/{}/conversations/search",
                    vec![
                        ("offset", &offset_s),
                        ("limit", &limit),
                        ("sort", "start:asc"),
                        ("v", "2"),
                        ("source", &config.source),
                    ],
                )
            }
            Api::Chat => {
                // The vendor's examples send these ids as numeric strings.
                if !filters.skill_ids.is_empty() {
                    let ids: Vec<String> = filters.skill_ids.iter().map(i64::to_string).collect();
                    body["skillIds"] = json!(ids);
                }
                if !filters.agent_ids.is_empty() {
                    body["agentIds"] = json!(filters.agent_ids);
                }
                (
                    "interaction_history/api/account/{}/interactions/search",
                    vec![
                        ("offset", &offset_s),
                        ("limit", &limit),
                        ("sort", "start:asc"),
                        ("source", &config.source),
                    ],
                )
            }
        };
        let mut call = Call::new(
            Method::POST,
            format!("{base}/{}", path.replace("{}", account)),
            format!("{} {window} offset {offset}", api.name()),
        )
        .query(&query)
        .json(body.to_string());
        call.check = check_page;
        Ok(self.execute(&call).await?.body)
    }

    /// One get-by-id call (at most 100 ids).
    async fn by_ids_once(&self, ids: &[String]) -> Result<Bytes, Error> {
        let base = self.service_url("msgHist").await?;
        let config = &self.inner.config;
        let what = match ids {
            [one] => format!("MI get-by-id of conversation {one}"),
            [first, ..] => format!("MI get-by-id of {} conversations ({first}, ...)", ids.len()),
            [] => "MI get-by-id of no conversation".to_string(),
        };
        let mut call = Call::new(
            Method::POST,
            format!(
                "{base}/messaging_history/api/account/{}/conversations/conversation/search",
                config.account_id
            ),
            what,
        )
        .query(&[("v", "2"), ("source", &config.source)])
        .json(
            json!({"conversationIds": ids, "contentToRetrieve": CONTENT_TO_RETRIEVE}).to_string(),
        );
        call.check = check_page;
        Ok(self.execute(&call).await?.body)
    }

    /// An Engagement History search for one engagement (the way to complete a partial chat).
    async fn chat_by_id(&self, window: Window, engagement_id: &str) -> Result<Bytes, Error> {
        let base = self.service_url("engHistDomain").await?;
        let config = &self.inner.config;
        let mut call = Call::new(
            Method::POST,
            format!(
                "{base}/interaction_history/api/account/{}/interactions/search",
                config.account_id
            ),
            format!("EH search of engagement {engagement_id}"),
        )
        .query(&[
            ("offset", "0"),
            ("limit", &config.page_size.to_string()),
            ("sort", "start:asc"),
            ("source", &config.source),
        ])
        .json(
            json!({"start": {"from": window.from_ms(), "to": window.to_ms() - 1},
                   "engagementId": engagement_id})
            .to_string(),
        );
        call.check = check_page;
        Ok(self.execute(&call).await?.body)
    }

    /// Replaces the records of `page` flagged `info.isPartial` by their full version. The page
    /// is rebuilt only when there is something to replace; a record the API no longer returns
    /// in full stays as it was.
    async fn complete_page(&self, api: Api, window: Window, page: Bytes) -> Result<Bytes, Error> {
        let partial = match partial_record_ids(api, &page) {
            Ok(ids) if !ids.is_empty() => ids,
            _ => return Ok(page), // nothing partial, or unreadable: the consumer reports it
        };
        let mut full: HashMap<String, String> = HashMap::new();
        let mut collect = |body: &[u8]| {
            if let Ok(records) = page_records(api, body) {
                for raw in records {
                    if let Some((id, false)) = probe(api, raw) {
                        full.entry(id).or_insert_with(|| raw.get().to_string());
                    }
                }
            }
        };
        match api {
            Api::Messaging => {
                for chunk in partial.chunks(MAX_IDS_PER_CALL) {
                    collect(&self.by_ids_once(chunk).await?);
                }
            }
            Api::Chat => {
                for id in &partial {
                    collect(&self.chat_by_id(window, id).await?);
                }
            }
        }
        if full.is_empty() {
            return Ok(page);
        }
        Ok(replace_records(api, &page, &full).map_or(page, Bytes::from))
    }

    async fn fetch_windowed(
        &self,
        api: Api,
        window: Window,
        filters: Filters,
        max_span_ms: i64,
        out: mpsc::Sender<FetchedPage>,
    ) -> Result<FetchStats, Error> {
        let span = max_span_ms.clamp(ROUNDING_MS, api.max_span_ms());
        let depth = self.inner.config.concurrency.max(1);
        let page_size = u64::from(self.inner.config.page_size);
        let filters = Arc::new(filters);
        let windows = AtomicU64::new(0);
        let hits = AtomicU64::new(0);

        // Stage 1, in sub-window order: each sub-window's first page (and its halves, when it
        // holds too many hits), a few sub-windows ahead.
        let leaves = stream::iter(window.split(span))
            .map(|sub| {
                let (client, filters) = (self.clone(), Arc::clone(&filters));
                spawn_request(async move { client.leaves(api, sub, &filters).await })
            })
            .buffered(depth)
            .map_ok(|leaves| stream::iter(leaves.into_iter().map(Ok::<Leaf, Error>)))
            .try_flatten();
        // Stage 2, in (sub-window, offset) order: the first page as it is, the others fetched,
        // up to [`LOOKAHEAD_PER_SLOT`] times the request slots ahead. Every request runs in its
        // own task, so a page waiting for the consumer never holds up a request slot.
        let pages = leaves
            .map_ok(|leaf| {
                windows.fetch_add(1, Ordering::Relaxed);
                hits.fetch_add(leaf.count, Ordering::Relaxed);
                let sub = leaf.window;
                let first = FetchedPage {
                    window: sub,
                    offset: 0,
                    body: leaf.first,
                };
                let rest = (1..leaf.count.div_ceil(page_size)).map(move |i| PageTask::Fetch {
                    window: sub,
                    offset: i * page_size,
                });
                stream::iter(std::iter::once(PageTask::Ready(first)).chain(rest).map(Ok))
            })
            .try_flatten()
            .map(|task| -> BoxFuture<'static, Result<FetchedPage, Error>> {
                match task {
                    Err(e) => ready(Err(e)).boxed(),
                    Ok(PageTask::Ready(page)) => ready(Ok(page)).boxed(),
                    Ok(PageTask::Fetch { window, offset }) => {
                        let (client, filters) = (self.clone(), Arc::clone(&filters));
                        spawn_request(async move {
                            let page = client.search_once(api, window, &filters, offset).await?;
                            let body = client.complete_page(api, window, page).await?;
                            Ok(FetchedPage {
                                window,
                                offset,
                                body,
                            })
                        })
                        .boxed()
                    }
                }
            })
            .buffered(depth * LOOKAHEAD_PER_SLOT);
        let mut pages = std::pin::pin!(pages);
        let mut sent = 0u64;
        while let Some(page) = pages.next().await {
            if out.send(page?).await.is_err() {
                break; // the consumer stopped; it reports its own error
            }
            sent += 1;
        }
        Ok(FetchStats {
            windows: windows.load(Ordering::Relaxed),
            pages: sent,
            reported_hits: hits.load(Ordering::Relaxed),
        })
    }

    /// The sub-windows `sub` is paged in (itself, or its halves when it holds more hits than
    /// `max_hits_per_window`), each with its first page, completed.
    async fn leaves(&self, api: Api, sub: Window, filters: &Filters) -> Result<Vec<Leaf>, Error> {
        let mut todo = vec![sub];
        let mut out = Vec::new();
        while let Some(w) = todo.pop() {
            let first = self.search_once(api, w, filters, 0).await?;
            let count = parse_envelope(&first)
                .ok()
                .and_then(|e| e.metadata.count)
                .unwrap_or(0);
            if count > self.inner.config.max_hits_per_window
                && let Some((a, b)) = w.halve()
            {
                todo.push(b);
                todo.push(a);
                continue;
            }
            let first = self.complete_page(api, w, first).await?;
            out.push(Leaf {
                window: w,
                first,
                count,
            });
        }
        Ok(out)
    }

    // ---- Sending, retrying, authenticating ---------------------------------------------------

    /// Sends `call` until it succeeds, fails for good, or runs out of attempts.
    async fn execute(&self, call: &Call) -> Result<Answer, Error> {
        let full_url = if call.query.is_empty() {
            call.url.clone()
        } else {
            // The query is encoded exactly as it is signed (RFC 3986): the two cannot disagree.
            format!("{}?{}", call.url, encode_query(&call.query))
        };
        let retry = &self.inner.config.retry;
        let api = metrics_api(&call.what);
        let mut attempt = 0;
        let mut renewed = false;
        loop {
            attempt += 1;
            let authorization = if call.signed {
                Some(self.authorization(call).await?)
            } else {
                None
            };
            let slot = self.inner.limiter.acquire().await;
            let mut req = self
                .inner
                .http
                .request(call.method.clone(), &full_url)
                .header("Accept", "application/json");
            if let Some(value) = &authorization {
                req = req.header("Authorization", value.as_str());
            }
            for (name, value) in &call.headers {
                req = req.header(*name, value.as_str());
            }
            if let Some((content_type, body)) = &call.body {
                req = req.header("Content-Type", *content_type).body(body.clone());
            }
            let sent = Instant::now();
            // The whole answer (status, Retry-After, headers, body), or why none came.
            let received = match req.send().await {
                Err(e) => Err((transport_error(&call.what, e), None)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry_after(&resp);
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) => Ok((status, headers, body, retry_after)),
                        Err(e) => Err((transport_error(&call.what, e), retry_after)),
                    }
                }
            };
            let took = sent.elapsed();
            // The answer is in: the slot (a request at the server) is free before the body is
            // checked, which for a search page means parsing all of its 2 MB. A 429 may lower
            // the shared pace.
            let answered = received.as_ref().ok().map(|(status, ..)| *status);
            let outcome = match answered {
                Some(429) => Outcome::Throttled,
                Some(_) => Outcome::Answered,
                None => Outcome::NoAnswer,
            };
            self.inner.limiter.release(slot, outcome);
            let (error, retry_after) = match received {
                Err(failed) => failed,
                Ok((status, headers, body, _)) if (200..300).contains(&status) || status == 304 => {
                    let checked = if status == 304 {
                        Ok(())
                    } else {
                        (call.check)(&body)
                    };
                    match checked {
                        Ok(()) => {
                            record_attempt(api, answered, took);
                            return Ok(Answer {
                                status,
                                headers,
                                body,
                            });
                        }
                        Err(reason) => (
                            Error::Response {
                                request: call.what.clone(),
                                reason,
                            },
                            None,
                        ),
                    }
                }
                Ok((status, _, body, retry_after)) => (
                    Error::Status {
                        request: call.what.clone(),
                        status,
                        body: if call.quote_body {
                            snippet(&body)
                        } else {
                            "(answer not shown)".into()
                        },
                    },
                    retry_after,
                ),
            };
            record_attempt(api, answered, took);
            if error.status() == Some(401)
                && !renewed
                && self.inner.auth.renewable()
                && let Some(used) = &authorization
            {
                // The token may have been dropped by the server early: renew it once.
                renewed = true;
                self.forget_token(used).await;
                lpdrop_metrics::API_RETRIES.inc(&[api, "auth_renewal"]);
                continue;
            }
            if !error.is_retryable() {
                return Err(error);
            }
            if attempt >= retry.max_attempts {
                return Err(Error::RetriesExhausted {
                    request: call.what.clone(),
                    attempts: attempt,
                    last: error.cause(),
                });
            }
            let reason = match &error {
                Error::Status { status: 429, .. } => "throttled",
                Error::Status { .. } => "server_error",
                Error::Transport { .. } => "transport",
                _ => "bad_answer",
            };
            lpdrop_metrics::API_RETRIES.inc(&[api, reason]);
            let mut delay = retry.delay(attempt, &error, retry_after);
            if error.status() == Some(429) {
                delay = delay.max(call.throttle_floor);
                if retry_after.is_some() {
                    self.inner.limiter.pause_for(delay);
                }
            }
            tracing::debug!(
                request = %call.what,
                attempt,
                reason,
                delay_ms = delay.as_millis() as u64,
                "retrying: {error}"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// The `Authorization` header value of one attempt of `call`.
    async fn authorization(&self, call: &Call) -> Result<String, Error> {
        match &self.inner.auth {
            Auth::OAuth1(key) => Ok(oauth1::authorization_header(
                key,
                call.method.as_str(),
                &call.url,
                &call.query,
                &Nonce::fresh(),
            )),
            Auth::Bearer(token) => Ok(format!("Bearer {token}")),
            Auth::Login { .. } | Auth::ClientCredentials { .. } => {
                Ok(format!("Bearer {}", self.token().await?))
            }
        }
    }

    /// The current login bearer or Sentinel token: refreshed, renewed or obtained as needed.
    /// One caller at a time does so; the others wait for its result.
    async fn token(&self) -> Result<String, Error> {
        let mut session = self.inner.session.lock().await;
        let now = Instant::now();
        match session.as_ref() {
            Some(Session::Sentinel { token, renew_at }) if now < *renew_at => {
                return Ok(token.clone());
            }
            Some(Session::Login {
                bearer, refresh_at, ..
            }) if now < *refresh_at => return Ok(bearer.clone()),
            _ => {}
        }
        // A login session due for refresh: refresh it while it is still alive. Boxed: the
        // refresh sends a request, which asks for a token (async recursion).
        if let Some(Session::Login {
            bearer,
            csrf,
            cookie,
            ttl,
            refresh_at,
            expires_at,
        }) = session.as_mut()
            && now < *expires_at
            && Box::pin(self.refresh_login(csrf, cookie.as_deref()))
                .await
                .is_ok()
        {
            let now = Instant::now();
            *refresh_at = now + auth::refresh_interval(*ttl);
            *expires_at = now + *ttl;
            return Ok(bearer.clone());
        }
        let fresh = match &self.inner.auth {
            Auth::Login { username, password } => Box::pin(self.login(username, password)).await?,
            Auth::ClientCredentials {
                client_id,
                client_secret,
            } => Box::pin(self.sentinel_token(client_id, client_secret)).await?,
            Auth::OAuth1(_) | Auth::Bearer(_) => unreachable!("not a renewable token"),
        };
        let token = fresh.token().to_string();
        *session = Some(fresh);
        Ok(token)
    }

    /// Drops the token `used` (an `Authorization` value) so that the next request gets a new
    /// one; a token another request has renewed meanwhile is kept.
    async fn forget_token(&self, used: &str) {
        let mut session = self.inner.session.lock().await;
        if session
            .as_ref()
            .is_some_and(|s| used.strip_prefix("Bearer ") == Some(s.token()))
        {
            *session = None;
        }
    }

    /// `POST https://{agentVep}/api/account/{id}/login?v=1.3` (§2.2).
    async fn login(&self, username: &str, password: &str) -> Result<Session, Error> {
        let base = self.service_url("agentVep").await?;
        let account = &self.inner.config.account_id;
        let mut call = Call::new(
            Method::POST,
            format!("{base}/api/account/{account}/login"),
            format!("login of user {username:?} to account {account}"),
        )
        .query(&[("v", "1.3")])
        .json(json!({"username": username, "password": password}).to_string());
        call.signed = false;
        call.quote_body = false;
        call.check = check_json_object;
        call.throttle_floor = self.inner.config.retry.login_throttle_delay;
        let answer = self.execute(&call).await?;
        let unreadable = |what: &str| Error::Response {
            request: call.what.clone(),
            reason: format!("the login answer {what}"),
        };
        let parsed: auth::LoginAnswer = serde_json::from_slice(&answer.body).map_err(|e| {
            unreadable(&format!(
                "is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let bearer = parsed
            .bearer
            .filter(|b| !b.is_empty())
            .ok_or_else(|| unreadable("has no bearer token"))?;
        let ttl = Duration::from_millis(
            parsed
                .session_ttl
                .0
                .filter(|&ms| ms > 0)
                .unwrap_or(8 * 3600 * 1000) as u64,
        );
        let cookie = auth::session_cookie(
            answer
                .headers
                .get_all(reqwest::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let now = Instant::now();
        Ok(Session::Login {
            bearer,
            csrf: parsed.csrf.unwrap_or_default(),
            cookie,
            ttl,
            refresh_at: now + auth::refresh_interval(ttl),
            expires_at: now + ttl,
        })
    }

    /// `POST https://{agentVep}/api/account/{id}/refresh` with the `csrf` and session cookie.
    async fn refresh_login(&self, csrf: &str, cookie: Option<&str>) -> Result<(), Error> {
        let base = self.service_url("agentVep").await?;
        let account = &self.inner.config.account_id;
        let mut call = Call::new(
            Method::POST,
            format!("{base}/api/account/{account}/refresh"),
            format!("login session refresh for account {account}"),
        )
        .json(json!({ "csrf": csrf }).to_string());
        call.signed = false;
        call.quote_body = false;
        if let Some(cookie) = cookie {
            call.headers.push(("Cookie", cookie.to_string()));
        }
        self.execute(&call).await.map(|_| ())
    }

    /// `POST https://{sentinel}/sentinel/api/account/{id}/app/token?v=1.0` (§2.3).
    async fn sentinel_token(&self, client_id: &str, client_secret: &str) -> Result<Session, Error> {
        let base = self.service_url("sentinel").await?;
        let account = &self.inner.config.account_id;
        let form = format!(
            "client_id={}&client_secret={}&grant_type=client_credentials",
            oauth1::pct(client_id),
            oauth1::pct(client_secret)
        );
        let mut call = Call::new(
            Method::POST,
            format!("{base}/sentinel/api/account/{account}/app/token"),
            format!("OAuth 2.0 token for client {client_id:?} of account {account}"),
        )
        .query(&[("v", "1.0")]);
        call.body = Some(("application/x-www-form-urlencoded", form));
        call.signed = false;
        call.quote_body = false;
        call.check = check_json_object;
        let answer = self.execute(&call).await?;
        let parsed: auth::TokenAnswer =
            serde_json::from_slice(&answer.body).map_err(|e| Error::Response {
                request: call.what.clone(),
                reason: format!(
                    "the token answer is not the expected JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        let token = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Response {
                request: call.what.clone(),
                reason: "the token answer has no access_token".into(),
            })?;
        let lifetime = auth::jwt_lifetime(&token)
            .or_else(|| {
                parsed
                    .expires_in
                    .0
                    .filter(|&s| s > 0)
                    .map(|s| Duration::from_secs(s as u64))
            })
            .unwrap_or(Duration::from_secs(3600));
        Ok(Session::Sentinel {
            token,
            renew_at: Instant::now() + auth::renew_after(lifetime),
        })
    }
}

/// A sub-window to page, with its first page already fetched.
struct Leaf {
    window: Window,
    first: Bytes,
    count: u64,
}

enum PageTask {
    Ready(FetchedPage),
    Fetch { window: Window, offset: u64 },
}

/// Runs a request in its own task (so it progresses whether or not its result is awaited
/// yet); the task is aborted if the result is no longer wanted.
fn spawn_request<T: Send + 'static>(
    fut: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> impl Future<Output = Result<T, Error>> + Send + 'static {
    Spawned(tokio::spawn(fut))
}

struct Spawned<T>(JoinHandle<Result<T, Error>>);

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for Spawned<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::Transport {
                request: "a background request".into(),
                message: e.to_string(),
            }),
        })
    }
}

// ---- Page bodies ------------------------------------------------------------------------------

/// A 200 whose body is cut short or reports failed shards is worth another try.
fn check_page(body: &[u8]) -> Result<(), String> {
    let envelope = parse_envelope(body)?;
    if envelope.metadata.is_partial() {
        return Err("the page reports partial shard results".into());
    }
    Ok(())
}

fn check_any(_: &[u8]) -> Result<(), String> {
    Ok(())
}

fn check_json_object(body: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "the answer is not whole JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        })
}

/// The top-level members of a page, values unparsed.
fn page_members(body: &[u8]) -> Result<BTreeMap<String, &RawValue>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    serde_json::from_slice(body).map_err(|e| format!("unreadable search page: {e}"))
}

fn page_records(api: Api, body: &[u8]) -> Result<Vec<&RawValue>, String> {
    match page_members(body)?.get(api.records_key()) {
        None => Ok(Vec::new()),
        Some(raw) => {
            serde_json::from_str(raw.get()).map_err(|e| format!("unreadable records: {e}"))
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Probe {
    info: ProbeInfo,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ProbeInfo {
    conversation_id: Text,
    engagement_id: Text,
    is_partial: Bool,
}

/// A record's id and whether it is flagged partial; `None` when unreadable or without id.
fn probe(api: Api, raw: &RawValue) -> Option<(String, bool)> {
    let p: Probe = serde_json::from_str(raw.get()).ok()?;
    let id = match api {
        Api::Messaging => p.info.conversation_id.0,
        Api::Chat => p.info.engagement_id.0,
    }?;
    Some((id, p.info.is_partial.0 == Some(true)))
}

/// False when no record of the page can be flagged partial: every `"isPartial"` in it is
/// followed by `false` or `null`. A cheap byte scan that spares most pages a second parse.
fn may_hold_partial(body: &[u8]) -> bool {
    const KEY: &[u8] = b"\"isPartial\"";
    let mut rest = body;
    while let Some(at) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[at + KEY.len()..];
        let value = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace() && *b != b':')
            .map_or(&[][..], |i| &rest[i..]);
        if !(value.starts_with(b"false") || value.starts_with(b"null")) {
            return true;
        }
    }
    false
}

/// Ids of the records flagged `isPartial`, each once, in page order.
fn partial_record_ids(api: Api, body: &[u8]) -> Result<Vec<String>, String> {
    if !may_hold_partial(body) {
        return Ok(Vec::new());
    }
    let mut seen = HashSet::new();
    Ok(page_records(api, body)?
        .into_iter()
        .filter_map(|raw| probe(api, raw))
        .filter(|(id, partial)| *partial && seen.insert(id.clone()))
        .map(|(id, _)| id)
        .collect())
}

/// The page with every partial record whose id is in `full` replaced; the other members and
/// records are copied byte for byte.
fn replace_records(
    api: Api,
    body: &[u8],
    full: &HashMap<String, String>,
) -> Result<String, String> {
    let members = page_members(body)?;
    let mut out = String::with_capacity(body.len() + full.values().map(String::len).sum::<usize>());
    out.push('{');
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(name).map_err(|e| e.to_string())?);
        out.push(':');
        if name != api.records_key() {
            out.push_str(value.get());
            continue;
        }
        let records: Vec<&RawValue> =
            serde_json::from_str(value.get()).map_err(|e| format!("unreadable records: {e}"))?;
        out.push('[');
        for (k, raw) in records.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            let replacement = match probe(api, raw) {
                Some((id, true)) => full.get(&id),
                _ => None,
            };
            out.push_str(replacement.map_or(raw.get(), String::as_str));
        }
        out.push(']');
    }
    out.push('}');
    Ok(out)
}

fn encode_query(query: &[(String, String)]) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{}={}", oauth1::pct(k), oauth1::pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn transport_error(what: &str, e: reqwest::Error) -> Error {
    // reqwest's message includes the URL, which holds no secrets (they travel in headers and
    // bodies).
    let mut message = if e.is_timeout() {
        format!("timed out: {e}")
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::Transport {
        request: what.to_string(),
        message,
    }
}

/// The `api` label of a request's metrics, from its description: a fixed short word, never
/// the URL, the account or a user.
fn metrics_api(what: &str) -> &'static str {
    const APIS: [(&str, &str); 8] = [
        ("Domain API", "domain"),
        ("MI search", "msg_hist"),
        ("MI get-by-id", "msg_hist_by_id"),
        ("EH search", "eng_hist"),
        ("account configuration", "account_config"),
        ("login session refresh", "login_refresh"),
        ("login", "login"),
        ("OAuth 2.0 token", "oauth2_token"),
    ];
    APIS.iter()
        .find(|(prefix, _)| what.starts_with(prefix))
        .map_or("other", |(_, label)| label)
}

/// One HTTP attempt in the metrics: its status (`error` without an answer) and duration.
fn record_attempt(api: &'static str, status: Option<u16>, took: Duration) {
    let status = status.map(|s| s.to_string());
    let status = status.as_deref().unwrap_or("error");
    lpdrop_metrics::API_REQUESTS.inc(&[api, status]);
    lpdrop_metrics::API_REQUEST_DURATION.observe(&[api], took.as_secs_f64());
}

/// `Retry-After` in seconds (the HTTP-date form is not used by LivePerson's services).
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let value = resp.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The first few hundred characters of a body, for error messages.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        s.push('…');
    }
    s
}

/// Scheme and authority of the Domain API, checked: https, or plain http on loopback only.
#[derive(Debug, Clone)]
struct Origin {
    scheme: &'static str,
}

/// Splits `host:port` (or `[v6]:port`) and returns the host part.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            authority
        }
    })
}

/// A service authority must be a bare `host[:port]`: no scheme, path, user info or spaces.
fn valid_authority(a: &str) -> bool {
    !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

impl Origin {
    fn parse(domain: &str) -> Result<(Origin, String), Error> {
        let bad = |reason: &str| Error::Config {
            url: domain.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = domain
            .split_once("://")
            .ok_or_else(|| bad("expected http(s)://host[:port]"))?;
        let authority = rest.trim_end_matches('/');
        if !valid_authority(authority) {
            return Err(bad("expected http(s)://host[:port] with no path"));
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => "https",
            "http" if lpdrop_settings::is_loopback_host(host_of(authority)) => "http",
            "http" => return Err(bad("plain http is allowed only on loopback; use https")),
            _ => return Err(bad("the scheme must be https (or http on loopback)")),
        };
        Ok((Origin { scheme }, authority.to_string()))
    }

    /// The base URL of a service host returned by the Domain API, under the same TLS rule.
    fn service_url(&self, authority: &str) -> Result<String, Error> {
        if !valid_authority(authority) {
            return Err(Error::Config {
                url: authority.to_string(),
                reason: "the Domain API returned a host that is not a bare host[:port]".into(),
            });
        }
        if self.scheme == "http" && !lpdrop_settings::is_loopback_host(host_of(authority)) {
            return Err(Error::Config {
                url: authority.to_string(),
                reason: "plain http is allowed only on loopback; use an https domain".into(),
            });
        }
        Ok(format!("{}://{}", self.scheme, authority))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(Origin::parse("http://127.0.0.1:8080").is_ok());
        assert!(Origin::parse("http://localhost:8080/").is_ok());
        assert!(Origin::parse("http://[::1]:8080").is_ok());
        assert!(Origin::parse("https://api.liveperson.net").is_ok());
        let err = Origin::parse("http://api.liveperson.net").unwrap_err();
        assert!(err.to_string().contains("only on loopback"), "{err}");
        assert!(Origin::parse("http://10.0.0.1:80").is_err());
        assert!(Origin::parse("ftp://127.0.0.1").is_err());
        assert!(Origin::parse("https://host/path").is_err());
        assert!(Origin::parse("api.liveperson.net").is_err());
    }

    #[test]
    fn service_hosts_follow_the_domain_scheme_and_rule() {
        let (https, _) = Origin::parse("https://api.liveperson.net").unwrap();
        assert_eq!(
            https.service_url("va.msghist.liveperson.net").unwrap(),
            "https://va.msghist.liveperson.net"
        );
        let (http, _) = Origin::parse("http://127.0.0.1:9").unwrap();
        assert_eq!(
            http.service_url("127.0.0.1:4000").unwrap(),
            "http://127.0.0.1:4000"
        );
        // An http domain must not lead the client to a non-loopback host in the clear.
        assert!(http.service_url("va.msghist.liveperson.net").is_err());
        assert!(https.service_url("evil.com/x?y").is_err());
    }

    #[test]
    fn retry_delays_grow_and_respect_the_cap() {
        let p = RetryPolicy::default();
        let throttled = Error::Status {
            request: String::new(),
            status: 429,
            body: String::new(),
        };
        let d1 = p.delay(1, &throttled, None);
        let d3 = p.delay(3, &throttled, None);
        assert!(d1 >= Duration::from_secs(1) && d1 <= Duration::from_millis(1250));
        assert!(d3 >= Duration::from_secs(4));
        assert!(p.delay(20, &throttled, None) <= p.max_delay);
        assert!(p.delay(1, &throttled, Some(Duration::from_secs(7))) >= Duration::from_secs(7));
        let server = Error::Status {
            request: String::new(),
            status: 503,
            body: String::new(),
        };
        assert!(p.delay(2, &server, None) >= Duration::from_secs(10));
        let bad_request = Error::Status {
            request: String::new(),
            status: 400,
            body: String::new(),
        };
        assert!(!bad_request.is_retryable() && throttled.is_retryable() && server.is_retryable());
    }

    /// The schedule the module documentation promises for the defaults: 5, 10, 15, 60, 60 s
    /// between 6 attempts (each up to 25% more for jitter).
    #[test]
    fn the_default_server_error_schedule_is_the_documented_one() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts, 6);
        let server = Error::Status {
            request: String::new(),
            status: 503,
            body: String::new(),
        };
        let documented = [5.0, 10.0, 15.0, 60.0, 60.0];
        // The module documentation states this schedule in words: keep the two in step.
        let words = "tried\n//! after 5, 10, 15, 60 and 60 s";
        assert!(
            include_str!("client.rs").contains(words),
            "the module docs must give the default schedule as {documented:?}"
        );
        for (attempt, want) in (1..p.max_attempts).zip(documented) {
            let got = p.delay(attempt, &server, None).as_secs_f64();
            let most = if want >= 60.0 { want } else { want * 1.25 };
            assert!(
                (want..=most).contains(&got),
                "wait after attempt {attempt}: {got} s, documented {want} s"
            );
        }
    }

    #[test]
    fn server_error_delays_follow_the_vendor_schedule() {
        let p = RetryPolicy {
            max_delay: Duration::from_secs(3600),
            ..RetryPolicy::default()
        };
        let server = Error::Status {
            request: String::new(),
            status: 500,
            body: String::new(),
        };
        let at = |n| p.delay(n, &server, None).as_secs_f64();
        assert!((5.0..=6.25).contains(&at(1)));
        assert!((15.0..=18.75).contains(&at(3)));
        assert!((120.0..=150.0).contains(&at(4)), "then minutes: {}", at(4));
        assert!((240.0..=300.0).contains(&at(5)));
        let fast = RetryPolicy::default().scaled_down(1000);
        assert!(fast.delay(1, &server, None) <= Duration::from_millis(7));
        assert!(fast.delay(30, &server, Some(Duration::from_secs(9))) <= fast.max_delay);
    }

    #[test]
    fn partial_records_are_found_and_replaced_in_place() {
        let page = br#"{"_metadata":{"count":3},"conversationHistoryRecords":[
            {"info":{"conversationId":"a","isPartial":false},"x":1},
            {"info":{"conversationId":"b","isPartial":true},"x":2},
            {"info":{"conversationId":"c","isPartial":"true"},"x":3}],"extra":[1, 2]}"#;
        assert_eq!(
            partial_record_ids(Api::Messaging, page).unwrap(),
            ["b", "c"]
        );
        let mut full = HashMap::new();
        full.insert(
            "b".to_string(),
            r#"{"info":{"conversationId":"b","isPartial":false},"x":20}"#.to_string(),
        );
        let rebuilt = replace_records(Api::Messaging, page, &full).unwrap();
        let v: serde_json::Value = serde_json::from_str(&rebuilt).unwrap();
        let records = v["conversationHistoryRecords"].as_array().unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0]["x"], 1);
        assert_eq!(records[1]["x"], 20, "replaced by the full record");
        assert_eq!(records[2]["x"], 3, "no full version: kept as it was");
        assert_eq!(v["_metadata"]["count"], 3);
        assert_eq!(v["extra"], serde_json::json!([1, 2]));
        // Chat pages: engagement ids, their own records key.
        let chat =
            br#"{"interactionHistoryRecords":[{"info":{"engagementId":"e1","isPartial":true}}]}"#;
        assert_eq!(partial_record_ids(Api::Chat, chat).unwrap(), ["e1"]);
        assert!(partial_record_ids(Api::Messaging, chat).unwrap().is_empty());
        assert!(partial_record_ids(Api::Messaging, b"").unwrap().is_empty());
        assert!(!may_hold_partial(
            br#"{"info":{"isPartial": false},"x":{"isPartial":null}}"#
        ));
        assert!(may_hold_partial(br#"{"info":{"isPartial" : true}}"#));
        assert!(may_hold_partial(br#"{"info":{"isPartial":"true"}}"#));
        assert!(!may_hold_partial(b"{}"));
    }

    #[test]
    fn metrics_api_labels_are_fixed_words() {
        let window = Window::try_new(0, 3_600_000).unwrap();
        for (what, label) in [
            (
                "Domain API lookup of msgHist for account 123".to_string(),
                "domain",
            ),
            (format!("MI search {window} offset 100"), "msg_hist"),
            ("MI get-by-id of conversation abc".into(), "msg_hist_by_id"),
            (format!("EH search {window} offset 0"), "eng_hist"),
            ("EH search of engagement 42".into(), "eng_hist"),
            (
                "account configuration users of account 123".into(),
                "account_config",
            ),
            ("login of user \"bob\" to account 123".into(), "login"),
            (
                "login session refresh for account 123".into(),
                "login_refresh",
            ),
            (
                "OAuth 2.0 token for client \"c\" of account 123".into(),
                "oauth2_token",
            ),
            ("something new".into(), "other"),
        ] {
            assert_eq!(metrics_api(&what), label, "{what}");
        }
    }

    #[test]
    fn config_debug_redacts_every_kind_of_secret() {
        let key = ApiKey {
            app_key: "app".into(),
            app_secret: "app-s3cret".into(),
            access_token: "tok".into(),
            access_token_secret: "tok-s3cret".into(),
        };
        let oauth = ClientConfig::new("https://api.liveperson.net", "1", key);
        let login = ClientConfig::with_auth(
            "https://api.liveperson.net",
            "1",
            Auth::Login {
                username: "u".into(),
                password: "pa55".into(),
            },
        );
        let shown = format!("{oauth:?} {login:?}");
        for secret in ["app-s3cret", "tok-s3cret", "pa55"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(matches!(oauth.effective_auth(), Auth::OAuth1(_)));
        assert!(matches!(login.effective_auth(), Auth::Login { .. }));
    }
}
