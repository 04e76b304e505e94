//! The HTTP side: Domain API, Messaging Interactions search, get-by-id and consumer search,
//! Engagement History search, account configuration, the Login Service and the Sentinel token
//! endpoint; authentication (OAuth 1.0a or bearer), faults and limits.
//!
//! Status codes and their order follow LivePerson: the account's rate limit (429) first, then
//! authentication (401), then the request's parameters (400), so a client with a broken key
//! learns that first. Injected faults come after validation, so a bad request is always a 400.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lpdrop_liveperson::oauth1;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::account::{self, ACCOUNT_REVISION, Entity};
use crate::chat::MAX_CHAT_MS;
use crate::faults::{Fault, FaultState, request_hash};
use crate::fixtures;
use crate::search::{self, Sort};
use crate::sessions::Sessions;
use crate::{Dataset, EmulatorConfig};

/// Service names the Domain API knows (case-sensitive, as on LivePerson). They all point at
/// this one server.
const SERVICES: &[&str] = &[
    "msgHist",
    "engHistDomain",
    "accountConfigReadOnly",
    "accountConfigReadWrite",
    "agentVep",
    "smt",
    "leDataReporting",
    "sentinel",
];

const MI_RECORDS: &str = "conversationHistoryRecords";
const EH_RECORDS: &str = "interactionHistoryRecords";
/// Salts of the partial-record draws, so conversation `i` and chat `i` differ.
const SALT_MI: u64 = 1;
const SALT_EH: u64 = 2;
/// The retention the API documents: scans without a time limit look back no further.
const RETENTION_MS: i64 = 400 * 86_400_000;

/// Counters of what the emulator saw and did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmulatorStats {
    /// Data requests (searches, get-by-id, account configuration), refused ones included.
    pub requests: u64,
    /// Data requests answered 429 for being over the `rps` limit.
    pub rate_limited: u64,
    /// Injected 429s.
    pub throttled: u64,
    /// Injected 500s and 503s.
    pub server_errors: u64,
    /// Answers held back by the `slow` fault.
    pub slow: u64,
    /// Connections closed in the middle of a body.
    pub dropped: u64,
    /// Bodies cut in half.
    pub truncated: u64,
    /// Search pages reporting `partialResult: true`.
    pub partial_pages: u64,
    /// Search records sent flagged `isPartial`.
    pub partial_records: u64,
    /// Search records sent holding bytes that are not UTF-8.
    pub bad_utf8_records: u64,
    /// MI get-by-id calls and EH searches by `engagementId`.
    pub by_id_requests: u64,
    /// Data requests refused with 401.
    pub unauthorized: u64,
    pub logins: u64,
    pub refreshes: u64,
    pub tokens_issued: u64,
}

#[derive(Debug, Clone, Copy)]
enum Stat {
    Requests,
    RateLimited,
    Throttled,
    ServerErrors,
    Slow,
    Dropped,
    Truncated,
    PartialPages,
    PartialRecords,
    BadUtf8Records,
    ById,
    Unauthorized,
    Logins,
    Refreshes,
    Tokens,
}

#[derive(Debug, Default)]
struct Counters([AtomicU64; 15]);

impl Counters {
    fn add(&self, stat: Stat, n: u64) {
        self.0[stat as usize].fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self, stat: Stat) -> u64 {
        self.0[stat as usize].load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> EmulatorStats {
        EmulatorStats {
            requests: self.get(Stat::Requests),
            rate_limited: self.get(Stat::RateLimited),
            throttled: self.get(Stat::Throttled),
            server_errors: self.get(Stat::ServerErrors),
            slow: self.get(Stat::Slow),
            dropped: self.get(Stat::Dropped),
            truncated: self.get(Stat::Truncated),
            partial_pages: self.get(Stat::PartialPages),
            partial_records: self.get(Stat::PartialRecords),
            bad_utf8_records: self.get(Stat::BadUtf8Records),
            by_id_requests: self.get(Stat::ById),
            unauthorized: self.get(Stat::Unauthorized),
            logins: self.get(Stat::Logins),
            refreshes: self.get(Stat::Refreshes),
            tokens_issued: self.get(Stat::Tokens),
        }
    }
}

struct AppState {
    config: EmulatorConfig,
    dataset: Dataset,
    /// The bound address: what the Domain API hands out as `baseURI`.
    addr: SocketAddr,
    faults: FaultState,
    /// Data requests so far (numbers them for `every:N` / `first:N`).
    arrivals: AtomicU64,
    sessions: Sessions,
    stats: Arc<Counters>,
}

/// A running emulator. Dropping it without [`Emulator::shutdown`] also stops the server (the
/// shutdown channel closes), but does not wait for it.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    stats: Arc<Counters>,
}

