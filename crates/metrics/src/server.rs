//! The worker's HTTP endpoints: `/metrics` (the global registry), `/healthz` (liveness: the
//! worker's loops are turning) and `/readyz` (readiness: the queue answers and the worker
//! takes jobs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const QUEUE_UNKNOWN: u8 = 0;
const QUEUE_OK: u8 = 1;
const QUEUE_FAILED: u8 = 2;

/// What `/healthz` and `/readyz` answer, updated by the worker. Cheap to clone and share.
#[derive(Debug, Clone)]
pub struct HealthState {
    inner: Arc<Health>,
}

#[derive(Debug)]
struct Health {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last [`HealthState::beat`].
    last_beat_ms: AtomicU64,
    stale_after: Duration,
    queue: AtomicU8,
    draining: AtomicBool,
}

impl HealthState {
    /// Live while [`beat`](Self::beat) was called within `stale_after`; not ready until the
    /// queue has answered once ([`queue_ok`](Self::queue_ok)).
    pub fn new(stale_after: Duration) -> HealthState {
        HealthState {
            inner: Arc::new(Health {
                epoch: Instant::now(),
                last_beat_ms: AtomicU64::new(0),
                stale_after,
                queue: AtomicU8::new(QUEUE_UNKNOWN),
                draining: AtomicBool::new(false),
            }),
        }
    }

    /// The worker's loop is alive.
    pub fn beat(&self) {
        let ms = self.inner.epoch.elapsed().as_millis() as u64;
        self.inner.last_beat_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The outcome of the last access to the job queue.
    pub fn queue_ok(&self, ok: bool) {
        let v = if ok { QUEUE_OK } else { QUEUE_FAILED };
        self.inner.queue.store(v, Ordering::Relaxed);
    }

    /// Stopping (SIGTERM): no new jobs, so not ready any more. Final.
    pub fn draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    /// `Err` with the reason when the last beat is older than the limit.
    pub fn liveness(&self) -> Result<(), String> {
        let last = Duration::from_millis(self.inner.last_beat_ms.load(Ordering::Relaxed));
        let since = self.inner.epoch.elapsed().saturating_sub(last);
        if since > self.inner.stale_after {
            return Err(format!(
                "the worker loop last reported {:.1} s ago (limit {:.1} s)",
                since.as_secs_f64(),
                self.inner.stale_after.as_secs_f64()
            ));
        }
        Ok(())
    }

    /// `Err` with the reason unless the worker takes jobs and the queue answered last time.
    pub fn readiness(&self) -> Result<(), String> {
        if self.inner.draining.load(Ordering::Relaxed) {
            return Err("draining after a stop signal: taking no new jobs".into());
        }
        match self.inner.queue.load(Ordering::Relaxed) {
            QUEUE_OK => {}
            QUEUE_FAILED => return Err("the last access to the job queue failed".into()),
            _ => return Err("the job queue has not answered yet".into()),
        }
        self.liveness()
    }
}

/// Binds `addr` (port 0 picks a free port) and serves `/metrics`, `/healthz` and `/readyz`
/// in a background task for as long as the runtime runs. Returns the bound address.
pub async fn serve(addr: SocketAddr, health: HealthState) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("metrics server on {bound}: {e}");
        }
    });
    Ok(bound)
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, crate::CONTENT_TYPE)],
        crate::render(),
    )
        .into_response()
}

fn answer(check: Result<(), String>, ok: &'static str) -> Response {
    let plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    match check {
        Ok(()) => (StatusCode::OK, plain, format!("{ok}\n")).into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, plain, format!("{why}\n")).into_response(),
    }
}

async fn healthz(State(health): State<HealthState>) -> Response {
    answer(health.liveness(), "ok")
}

async fn readyz(State(health): State<HealthState>) -> Response {
    answer(health.readiness(), "ready")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    #[test]
    fn liveness_goes_stale_without_beats() {
        let h = HealthState::new(Duration::from_secs(60));
        h.beat();
        assert!(h.liveness().is_ok());
        let strict = HealthState::new(Duration::ZERO);
        strict.beat();
        std::thread::sleep(Duration::from_millis(10));
        assert!(strict.liveness().unwrap_err().contains("last reported"));
    }

    #[tokio::test]
    async fn endpoints_answer_metrics_liveness_and_readiness() {
        static SERVED: crate::Counter =
            crate::Counter::new("lpdrop_test_served_total", "A test counter.", &["kind"]);
        SERVED.inc(&["a\"b"]);
        let health = HealthState::new(Duration::from_secs(60));
        health.beat();
        let addr = serve("127.0.0.1:0".parse().unwrap(), health.clone())
            .await
            .unwrap();

        let (status, head, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(
            body.contains("# TYPE lpdrop_test_served_total counter\n"),
            "{body}"
        );
        assert!(body.contains("lpdrop_test_served_total{kind=\"a\\\"b\"} 1\n"));

        assert_eq!(get(addr, "/healthz").await.0, 200);
        // Not ready before the queue has answered, ready after, not ready once it fails or
        // the worker drains.
        let (status, _, body) = get(addr, "/readyz").await;
        assert_eq!(
            (status, body.as_str()),
            (503, "the job queue has not answered yet\n")
        );
        health.queue_ok(true);
        assert_eq!(get(addr, "/readyz").await.0, 200);
        health.queue_ok(false);
        assert_eq!(get(addr, "/readyz").await.0, 503);
        health.queue_ok(true);
        health.draining();
        let (status, _, body) = get(addr, "/readyz").await;
        assert_eq!(status, 503);
        assert!(body.contains("draining"), "{body}");
        assert_eq!(
            get(addr, "/healthz").await.0,
            200,
            "still live while draining"
        );
        assert_eq!(get(addr, "/nothing").await.0, 404);
    }
}
