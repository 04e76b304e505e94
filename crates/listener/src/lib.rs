//! `lpdrop listen`: LivePerson Connector API webhooks in, committed drops out, within minutes.
//!
//! ```text
//!  POST ──► server.rs ──durable──► spool.rs ──sealed segments──► publish.rs ──► run_drop
//!  (signature, account,   200      (segments,     every roll_every    (dedup by row key     (the
//!   client, size)                   group commit)  or roll_events      in state.rs)          pipeline)
//! ```
//!
//! LivePerson delivers at least once: it retries until it gets `200`/`201`, and may deliver
//! an event again after it was acknowledged. The listener makes that exactly once: `200` is
//! answered only once the notification is durable in the spool, and a row is published only
//! if its key (the table's grain: a message's conversation, dialog and sequence...) was never
//! published before, for as long as LivePerson may redeliver ([`state::SEEN_RETENTION_MS`]).
//! A drop's keys are recorded right before its marker and released if it is not committed,
//! so after a crash at any point the next start publishes each acknowledged event once.

pub mod publish;
mod server;
pub mod skills;
pub mod spool;
pub mod state;
pub mod tls;

use std::fmt;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use lpdrop_metrics::{WEBHOOK_DROPS, WEBHOOK_SPOOL_DEPTH};
use lpdrop_pipeline::{DropReport, NoProgress};
use tokio::sync::{mpsc, watch};

pub use publish::{Output, Refetch};
pub use server::MAX_BODY_BYTES;

use crate::publish::{Publishing, held_path, new_roll, planned, publish_roll};
use crate::spool::{SealedSignal, SegmentDir, SpoolWriter};
use crate::state::{Roll, State};

/// The app installation's client secret. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(Arc::from(secret.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the listener runs.
#[derive(Debug, Clone)]
pub struct ListenSettings {
    pub addr: SocketAddr,
    pub account_id: String,
    /// The app installation's client id (`X-LivePerson-Client-Id` must match when sent).
    pub client_id: String,
    pub client_secret: Secret,
    pub spool: PathBuf,
    /// Publish what the spool holds at least this often.
    pub roll_every: Duration,
    /// ... and as soon as it holds this many notifications.
    pub roll_events: u64,
    /// Serve HTTPS with this certificate chain and key (PEM); plain HTTP without.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Re-read conversations seen closing through the batch API (refetch jobs).
    pub refetch: Option<Refetch>,
    /// Keep only conversations routed to these skills.
    pub skills: Option<skills::SkillFilter>,
    /// Told that the publisher's loop turns (liveness), and that the listener drains.
    pub health: Option<lpdrop_metrics::HealthState>,
}

/// A running listener.
pub struct Listener {
    addr: SocketAddr,
    accepting: Arc<AtomicBool>,
    /// Stops the server; then `publish_last` has the publisher publish what is spooled.
    stop: watch::Sender<bool>,
    publish_last: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Ends with the number of notifications left in the spool (0 after a clean stop).
    publisher: tokio::task::JoinHandle<u64>,
    health: Option<lpdrop_metrics::HealthState>,
    spool: SpoolWriter,
    /// Held for the listener's life: one listener per spool.
    _lock: File,
}

/// What the publisher reports to the front end.
pub enum Published {
    /// A drop was committed.
    Drop(Box<DropReport>),
    /// A roll could not be published; it is tried again (the spool keeps everything).
    Failed(String),
}