impl Emulator {
    /// Binds `addr` (port 0 allowed) and serves in a background tokio task.
    pub async fn start(config: EmulatorConfig, addr: SocketAddr) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Counters::default());
        let state = Arc::new(AppState {
            dataset: Dataset::new(&config),
            faults: FaultState::new(&config.faults),
            sessions: Sessions::new(config.seed ^ config.faults.seed),
            arrivals: AtomicU64::new(0),
            stats: Arc::clone(&stats),
            config,
            addr,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state);
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                eprintln!("lpdrop emulator: server error: {e}");
            }
        });
        Ok(Emulator {
            addr,
            stop,
            task,
            stats,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"http://127.0.0.1:PORT"`, what a client uses as `LP_DOMAIN`.
    pub fn domain_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the emulator has seen and done so far.
    pub fn stats(&self) -> EmulatorStats {
        self.stats.snapshot()
    }

    /// Graceful stop: no new connections, in-flight requests finish, then the task ends.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/api/account/{account_id}/service/{service}/baseURI.json",
            get(domain_one),
        )
        .route(
            "/api/account/{account_id}/service/baseURI.json",
            get(domain_all),
        )
        .route("/api/account/{account_id}/login", post(login))
        .route("/api/account/{account_id}/refresh", post(refresh))
        .route("/api/account/{account_id}/logout", post(logout))
        .route(
            "/sentinel/api/account/{account_id}/app/token",
            post(sentinel_token),
        )
        .route(
            "/sentinel/api/v2/account/{account_id}/app/token",
            post(sentinel_token),
        )
        .route(
            "/messaging_history/api/account/{account_id}/conversations/search",
            post(search_conversations),
        )
        .route(
            "/messaging_history/api/account/{account_id}/conversations/conversation/search",
            post(conversations_by_id),
        )
        .route(
            "/messaging_history/api/account/{account_id}/conversations/consumer/search",
            post(conversations_by_consumer),
        )
        .route(
            "/interaction_history/api/account/{account_id}/interactions/search",
            post(search_chats),
        )
        .route(
            "/api/account/{account_id}/configuration/le-users/{entity}",
            get(account_config),
        )
        // Not a LivePerson API: lets a test make open conversations close (late data).
        .route(
            "/_emulator/close-open-conversations",
            post(close_open_conversations),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such resource") })
        .with_state(state)
}

async fn close_open_conversations(State(st): State<Arc<AppState>>) -> StatusCode {
    st.dataset.close_open();
    StatusCode::NO_CONTENT
}

/// An error answer: the status plus a small JSON body saying what was wrong. LivePerson does
/// not document its error body, so this one is Spring-style (`status`, `error`, `message`).
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or(""),
            "message": self.message,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// The Host the client used (its signature covers it), or the bound address without one.
fn host_of(st: &AppState, headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| st.addr.to_string(), str::to_string)
}

async fn domain_one(
    State(st): State<Arc<AppState>>,
    Path((account, service)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if account != st.config.account_id {
        return Err(ApiError::unauthorized("invalid site"));
    }
    if !SERVICES.contains(&service.as_str()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown service '{service}'"),
        ));
    }
    let base_uri = st.addr.to_string();
    Ok(
        axum::Json(json!({"service": service, "account": account, "baseURI": base_uri}))
            .into_response(),
    )
}

async fn domain_all(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
) -> Result<Response, ApiError> {
    if account != st.config.account_id {
        return Err(ApiError::unauthorized("invalid site"));
    }
    Ok(axum::Json(json!({ "baseURIs": base_uris(&st) })).into_response())
}

fn base_uris(st: &AppState) -> Vec<Value> {
    SERVICES
        .iter()
        .map(|s| json!({"service": s, "account": st.config.account_id, "baseURI": st.addr.to_string()}))
        .collect()
}

fn query_pairs(uri: &Uri) -> Result<Vec<(String, String)>, ApiError> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
}

/// What every data call checks first: decoded query pairs, the credentials (an OAuth 1.0a
/// signature over them, or a live bearer token), and the account in the path. Returns the pairs
/// for further validation.
fn authorise(
    st: &AppState,
    account: &str,
    headers: &HeaderMap,
    uri: &Uri,
    method: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let checked = check_credentials(st, account, headers, uri, method);
    if checked.is_err() {
        st.stats.add(Stat::Unauthorized, 1);
    }
    checked
}

fn check_credentials(
    st: &AppState,
    account: &str,
    headers: &HeaderMap,
    uri: &Uri,
    method: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = query_pairs(uri)?;
    let auth = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("missing Authorization header (OAuth 1.0a or Bearer expected)")
        })?
        .to_str()
        .map_err(|_| ApiError::unauthorized("Authorization header is not ASCII"))?;
    if let Some(token) = auth.strip_prefix("Bearer ") {
        st.sessions
            .check_bearer(token.trim())
            .map_err(|e| ApiError::unauthorized(format!("unauthorised: {e}")))?;
    } else {
        let base_url = format!("http://{}{}", host_of(st, headers), uri.path());
        oauth1::verify(&st.config.api_key, auth, method, &base_url, &pairs)
            .map_err(|e| ApiError::unauthorized(format!("unauthorised: {e}")))?;
    }
    if account != st.config.account_id {
        return Err(ApiError::unauthorized(format!(
            "the credentials are not valid for account '{account}'"
        )));
    }
    Ok(pairs)
}

// ---- Faults and limits -------------------------------------------------------------------------

/// Every data request: counted and numbered, checked against the rate limit, delayed by the
/// configured latency (refusals too: they travel the same network).
async fn admit(st: &AppState) -> Result<u64, ApiError> {
    st.stats.add(Stat::Requests, 1);
    let n = st.arrivals.fetch_add(1, Ordering::Relaxed) + 1;
    let admitted = st.faults.admit();
    let latency = st.config.faults.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if !admitted {
        st.stats.add(Stat::RateLimited, 1);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests: the account is over its request rate",
        ));
    }
    Ok(n)
}

/// The injected fault of this request, if any (see [`crate::faults`]).
fn decide(st: &AppState, n: u64, method: &Method, uri: &Uri, body: &[u8]) -> Fault {
    if !st.config.faults.injects() {
        return Fault::None;
    }
    let request = request_hash(&[
        method.as_str().as_bytes(),
        uri.path().as_bytes(),
        uri.query().unwrap_or("").as_bytes(),
        body,
    ]);
    let attempt = st.faults.attempt(request);
    st.config.faults.decide(request, attempt, n)
}

/// Answers the faults that replace the answer (429, 500, 503).
fn fail_early(st: &AppState, fault: Fault) -> Result<(), ApiError> {
    match fault {
        Fault::Throttle { retry_after } => {
            st.stats.add(Stat::Throttled, 1);
            Err(ApiError {
                retry_after,
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests")
            })
        }
        Fault::Status(code) => {
            st.stats.add(Stat::ServerErrors, 1);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = if code == 500 {
                "0007 Elastic search exception"
            } else {
                "service unavailable, try again later"
            };
            Err(ApiError::new(status, message))
        }
        _ => Ok(()),
    }
}

/// Sends a JSON body, as the fault of the request has it: slowly, cut in half, or with the
/// connection dropped half way.
async fn deliver(
    st: &AppState,
    fault: Fault,
    status: StatusCode,
    mut body: Vec<u8>,
    headers: &[(&'static str, String)],
) -> Response {
    let mut builder = Response::builder().status(status);
    if status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    let body = match fault {
        Fault::Slow => {
            st.stats.add(Stat::Slow, 1);
            tokio::time::sleep(st.config.faults.slow_delay).await;
            Body::from(body)
        }
        Fault::Truncate => {
            st.stats.add(Stat::Truncated, 1);
            body.truncate(body.len() / 2);
            Body::from(body)
        }
        Fault::Drop => {
            st.stats.add(Stat::Dropped, 1);
            let rest = body.split_off(body.len() / 2);
            drop(rest);
            // The status, headers and first half go out; a moment later the connection dies.
            let first = futures_util::stream::once(std::future::ready(
                Ok::<Bytes, std::io::Error>(Bytes::from(body)),
            ));
            let failure = futures_util::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Err(std::io::Error::other(
                    "connection dropped by fault injection",
                ))
            });
            Body::from_stream(futures_util::StreamExt::chain(first, failure))
        }
        _ => Body::from(body),
    };
    builder.body(body).unwrap_or_else(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
    })
}

fn runtime_error(e: impl std::fmt::Display) -> ApiError {
    // LivePerson's internal code for an unexpected failure.
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("0008 Runtime exception: {e}"),
    )
}

// ---- Pages -----------------------------------------------------------------------------------

/// The request URL with `offset` replaced, for the `_metadata` links.
fn href(host: &str, path: &str, pairs: &[(String, String)], offset: u64) -> String {
    let mut query: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "offset")
        .map(|(k, v)| format!("{}={}", oauth1::pct(k), oauth1::pct(v)))
        .collect();
    query.insert(0, format!("offset={offset}"));
    format!("http://{host}{path}?{}", query.join("&"))
}

/// Where a page sits and how it was asked for, for its `_metadata`.
struct PageLinks<'a> {
    host: &'a str,
    path: &'a str,
    pairs: &'a [(String, String)],
    offset: u64,
    limit: u64,
    /// EH also sends `last` and the shard counts.
    chat: bool,
}

/// A page envelope: `_metadata` (count, links, shards) and the records. A partial page (the
/// `shards` fault) loses a third of its records and says so.
fn page_json(
    links: &PageLinks<'_>,
    count: u64,
    mut records: Vec<Value>,
    partial: bool,
    records_key: &str,
) -> Value {
    let link = |rel: &str, offset: u64| json!({"rel": rel, "href": href(links.host, links.path, links.pairs, offset)});
    let mut meta = Map::new();
    meta.insert("count".into(), count.into());
    meta.insert("self".into(), link("self", links.offset));
    if links.limit > 0 && links.offset.saturating_add(links.limit) < count {
        meta.insert("next".into(), link("next", links.offset + links.limit));
        if links.chat {
            let last = (count - 1) / links.limit * links.limit;
            meta.insert("last".into(), link("last", last));
        }
    }
    if links.offset > 0 {
        meta.insert(
            "prev".into(),
            link("prev", links.offset.saturating_sub(links.limit)),
        );
    }
    if partial {
        let lost = records.len().div_ceil(3);
        records.truncate(records.len() - lost);
    }
    let shards = if links.chat {
        json!({"failureShards": u8::from(partial), "totalShards": 6, "partialResult": partial})
    } else {
        json!({"partialResult": partial})
    };
    meta.insert("shardsStatusResult".into(), shards);
    let mut page = Map::new();
    page.insert("_metadata".into(), Value::Object(meta));
    page.insert(records_key.into(), Value::Array(records));
    Value::Object(page)
}

/// An MI record as search returns it under the `partial` fault: flagged `isPartial`, its
/// messages cut short and the heavier nodes left out.
fn cut_conversation(record: &mut Value) {
    record["info"]["isPartial"] = true.into();
    if let Some(messages) = record
        .get_mut("messageRecords")
        .and_then(Value::as_array_mut)
    {
        messages.truncate(2);
    }
    if let Some(obj) = record.as_object_mut() {
        for key in ["messageStatuses", "messageScores", "sdes", "unAuthSdes"] {
            obj.remove(key);
        }
    }
}

/// The same for an EH record: transcript cut short, surveys and SDEs left out.
fn cut_chat(record: &mut Value) {
    record["info"]["isPartial"] = true.into();
    if let Some(lines) = record
        .get_mut("transcript")
        .and_then(|t| t.get_mut("lines"))
        .and_then(Value::as_array_mut)
    {
        lines.truncate(2);
    }
    if let Some(obj) = record.as_object_mut() {
        for key in ["lineScores", "surveys", "sdes"] {
            obj.remove(key);
        }
    }
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a JSON value always serializes")
}

/// Stands in a record for the bytes of the `badutf8` fault until the page is serialised.
const BAD_UTF8_MARKER: &str = "@@lpdrop-bad-utf8@@";
/// What the marker becomes: as long, Latin-1 `é` and two bytes that never occur in UTF-8.
const BAD_UTF8_BYTES: &[u8; 19] = b"caf\xe9 au lait \xff\xfe!!!!";

/// Marks `record` (a conversation as JSON) for the `badutf8` fault.
fn mark_bad_utf8(record: &mut Value) {
    if let Some(info) = record.get_mut("info").and_then(Value::as_object_mut) {
        info.insert("device".into(), Value::String(BAD_UTF8_MARKER.into()));
    }
}

/// The page bytes with every marker replaced by bytes that are not UTF-8.
fn corrupt_marked(mut bytes: Vec<u8>) -> Vec<u8> {
    let marker = BAD_UTF8_MARKER.as_bytes();
    let mut from = 0;
    while let Some(at) = bytes[from..]
        .windows(marker.len())
        .position(|w| w == marker)
    {
        let at = from + at;
        bytes[at..at + marker.len()].copy_from_slice(BAD_UTF8_BYTES);
        from = at + marker.len();
    }
    bytes
}

// ---- Messaging Interactions --------------------------------------------------------------------

async fn search_conversations(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let n = admit(&st).await?;
    let pairs = authorise(&st, &account, &headers, &uri, "POST")?;
    let query = search::parse_query(&pairs).map_err(ApiError::bad_request)?;
    let now = chrono::Utc::now().timestamp_millis();
    let parsed = search::parse_body(&body, now).map_err(ApiError::bad_request)?;
    let fault = decide(&st, n, &Method::POST, &uri, &body);
    fail_early(&st, fault)?;
    let host = host_of(&st, &headers);
    if st.config.vendor_fixtures {
        let file = fixtures::for_window(fixtures::MI, parsed.window.from);
        let bytes = if query.offset == 0 {
            file.to_vec()
        } else {
            let links = PageLinks {
                host: &host,
                path: uri.path(),
                pairs: &pairs,
                offset: query.offset,
                limit: query.limit,
                chat: false,
            };
            to_bytes(&page_json(
                &links,
                fixtures::count(file),
                Vec::new(),
                false,
                MI_RECORDS,
            ))
        };
        return Ok(deliver(&st, fault, StatusCode::OK, bytes, &[]).await);
    }
    // Filtering scans up to 92 days of skeletons and a page builds 100 records: CPU work
    // that belongs off the async worker threads.
    let st2 = Arc::clone(&st);
    let (count, bytes) = tokio::task::spawn_blocking(move || {
        let st = st2;
        let page = run_search(&st.dataset, &query, &parsed);
        let (mut partial_records, mut bad_utf8) = (0, 0);
        let records: Vec<Value> = page
            .indices
            .iter()
            .map(|&i| {
                let mut r = parsed.content.apply(st.dataset.conversation(i), query.v2);
                if st.config.faults.partial_record(i, SALT_MI) {
                    cut_conversation(&mut r);
                    partial_records += 1;
                }
                if st.config.faults.bad_utf8_record(i) {
                    mark_bad_utf8(&mut r);
                    bad_utf8 += 1;
                }
                r
            })
            .collect();
        st.stats.add(Stat::PartialRecords, partial_records);
        st.stats.add(Stat::BadUtf8Records, bad_utf8);
        let links = PageLinks {
            host: &host,
            path: uri.path(),
            pairs: &pairs,
            offset: query.offset,
            limit: query.limit,
            chat: false,
        };
        let partial = fault == Fault::PartialPage && !records.is_empty();
        if partial {
            st.stats.add(Stat::PartialPages, 1);
        }
        let json = page_json(&links, page.count, records, partial, MI_RECORDS);
        let bytes = to_bytes(&json);
        (
            page.count,
            if bad_utf8 > 0 {
                corrupt_marked(bytes)
            } else {
                bytes
            },
        )
    })
    .await
    .map_err(runtime_error)?;
    if count == 0 && st.config.empty_as_no_content {
        return Ok(deliver(&st, fault, StatusCode::NO_CONTENT, Vec::new(), &[]).await);
    }
    Ok(deliver(&st, fault, StatusCode::OK, bytes, &[]).await)
}

struct Page {
    count: u64,
    indices: Vec<u64>,
}

/// Total hits and the indices of one page, in the requested order.
fn run_search(d: &Dataset, q: &search::SearchQuery, b: &search::SearchBody) -> Page {
    let range = d.index_range(b.window.from, b.window.to);
    if b.filter.is_empty() {
        return arithmetic_page(range, q.offset, q.limit, q.sort);
    }
    scan_page(range, q.offset, q.limit, q.sort, |i| {
        b.filter.matches(&d.skeleton(i))
    })
}

/// Without a filter, the count and the page are pure arithmetic on the range.
fn arithmetic_page(range: std::ops::Range<u64>, offset: u64, limit: u64, sort: Sort) -> Page {
    let count = range.end - range.start;
    let take = limit.min(count.saturating_sub(offset));
    let indices = (0..take)
        .map(|k| match sort {
            Sort::StartAsc => range.start + offset + k,
            Sort::StartDesc => range.end - 1 - offset - k,
        })
        .collect();
    Page { count, indices }
}

fn scan_page(
    range: std::ops::Range<u64>,
    offset: u64,
    limit: u64,
    sort: Sort,
    mut keep: impl FnMut(u64) -> bool,
) -> Page {
    let mut count = 0u64;
    let mut indices = Vec::new();
    let mut visit = |i: u64| {
        if keep(i) {
            if count >= offset && (indices.len() as u64) < limit {
                indices.push(i);
            }
            count += 1;
        }
    };
    match sort {
        Sort::StartAsc => range.for_each(&mut visit),
        Sort::StartDesc => range.rev().for_each(&mut visit),
    }
    Page { count, indices }
}

/// `conversations/conversation/search`: records by id, the way a client completes partial
/// records and re-fetches conversations that were still open (ids map back to their index; no
/// storage). Records are always whole here.
async fn conversations_by_id(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let n = admit(&st).await?;
    let pairs = authorise(&st, &account, &headers, &uri, "POST")?;
    search::parse_source(&pairs).map_err(ApiError::bad_request)?;
    let v2 = search::parse_version(&pairs).map_err(ApiError::bad_request)?;
    let parsed: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(parsed) = parsed else {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    };
    let ids = search::parse_ids(&parsed).map_err(ApiError::bad_request)?;
    let content = search::parse_content(&parsed).map_err(ApiError::bad_request)?;
    st.stats.add(Stat::ById, 1);
    let fault = decide(&st, n, &Method::POST, &uri, &body);
    fail_early(&st, fault)?;
    let host = host_of(&st, &headers);
    let links = PageLinks {
        host: &host,
        path: uri.path(),
        pairs: &pairs,
        offset: 0,
        limit: 0,
        chat: false,
    };
    if st.config.vendor_fixtures {
        let bytes = match fixtures::holding(fixtures::MI, MI_RECORDS, "conversationId", &ids) {
            Some(file) => file.to_vec(),
            None => to_bytes(&page_json(&links, 0, Vec::new(), false, MI_RECORDS)),
        };
        return Ok(deliver(&st, fault, StatusCode::OK, bytes, &[]).await);
    }
    let records: Vec<Value> = ids
        .iter()
        .filter_map(|id| st.dataset.index_of(id))
        .map(|i| content.apply(st.dataset.conversation(i), v2))
        .collect();
    let count = records.len() as u64;
    let partial = fault == Fault::PartialPage && !records.is_empty();
    if partial {
        st.stats.add(Stat::PartialPages, 1);
    }
    let json = page_json(&links, count, records, partial, MI_RECORDS);
    Ok(deliver(&st, fault, StatusCode::OK, to_bytes(&json), &[]).await)
}

/// `conversations/consumer/search`: validated like LivePerson (`consumer` and `status`
/// required); consumer ids are not indexed, so the page is empty.
async fn conversations_by_consumer(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let n = admit(&st).await?;
    let pairs = authorise(&st, &account, &headers, &uri, "POST")?;
    let query = search::parse_query(&pairs).map_err(ApiError::bad_request)?;
    let parsed: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    if parsed["consumer"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "'consumer' (a consumer participant id) is required",
        ));
    }
    if parsed["status"].as_array().is_none_or(Vec::is_empty) {
        return Err(ApiError::bad_request(
            "'status' (an array of OPEN and/or CLOSE) is required",
        ));
    }
    let fault = decide(&st, n, &Method::POST, &uri, &body);
    fail_early(&st, fault)?;
    let host = host_of(&st, &headers);
    let links = PageLinks {
        host: &host,
        path: uri.path(),
        pairs: &pairs,
        offset: query.offset,
        limit: query.limit,
        chat: false,
    };
    let json = page_json(&links, 0, Vec::new(), false, MI_RECORDS);
    Ok(deliver(&st, fault, StatusCode::OK, to_bytes(&json), &[]).await)
}

// ---- Engagement History ------------------------------------------------------------------------

async fn search_chats(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let n = admit(&st).await?;
    let pairs = authorise(&st, &account, &headers, &uri, "POST")?;
    let query = search::parse_chat_query(&pairs).map_err(ApiError::bad_request)?;
    let now = chrono::Utc::now().timestamp_millis();
    let parsed = search::parse_chat_body(&body, now).map_err(ApiError::bad_request)?;
    let by_id = parsed.filter.engagement_id.is_some();
    if by_id {
        st.stats.add(Stat::ById, 1);
    }
    let fault = decide(&st, n, &Method::POST, &uri, &body);
    fail_early(&st, fault)?;
    let host = host_of(&st, &headers);
    if st.config.vendor_fixtures {
        let links = PageLinks {
            host: &host,
            path: uri.path(),
            pairs: &pairs,
            offset: query.offset,
            limit: query.limit,
            chat: true,
        };
        let bytes = match &parsed.filter.engagement_id {
            Some(id) => fixtures::holding(
                fixtures::EH,
                EH_RECORDS,
                "engagementId",
                std::slice::from_ref(id),
            )
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|| to_bytes(&page_json(&links, 0, Vec::new(), false, EH_RECORDS))),
            None => {
                let file = fixtures::for_window(fixtures::EH, parsed.window.from);
                if query.offset == 0 {
                    file.to_vec()
                } else {
                    to_bytes(&page_json(
                        &links,
                        fixtures::count(file),
                        Vec::new(),
                        false,
                        EH_RECORDS,
                    ))
                }
            }
        };
        return Ok(deliver(&st, fault, StatusCode::OK, bytes, &[]).await);
    }
    let st2 = Arc::clone(&st);
    let (count, bytes) = tokio::task::spawn_blocking(move || {
        let st = st2;
        let page = run_chat_search(&st.dataset, &query, &parsed, now);
        let mut partial_records = 0;
        let records: Vec<Value> = page
            .indices
            .iter()
            .map(|&i| {
                let mut r = st.dataset.chat(i);
                // A search by engagementId is how a client completes a partial chat.
                if !by_id && st.config.faults.partial_record(i, SALT_EH) {
                    cut_chat(&mut r);
                    partial_records += 1;
                }
                r
            })
            .collect();
        st.stats.add(Stat::PartialRecords, partial_records);
        let links = PageLinks {
            host: &host,
            path: uri.path(),
            pairs: &pairs,
            offset: query.offset,
            limit: query.limit,
            chat: true,
        };
        let partial = fault == Fault::PartialPage && !records.is_empty();
        if partial {
            st.stats.add(Stat::PartialPages, 1);
        }
        let json = page_json(&links, page.count, records, partial, EH_RECORDS);
        (page.count, to_bytes(&json))
    })
    .await
    .map_err(runtime_error)?;
    if count == 0 && st.config.empty_as_no_content {
        return Ok(deliver(&st, fault, StatusCode::NO_CONTENT, Vec::new(), &[]).await);
    }
    Ok(deliver(&st, fault, StatusCode::OK, bytes, &[]).await)
}

/// Ended chats of the window (or the one engagement asked for) that pass the filters.
fn run_chat_search(d: &Dataset, q: &search::ChatQuery, b: &search::ChatBody, now: i64) -> Page {
    let ended = |i: u64| d.chat_end_time_ms(i) <= now;
    let f = &b.filter;
    let keep = |i: u64| {
        ended(i)
            && f.matches(&d.chat_skeleton(i))
            && f.visitor
                .as_ref()
                .is_none_or(|v| *v == d.chat_visitor_id(i))
    };
    if let Some(id) = &f.engagement_id {
        let hit = d.chat_index_of(id).filter(|&i| keep(i));
        return match hit {
            Some(i) => scan_page(i..i + 1, q.offset, q.limit, q.sort, |_| true),
            None => Page {
                count: 0,
                indices: Vec::new(),
            },
        };
    }
    let mut range = d.chat_index_range(b.window.from, b.window.to);
    if f.visitor.is_some() {
        // No time limit applies to a visitor search: look back over the retention at most.
        let oldest = d.chat_index_range(now - RETENTION_MS, now).start;
        range.start = range.start.max(oldest.min(range.end));
    }
    let all_ended = b.window.to.saturating_add(MAX_CHAT_MS) < now;
    if f.is_empty() && all_ended {
        return arithmetic_page(range, q.offset, q.limit, q.sort);
    }
    scan_page(range, q.offset, q.limit, q.sort, keep)
}

// ---- Account configuration ---------------------------------------------------------------------

async fn account_config(
    State(st): State<Arc<AppState>>,
    Path((account, entity)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let n = admit(&st).await?;
    let pairs = authorise(&st, &account, &headers, &uri, "GET")?;
    let entity = Entity::parse(&entity).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown entity '{entity}' (users, skills or agentGroups)"),
        )
    })?;
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match param("v") {
        Some("1" | "1.0" | "2" | "2.0" | "3" | "3.0" | "4" | "4.0") => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "query parameter 'v' must be 1.0 to 4.0, got '{v}'"
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "query parameter 'v' is required (4.0 for users)",
            ));
        }
    }
    let include_deleted = match param("include_deleted") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "query parameter 'include_deleted' must be true or false, got '{other}'"
            )));
        }
    };
    let selected: Option<Vec<String>> = param("select").map(|s| {
        s.split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect()
    });
    let fault = decide(&st, n, &Method::GET, &uri, b"");
    fail_early(&st, fault)?;
    let revision = [("ac-revision", ACCOUNT_REVISION.to_string())];
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"'));
    if if_match == Some(ACCOUNT_REVISION) {
        return Ok(deliver(
            &st,
            Fault::None,
            StatusCode::NOT_MODIFIED,
            Vec::new(),
            &revision,
        )
        .await);
    }
    let bytes = if st.config.vendor_fixtures {
        fixtures::as_array(match entity {
            Entity::Users => fixtures::USERS,
            Entity::Skills => fixtures::SKILLS,
            Entity::AgentGroups => fixtures::AGENT_GROUPS,
        })
    } else {
        let mut items = account::list(entity, include_deleted);
        if let Some(fields) = &selected {
            let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
            items = account::select(items, &fields);
        }
        to_bytes(&Value::Array(items))
    };
    Ok(deliver(&st, fault, StatusCode::OK, bytes, &revision).await)
}

// ---- Login Service and Sentinel ------------------------------------------------------------------

/// The Login Service's error body (documented for refresh).
fn login_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {
        "time": chrono::Utc::now().format("%b %-d, %Y %-I:%M:%S %p").to_string(),
        "message": message,
        "internalCode": 10,
        "responseStatus": status.canonical_reason().unwrap_or("").to_ascii_uppercase().replace(' ', "_"),
    }});
    (status, axum::Json(body)).into_response()
}

fn session_id_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("session_id")
                .then(|| value.trim().to_string())
        })
}

/// `POST /api/account/{id}/login?v=1.3` with `{"username","password"}` (§2.2).
async fn login(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    if account != st.config.account_id {
        return login_error(
            StatusCode::UNAUTHORIZED,
            "Bad Authentication (invalid site)",
        );
    }
    let pairs = match query_pairs(&uri) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if let Some((_, v)) = pairs.iter().find(|(k, _)| k == "v")
        && v != "1.3"
    {
        return login_error(StatusCode::BAD_REQUEST, "unsupported version; use v=1.3");
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return login_error(
                StatusCode::BAD_REQUEST,
                &format!("the body is not valid JSON: {e}"),
            );
        }
    };
    let (Some(username), Some(password)) =
        (parsed["username"].as_str(), parsed["password"].as_str())
    else {
        return login_error(
            StatusCode::BAD_REQUEST,
            "the body needs 'username' and 'password'",
        );
    };
    if username != st.config.login.id || password != st.config.login.secret {
        return login_error(
            StatusCode::UNAUTHORIZED,
            "Bad Authentication (invalid site, agent, or credentials)",
        );
    }
    st.stats.add(Stat::Logins, 1);
    let ttl = st.config.session_ttl;
    let new = st.sessions.login(ttl);
    let now = chrono::Utc::now().timestamp_millis();
    let groups: Vec<Value> = crate::catalog::GROUPS
        .iter()
        .map(|g| json!({"id": g.id, "deleted": false, "name": g.name}))
        .collect();
    let answer = json!({
        "csrf": new.csrf,
        "wsuk": format!("{:x}", crate::rng::mix(now as u64)),
        "config": {
            "loginName": username, "userId": "2200000002", "userPrivileges": [1, 6, 28, 44],
            "serverCurrentTime": now, "timeDiff": 0, "serverTimeZoneName": "UTC",
            "serverTimeGMTDiff": 0, "isLPA": false, "isAdmin": true, "accountTimeZoneId": "Europe/London",
        },
        "csdsCollectionResponse": {"baseURIs": base_uris(&st)},
        "accountData": {"agentGroupsData": {"items": groups, "revision": 1}},
        "sessionTTl": ttl.as_millis().to_string(),
        "bearer": new.bearer,
    });
    let mut resp = axum::Json(answer).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "Session_id={}; Path=/; Secure; HttpOnly",
        new.session_id
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    resp
}

/// `POST /api/account/{id}/refresh` with the `Session_id` cookie and `{"csrf"}`: 200, empty.
async fn refresh(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if account != st.config.account_id {
        return login_error(
            StatusCode::UNAUTHORIZED,
            "Bad Authentication (invalid site)",
        );
    }
    let csrf = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["csrf"].as_str().map(str::to_string))
        .unwrap_or_default();
    let Some(session_id) = session_id_cookie(&headers) else {
        return login_error(
            StatusCode::UNAUTHORIZED,
            "Bad Authentication (no Session_id cookie)",
        );
    };
    match st
        .sessions
        .refresh(&session_id, &csrf, st.config.session_ttl)
    {
        Ok(()) => {
            st.stats.add(Stat::Refreshes, 1);
            StatusCode::OK.into_response()
        }
        Err(reason) => login_error(StatusCode::UNAUTHORIZED, reason),
    }
}

/// `POST /api/account/{id}/logout`.
async fn logout(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Response {
    if account != st.config.account_id {
        return login_error(
            StatusCode::UNAUTHORIZED,
            "Bad Authentication (invalid site)",
        );
    }
    match session_id_cookie(&headers) {
        Some(id) if st.sessions.logout(&id) => StatusCode::OK.into_response(),
        _ => login_error(StatusCode::UNAUTHORIZED, "no such login session"),
    }
}

/// `POST /sentinel/api/account/{id}/app/token` with a form body (§2.3).
async fn sentinel_token(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
    body: Bytes,
) -> Response {
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    // The form body decodes like a query string.
    let form = std::str::from_utf8(&body)
        .ok()
        .and_then(|b| format!("/?{b}").parse::<Uri>().ok())
        .and_then(|u| Query::<Vec<(String, String)>>::try_from_uri(&u).ok())
        .map(|q| q.0);
    let Some(form) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let client = &st.config.oauth_client;
    if account != st.config.account_id
        || field("client_id") != Some(client.id.as_str())
        || field("client_secret") != Some(client.secret.as_str())
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret for this account",
        );
    }
    st.stats.add(Stat::Tokens, 1);
    let token = st
        .sessions
        .issue_token(&account, &client.id, st.config.token_ttl);
    axum::Json(json!({"access_token": token, "token_type": "Bearer"})).into_response()
}
