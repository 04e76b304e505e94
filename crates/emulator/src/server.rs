//! The HTTP side: Domain API, Messaging Interactions search and get-by-id, OAuth 1.0a checks.
//!
//! Status codes and their order follow LivePerson: authentication (401) is checked before the
//! request's parameters (400), so a client with a broken key learns that first.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lpdrop_liveperson::oauth1;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::search::{self, Sort};
use crate::{Dataset, EmulatorConfig};

/// Service names the Domain API knows (case-sensitive, as on LivePerson). They all point at
/// this one server, which only implements `msgHist`; the others exist so that a client's
/// discovery step behaves as it would against the real thing.
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

struct AppState {
    config: EmulatorConfig,
    dataset: Dataset,
    /// The bound address: what the Domain API hands out as `baseURI`.
    addr: SocketAddr,
}

/// A running emulator. Dropping it without [`Emulator::shutdown`] also stops the server (the
/// shutdown channel closes), but does not wait for it.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Emulator {
    /// Binds `addr` (port 0 allowed) and serves in a background tokio task.
    pub async fn start(config: EmulatorConfig, addr: SocketAddr) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState {
            dataset: Dataset::new(&config),
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
        Ok(Emulator { addr, stop, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"http://127.0.0.1:PORT"`, what a client uses as `LP_DOMAIN`.
    pub fn domain_url(&self) -> String {
        format!("http://{}", self.addr)
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
        .route(
            "/messaging_history/api/account/{account_id}/conversations/search",
            post(search_conversations),
        )
        .route(
            "/messaging_history/api/account/{account_id}/conversations/conversation/search",
            post(conversations_by_id),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such resource") })
        .with_state(state)
}

/// An error answer: the status plus a small JSON body saying what was wrong. LivePerson does
/// not document its error body, so this one is Spring-style (`status`, `error`, `message`).
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
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
        (self.status, axum::Json(body)).into_response()
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
    let uris: Vec<Value> = SERVICES
        .iter()
        .map(|s| json!({"service": s, "account": account, "baseURI": st.addr.to_string()}))
        .collect();
    Ok(axum::Json(json!({ "baseURIs": uris })).into_response())
}

/// What every signed MI call checks first: decoded query pairs, the OAuth signature over
/// them, and the account in the path. Returns the pairs for further validation.
fn authorise(
    st: &AppState,
    account: &str,
    headers: &HeaderMap,
    uri: &Uri,
    method: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    let auth = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized("missing Authorization header (OAuth 1.0a expected)")
        })?
        .to_str()
        .map_err(|_| ApiError::unauthorized("Authorization header is not ASCII"))?;
    let base_url = format!("http://{}{}", host_of(st, headers), uri.path());
    oauth1::verify(&st.config.api_key, auth, method, &base_url, &pairs)
        .map_err(|e| ApiError::unauthorized(format!("unauthorised: {e}")))?;
    if account != st.config.account_id {
        return Err(ApiError::unauthorized(format!(
            "the API key is not valid for account '{account}'"
        )));
    }
    Ok(pairs)
}

async fn search_conversations(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let pairs = authorise(&st, &account, &headers, &uri, "POST")?;
    let query = search::parse_query(&pairs).map_err(ApiError::bad_request)?;
    let now = chrono::Utc::now().timestamp_millis();
    let body = search::parse_body(&body, now).map_err(ApiError::bad_request)?;
    let host = host_of(&st, &headers);
    // Filtering scans up to 92 days of skeletons and a page builds 100 records: CPU work
    // that belongs off the async worker threads.
    let answer = tokio::task::spawn_blocking(move || {
        let page = run_search(&st.dataset, &query, &body);
        let link = |rel: &str, offset: u64| {
            json!({"rel": rel, "href": href(&host, uri.path(), &pairs, offset)})
        };
        let mut meta = Map::new();
        meta.insert("count".into(), page.count.into());
        meta.insert("self".into(), link("self", query.offset));
        if query.limit > 0 && query.offset.saturating_add(query.limit) < page.count {
            meta.insert("next".into(), link("next", query.offset + query.limit));
        }
        if query.offset > 0 {
            let previous = query.offset.saturating_sub(query.limit);
            meta.insert("prev".into(), link("prev", previous));
        }
        meta.insert("shardsStatusResult".into(), json!({"partialResult": false}));
        let records: Vec<Value> = page
            .indices
            .iter()
            .map(|&i| body.content.apply(st.dataset.conversation(i), query.v2))
            .collect();
        json!({"_metadata": meta, "conversationHistoryRecords": records})
    })
    .await
    .map_err(|e| {
        // LivePerson's internal code for an unexpected failure.
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("0008 Runtime exception: {e}"),
        )
    })?;
    Ok(axum::Json(answer).into_response())
}

struct Page {
    count: u64,
    indices: Vec<u64>,
}

/// Total hits and the indices of one page, in the requested order.
fn run_search(d: &Dataset, q: &search::SearchQuery, b: &search::SearchBody) -> Page {
    let range = d.index_range(b.window.from, b.window.to);
    if b.filter.is_empty() {
        // No filter: the count and the page are pure arithmetic on the range.
        let count = range.end - range.start;
        let take = q.limit.min(count.saturating_sub(q.offset));
        let indices = (0..take)
            .map(|k| match q.sort {
                Sort::StartAsc => range.start + q.offset + k,
                Sort::StartDesc => range.end - 1 - q.offset - k,
            })
            .collect();
        return Page { count, indices };
    }
    let mut count = 0u64;
    let mut indices = Vec::new();
    let mut visit = |i: u64| {
        if b.filter.matches(&d.skeleton(i)) {
            if count >= q.offset && (indices.len() as u64) < q.limit {
                indices.push(i);
            }
            count += 1;
        }
    };
    match q.sort {
        Sort::StartAsc => range.for_each(&mut visit),
        Sort::StartDesc => range.rev().for_each(&mut visit),
    }
    Page { count, indices }
}

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

/// `conversations/conversation/search`: records by id, the way a client re-fetches
/// conversations that were still open (ids map back to their index; no storage).
async fn conversations_by_id(
    State(st): State<Arc<AppState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let pairs = authorise(&st, &account, &headers, &uri, "POST")?;
    search::parse_source(&pairs).map_err(ApiError::bad_request)?;
    let v2 = search::parse_version(&pairs).map_err(ApiError::bad_request)?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    };
    let ids = search::parse_ids(&body).map_err(ApiError::bad_request)?;
    let content = search::parse_content(&body).map_err(ApiError::bad_request)?;
    let self_href = match uri.query() {
        Some(q) => format!("http://{}{}?{q}", host_of(&st, &headers), uri.path()),
        None => format!("http://{}{}", host_of(&st, &headers), uri.path()),
    };
    let records: Vec<Value> = ids
        .iter()
        .filter_map(|id| st.dataset.index_of(id))
        .map(|i| content.apply(st.dataset.conversation(i), v2))
        .collect();
    Ok(axum::Json(json!({
        "_metadata": {"count": records.len(), "self": {"rel": "self", "href": self_href},
                      "shardsStatusResult": {"partialResult": false}},
        "conversationHistoryRecords": records,
    }))
    .into_response())
}