impl Listener {
    /// Opens the spool (settling a roll a crash left in flight), binds `settings.addr`, and
    /// starts receiving and publishing. Every committed drop is sent on `published`.
    pub async fn start(
        settings: ListenSettings,
        output: Output,
        filters: serde_json::Value,
        published: mpsc::UnboundedSender<Published>,
    ) -> Result<Listener> {
        std::fs::create_dir_all(&settings.spool)
            .with_context(|| format!("cannot create the spool {}", settings.spool.display()))?;
        let lock = lock_spool(&settings.spool)?;
        let segments = SegmentDir::open(&settings.spool).context("opening the spool")?;
        let state = State::open(&settings.spool).context("opening the spool's state")?;
        let after = segments
            .list()?
            .last()
            .copied()
            .unwrap_or(0)
            .max(state.last_rolled_segment()?);
        let depth = Arc::new(AtomicU64::new(count_unpublished(&segments, &state)?));
        WEBHOOK_SPOOL_DEPTH.set(&[], depth.load(Ordering::Relaxed) as f64);
        let sealed = SealedSignal::default();
        let spool = SpoolWriter::start(
            segments.clone(),
            after,
            settings.roll_events,
            sealed.clone(),
            depth.clone(),
        )
        .context("starting the spool writer")?;
        let tls = match &settings.tls {
            Some((cert, key)) => Some(tls::server_config(cert, key)?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.addr))?;
        let addr = listener.local_addr()?;
        let accepting = Arc::new(AtomicBool::new(true));
        let (stop, stopped) = watch::channel(false);
        let (publish_last, last_call) = watch::channel(false);
        let endpoint = server::Endpoint {
            account_id: settings.account_id.clone(),
            client_id: settings.client_id.clone(),
            secret: settings.client_secret.clone(),
            spool: spool.clone(),
            accepting: accepting.clone(),
        };
        let mut server_stop = stopped.clone();
        let stopped_serving = async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        };
        let router = server::router(endpoint);
        let server = match tls {
            None => tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stopped_serving)
                    .await
            }),
            Some(config) => {
                let listener = tls::TlsListener::new(listener, config)?;
                tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(stopped_serving)
                        .await
                })
            }
        };
        let publisher = Publisher {
            with: Publishing {
                account_id: settings.account_id,
                segments,
                state: Arc::new(Mutex::new(state)),
                output,
                filters,
                refetch: settings.refetch.clone(),
                skills: settings.skills.clone(),
            },
            spool: spool.clone(),
            depth,
            published,
            health: settings.health.clone(),
            held: AtomicU64::new(0),
        };
        let roll_every = settings.roll_every;
        let publisher = tokio::spawn(publisher.run(roll_every, sealed, last_call));
        Ok(Listener {
            addr,
            accepting,
            stop,
            publish_last,
            server,
            publisher,
            spool,
            health: settings.health,
            _lock: lock,
        })
    }

    /// The address bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Notifications acknowledged and not yet published.
    pub fn spool_depth(&self) -> u64 {
        self.spool.depth()
    }

    /// Stops accepting (new requests get 503, so LivePerson keeps them), waits for the
    /// requests in flight, then publishes everything spooled. An error when something could
    /// not be published: it stays in the spool, and the next start publishes it.
    pub async fn shutdown(self) -> Result<()> {
        if let Some(health) = &self.health {
            health.draining();
        }
        self.accepting.store(false, Ordering::Relaxed);
        let _ = self.stop.send(true);
        let served = self.server.await.context("the webhook server panicked")?;
        // Only now is every acknowledged notification in the spool: the last roll takes all.
        let _ = self.publish_last.send(true);
        let left = self.publisher.await.context("the publisher panicked")?;
        served.context("the webhook server failed")?;
        anyhow::ensure!(
            left == 0,
            "{left} notifications could not be published and stay in the spool; the next \
             start publishes them"
        );
        Ok(())
    }
}

