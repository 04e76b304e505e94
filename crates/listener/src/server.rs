//! The webhook endpoint: `POST` on `/` or any path below it (an app installation may give
//! each event type its own URL). The signature is checked over the raw body bytes before
//! anything parses them, and `200` is answered only once the notification is durable in the
//! spool.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use lpdrop_liveperson::webhook::notification::{Change, decode};
use lpdrop_liveperson::webhook::{ACCOUNT_HEADER, CLIENT_HEADER, signature};
use lpdrop_metrics::{WEBHOOK_ACK_DURATION, WEBHOOK_EVENTS, WEBHOOK_NOTIFICATIONS};

use crate::Secret;
use crate::spool::{SpoolWriter, Spooled};

/// The largest notification accepted; LivePerson's are a few kilobytes (a file preview is
/// under 30 KB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What every request needs.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub account_id: String,
    pub client_id: String,
    pub secret: Secret,
    pub spool: SpoolWriter,
    /// False once shutting down: new notifications are answered 503 (LivePerson retries).
    pub accepting: Arc<AtomicBool>,
}

pub(crate) fn router(endpoint: Endpoint) -> axum::Router {
    axum::Router::new().fallback(receive).with_state(endpoint)
}

fn refuse(status: StatusCode, reason: &'static str, message: String) -> Response {
    WEBHOOK_NOTIFICATIONS.inc(&[reason]);
    tracing::debug!(
        status = status.as_u16(),
        reason,
        "notification refused: {message}"
    );
    (status, message + "\n").into_response()
}

async fn receive(
    State(endpoint): State<Endpoint>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let answer = answer(&endpoint, method, &headers, body).await;
    WEBHOOK_ACK_DURATION.observe(&[], started.elapsed().as_secs_f64());
    answer
}

async fn answer(endpoint: &Endpoint, method: Method, headers: &HeaderMap, body: Body) -> Response {
    // A load balancer's default health check (GET /) finds the endpoint up; the listener's
    // own health is /healthz and /readyz on --metrics-addr.
    if method == Method::GET || method == Method::HEAD {
        return (
            StatusCode::OK,
            "lpdrop listen: POST LivePerson webhooks here\n",
        )
            .into_response();
    }
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [("allow", "GET, HEAD, POST")],
            "LivePerson webhooks are POSTed\n",
        )
            .into_response();
    }
    if !endpoint.accepting.load(Ordering::Relaxed) {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "shutting down; LivePerson will deliver it again".into(),
        );
    }
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let Some(bytes) = read_limited(body).await else {
        return too_large();
    };
    let Ok(bytes) = bytes else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "body_unreadable",
            "the request body could not be read".into(),
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(signed) = header(signature::HEADER) else {
        let why = signature::Refusal::Missing;
        return refuse(StatusCode::UNAUTHORIZED, why.reason(), why.to_string());
    };
    if let Err(why) = signature::verify(endpoint.secret.expose(), &bytes, signed) {
        return refuse(StatusCode::UNAUTHORIZED, why.reason(), why.to_string());
    }
    if let Some(account) = header(ACCOUNT_HEADER).filter(|a| *a != endpoint.account_id) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "other_account",
            format!("X-LivePerson-Account-Id {account:?} is not this listener's account"),
        );
    }
    if let Some(client) = header(CLIENT_HEADER).filter(|c| *c != endpoint.client_id) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "other_client",
            format!("X-LivePerson-Client-Id {client:?} is not this listener's app installation"),
        );
    }
    let documented = count_events(&bytes);
    let record = Spooled {
        received_ms: chrono::Utc::now().timestamp_millis(),
        body: bytes,
    };
    if let Err(e) = endpoint.spool.append(record).await {
        tracing::error!(error = %e, "a notification could not be spooled (answered 503)");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "spool_unavailable",
            "the notification could not be stored; LivePerson will deliver it again".into(),
        );
    }
    // Correctly signed but not a documented notification: kept (the next drop quarantines
    // it) and answered 200, so that LivePerson neither loses it nor retries it forever.
    WEBHOOK_NOTIFICATIONS.inc(&[if documented {
        "accepted"
    } else {
        "quarantined"
    }]);
    (StatusCode::OK, "").into_response()
}

fn too_large() -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// The body, or `None` when it is larger than [`MAX_BODY_BYTES`].
async fn read_limited(body: Body) -> Option<Result<Vec<u8>, axum::Error>> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                    return None;
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(bytes))
}

/// Counts the notification's events by type; false when it is not a documented notification.
fn count_events(body: &[u8]) -> bool {
    let Ok(notification) = decode(body) else {
        return false;
    };
    for (change, _) in &notification.changes {
        let kind = match change {
            Ok(Change::Messaging(m)) => m.event.type_name(),
            Ok(Change::Conversation(_)) => "ExConversationChange",
            Err(_) => "unreadable",
        };
        WEBHOOK_EVENTS.inc(&[kind]);
    }
    true
}