/// One listener per spool: a second one would publish the same segments.
fn lock_spool(spool: &Path) -> Result<File> {
    let path = spool.join("lock");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another lpdrop listen is using the spool {}; give each listener its own --spool",
            spool.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Notifications in segments no finished roll has taken.
/// Notifications in segments no finished roll has taken, and held ones.
fn count_unpublished(segments: &SegmentDir, state: &State) -> Result<u64> {
    let unfinished = state.unfinished_roll()?;
    let from = match &unfinished {
        Some(roll) => roll.first_segment,
        None => state.last_rolled_segment()? + 1,
    };
    let mut n = 0;
    for segment in segments.list()?.into_iter().filter(|s| *s >= from) {
        n += segments.read(segment)?.len() as u64;
    }
    // The unfinished roll's own held file is made again when it is built again.
    let abandoned = unfinished.map(|r| held_path(&segments.held_dir(), &r));
    for path in segments.held_files()? {
        if Some(&path) != abandoned.as_ref() {
            n += spool::read_file(&path)?.len() as u64;
        }
    }
    Ok(n)
}

struct Publisher {
    with: Publishing,
    spool: SpoolWriter,
    depth: Arc<AtomicU64>,
    published: mpsc::UnboundedSender<Published>,
    health: Option<lpdrop_metrics::HealthState>,
    /// Notifications the last roll held for their conversation's skill (`--skill`).
    held: AtomicU64,
}

/// Wait after a failed roll before trying again (the store may be down for a while).
const RETRY_AFTER: Duration = Duration::from_secs(5);

impl Publisher {
    /// Publishes until told to publish the last time; then what is left in the spool.
    async fn run(
        self,
        roll_every: Duration,
        sealed: SealedSignal,
        mut last_call: watch::Receiver<bool>,
    ) -> u64 {
        let mut next_roll = tokio::time::Instant::now() + roll_every;
        let mut stopping = false;
        loop {
            if let Some(health) = &self.health {
                health.beat();
            }
            // Whatever was sealed before (a crash, a restart) is published first.
            let ok = self.publish_sealed().await;
            if stopping {
                let held = self.held.load(Ordering::Relaxed);
                if held > 0 {
                    tracing::info!(
                        notifications = held,
                        "notifications wait in the spool for their conversation's skill (--skill)"
                    );
                }
                let left = self.spool.depth().saturating_sub(held);
                if !ok || left > 0 {
                    tracing::error!(
                        notifications = left,
                        "stopping with notifications still in the spool; the next start publishes them"
                    );
                }
                return left;
            }
            let wake = if ok {
                next_roll
            } else {
                tokio::time::Instant::now() + RETRY_AFTER
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= next_roll {
                        self.spool.seal().await;
                        next_roll = tokio::time::Instant::now() + roll_every;
                    }
                }
                _ = sealed.notified() => {}
                _ = async { last_call.wait_for(|last| *last).await.map(|_| ()) } => {
                    // The server has stopped taking notifications; everything spooled goes out.
                    stopping = true;
                    self.spool.seal().await;
                }
            }
        }
    }

    /// Publishes every sealed segment; false when a roll failed (it is tried again).
    async fn publish_sealed(&self) -> bool {
        match self.try_publish_sealed().await {
            Ok(()) => true,
            Err(e) => {
                WEBHOOK_DROPS.inc(&["failed"]);
                tracing::error!(
                    error = format!("{e:#}"),
                    "publishing the spool failed; trying again"
                );
                let _ = self.published.send(Published::Failed(format!("{e:#}")));
                false
            }
        }
    }

    async fn try_publish_sealed(&self) -> Result<()> {
        let roll = self.next_roll().await?;
        let Some(roll) = roll else {
            return Ok(());
        };
        let own = held_path(&self.with.segments.held_dir(), &roll);
        let held_in: Vec<PathBuf> = self
            .with
            .segments
            .held_files()?
            .into_iter()
            .filter(|p| *p != own)
            .collect();
        let (report, outcome) =
            publish_roll(&roll, held_in.clone(), &self.with, Arc::new(NoProgress)).await?;
        let committed = report.is_some();
        self.with
            .state
            .lock()
            .expect("state lock")
            .finish_roll(&roll, committed)?;
        self.remove_segments(&roll)?;
        for path in &held_in {
            std::fs::remove_file(path)
                .with_context(|| format!("removing held notifications {}", path.display()))?;
        }
        let (records, held) = {
            let outcome = outcome.lock().expect("outcome lock");
            (outcome.read, outcome.held)
        };
        self.held.store(held, Ordering::Relaxed);
        let before = self
            .depth
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_sub(records) + held)
            })
            .unwrap_or_default();
        WEBHOOK_SPOOL_DEPTH.set(&[], (before.saturating_sub(records) + held) as f64);
        WEBHOOK_DROPS.inc(&[if committed { "committed" } else { "empty" }]);
        match report {
            Some(report) => {
                let _ = self.published.send(Published::Drop(Box::new(report)));
            }
            None => tracing::info!(
                notifications = records,
                "the spool held only redeliveries: nothing to publish"
            ),
        }
        let now = chrono::Utc::now().timestamp_millis();
        self.with.state.lock().expect("state lock").prune(now)?;
        self.enqueue_refetch(now).await;
        Ok(())
    }

    /// One refetch job for the closed conversations waiting, unless one is pending already.
    /// A failure here loses nothing: the conversations stay remembered for the next roll.
    async fn enqueue_refetch(&self, now_ms: i64) {
        let Some(refetch) = &self.with.refetch else {
            return;
        };
        let target = lpdrop_jobs::schedule::RefetchTarget {
            account_id: &self.with.account_id,
            source: lpdrop_tables::Source::Messaging,
            dest: &refetch.dest,
            max_attempts: refetch.max_attempts,
        };
        match lpdrop_jobs::schedule::enqueue_refetch(&refetch.queue, &target, now_ms, now_ms + 1)
            .await
        {
            Ok(Some((job, waiting))) => {
                tracing::info!(
                    job,
                    conversations = waiting,
                    "refetch of closed conversations enqueued"
                );
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot enqueue the refetch of closed conversations; trying at the next drop")
            }
        }
    }

    /// The roll to publish: one left in flight (settled first), or the sealed segments not
    /// yet taken; `None` when there is nothing sealed.
    async fn next_roll(&self) -> Result<Option<Roll>> {
        let unfinished = self
            .with
            .state
            .lock()
            .expect("state lock")
            .unfinished_roll()?;
        if let Some(roll) = unfinished {
            let layout = planned(&roll).layout(self.with.output.prefix.clone());
            let committed = self
                .with
                .output
                .store
                .exists(&layout.marker_key())
                .await
                .context("checking whether the last drop was committed")?;
            if committed {
                tracing::info!(drop = %roll.drop_id, "the drop in flight at the last stop was committed");
                self.with
                    .state
                    .lock()
                    .expect("state lock")
                    .finish_roll(&roll, true)?;
                self.remove_segments(&roll)?;
                return Ok(None);
            }
            let fresh = new_roll(roll.first_segment, roll.last_segment);
            tracing::info!(
                abandoned = %roll.drop_id,
                drop = %fresh.drop_id,
                "the drop in flight at the last stop was not committed: building it again"
            );
            self.with
                .state
                .lock()
                .expect("state lock")
                .restart_roll(&roll, &fresh)?;
            // What it held is held again by the new attempt.
            let held = held_path(&self.with.segments.held_dir(), &roll);
            if let Err(e) = std::fs::remove_file(&held)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(e).with_context(|| format!("removing {}", held.display()));
            }
            return Ok(Some(fresh));
        }
        let last_rolled = self
            .with
            .state
            .lock()
            .expect("state lock")
            .last_rolled_segment()?;
        let open = self.spool.open_segment();
        let mut sealed = Vec::new();
        for segment in self.with.segments.list()? {
            if segment <= last_rolled {
                // Published, but a stop came before its file was removed.
                self.with.segments.remove(segment)?;
            } else if segment < open {
                sealed.push(segment);
            }
        }
        let roll = match (sealed.first(), sealed.last()) {
            (Some(first), Some(last)) => new_roll(*first, *last),
            // Nothing new, but held notifications may have expired: a roll of those alone.
            _ if !self.with.segments.held_files()?.is_empty() => {
                new_roll(last_rolled + 1, last_rolled)
            }
            _ => return Ok(None),
        };
        self.with
            .state
            .lock()
            .expect("state lock")
            .begin_roll(&roll)?;
        Ok(Some(roll))
    }

    fn remove_segments(&self, roll: &Roll) -> Result<()> {
        for segment in roll.first_segment..=roll.last_segment {
            self.with
                .segments
                .remove(segment)
                .with_context(|| format!("removing published spool segment {segment}"))?;
        }
        Ok(())
    }
}
