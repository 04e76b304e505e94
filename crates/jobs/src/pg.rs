//! The shared backend: Postgres. Any number of workers on any number of machines claim jobs
//! with `SELECT ... FOR UPDATE SKIP LOCKED`, so two claims never wait for, or get, the same
//! job. Times come from the database server's clock, so workers whose clocks disagree still
//! agree on when a lease expires.
//!
//! Transport security: a connection to a host that is not loopback always uses TLS (rustls,
//! certificates verified against the system's roots plus an optional `sslrootcert=FILE` in the
//! URL); `sslmode=disable` is refused for such hosts. On loopback (127.0.0.0/8, ::1,
//! `localhost`) or a Unix socket, plain connections are allowed and are the default; an
//! explicit `sslmode=prefer|require` still uses TLS there.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls, Row, Transaction};

use crate::{
    Attempt, Counts, DropRecord, FailOutcome, Heartbeat, JOB_COLUMNS, Job, JobRow, JobSpec,
    JobState, Lease, ListFilter, QueueError, Result, SCHEMA, Source, Summary, check_cancel,
    check_retry, clip, duration_ms, expired_on_last_attempt, lease_holds,
};

/// Serialises schema creation between workers starting at once.
const MIGRATION_LOCK: i64 = 0x6c70_6472_6f70_0001;

#[derive(Clone)]
pub struct PgQueue {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// One connection, reconnected when it breaks: queue operations are short, and a worker's
    /// few concurrent jobs share it without waiting long.
    client: Mutex<Option<Client>>,
    /// For messages: the URL without its password.
    display: String,
}

/// How to connect: the parsed configuration and, when TLS is used, the rustls connector.
pub(crate) struct ConnectPlan {
    pub config: Config,
    pub tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    pub display: String,
}

fn bad_url(url: &str, message: impl Into<String>) -> QueueError {
    QueueError::BadUrl {
        url: redact(url),
        message: message.into(),
    }
}

/// The URL with any password replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (a, h),
        None => return url.to_string(),
    };
    let mut out = format!("{scheme}://");
    match auth.split_once(':') {
        Some((user, _)) => out.push_str(&format!("{user}:***@")),
        None => out.push_str(&format!("{auth}@")),
    }
    out.push_str(host);
    // A password can also come as a query parameter.
    if let Some((base, query)) = out.clone().split_once('?') {
        let q: Vec<String> = query
            .split('&')
            .map(|kv| {
                if kv.starts_with("password=") {
                    "password=***".to_string()
                } else {
                    kv.to_string()
                }
            })
            .collect();
        out = format!("{base}?{}", q.join("&"));
    }
    out
}

fn is_loopback_name(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses a `postgres://` URL into a connection plan, enforcing the TLS rule.
pub(crate) fn plan(url: &str) -> Result<ConnectPlan> {
    // `sslrootcert` is ours (tokio-postgres does not know it): take it out of the query.
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut root_cert = None;
    let mut sslmode = None;
    let mut kept = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        if let Some(v) = kv.strip_prefix("sslrootcert=") {
            root_cert = Some(v.to_string());
        } else {
            if let Some(v) = kv.strip_prefix("sslmode=") {
                sslmode = Some(v.to_string());
            }
            kept.push(kv);
        }
    }
    let clean = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: Config = clean
        .parse()
        .map_err(|e: tokio_postgres::Error| bad_url(url, e.to_string()))?;
    if config.get_hosts().is_empty() {
        return Err(bad_url(url, "no host"));
    }
    let loopback = config.get_hosts().iter().all(|h| match h {
        Host::Tcp(name) => is_loopback_name(name),
        Host::Unix(_) => true,
    }) && config.get_hostaddrs().iter().all(|a| a.is_loopback());
    let use_tls = match sslmode.as_deref() {
        None => !loopback,
        Some("disable") => {
            if !loopback {
                return Err(bad_url(
                    url,
                    "sslmode=disable is refused for a host that is not loopback: the queue \
                     connection must use TLS (plain connections are allowed only on 127.0.0.1, \
                     ::1 or localhost)",
                ));
            }
            false
        }
        Some("prefer" | "require" | "verify-ca" | "verify-full") => true,
        Some(other) => return Err(bad_url(url, format!("unknown sslmode {other:?}"))),
    };
    let tls = if use_tls {
        // rustls always verifies the certificate chain and the host name.
        config.ssl_mode(SslMode::Require);
        Some(tls_connector(root_cert.as_deref()).map_err(|m| bad_url(url, m))?)
    } else {
        config.ssl_mode(SslMode::Disable);
        None
    };
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(15));
    }
    config.application_name("lpdrop");
    Ok(ConnectPlan {
        config,
        tls,
        display: redact(url),
    })
}

fn tls_connector(
    root_cert: Option<&str>,
) -> std::result::Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = root_cert {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read sslrootcert {path}: {e}"))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("cannot read sslrootcert {path}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("sslrootcert {path}: {e}"))?;
        }
    }
    if roots.is_empty() {
        return Err(
            "no trusted root certificates: install ca-certificates or give sslrootcert=FILE".into(),
        );
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn job_row(r: &Row) -> Result<JobRow> {
    Ok(JobRow {
        id: r.try_get(0)?,
        account_id: r.try_get(1)?,
        source: r.try_get(2)?,
        window_from: r.try_get(3)?,
        window_to: r.try_get(4)?,
        filters: r.try_get(5)?,
        dest: r.try_get(6)?,
        origin: r.try_get(7)?,
        state: r.try_get(8)?,
        attempts: r.try_get(9)?,
        max_attempts: r.try_get(10)?,
        not_before: r.try_get(11)?,
        lease_owner: r.try_get(12)?,
        lease_expires: r.try_get(13)?,
        drop_id: r.try_get(14)?,
        drop_created_at: r.try_get(15)?,
        drop_root: r.try_get(16)?,
        last_error: r.try_get(17)?,
        created_at: r.try_get(18)?,
        updated_at: r.try_get(19)?,
        started_at: r.try_get(20)?,
        finished_at: r.try_get(21)?,
        uploaded_at: r.try_get(22)?,
        conversations: r.try_get(23)?,
        open_conversations: r.try_get(24)?,
        rows: r.try_get(25)?,
        files: r.try_get(26)?,
        bytes: r.try_get(27)?,
    })
}

async fn now_ms(tx: &Transaction<'_>) -> Result<i64> {
    Ok(tx
        .query_one(
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            &[],
        )
        .await?
        .try_get(0)?)
}

/// The job, locked for this transaction.
async fn load(tx: &Transaction<'_>, id: i64) -> Result<Job> {
    let row = tx
        .query_opt(
            &format!("SELECT {JOB_COLUMNS} FROM lpdrop_jobs WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await?
        .ok_or(QueueError::NotFound(id))?;
    job_row(&row)?.into_job()
}

async fn check_lease(tx: &Transaction<'_>, lease: &Lease) -> Result<Job> {
    let job = load(tx, lease.job.id).await?;
    lease_holds(&job, lease)?;
    Ok(job)
}

async fn end_attempt(
    tx: &Transaction<'_>,
    job: i64,
    attempt: u32,
    now: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<()> {
    tx.execute(
        "UPDATE lpdrop_job_attempts SET ended_at = $3, outcome = $4, error = $5 \
         WHERE job_id = $1 AND attempt = $2 AND ended_at IS NULL",
        &[&job, &i64::from(attempt), &now, &outcome, &error],
    )
    .await?;
    Ok(())
}

async fn insert_jobs(tx: &Transaction<'_>, specs: &[JobSpec], now: i64) -> Result<Vec<i64>> {
    let stmt = tx
        .prepare(
            "INSERT INTO lpdrop_jobs (account_id, source, window_from, window_to, filters, dest, \
             origin, state, attempts, attempt_limit, max_attempts, not_before, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $8, $9, $9, $9) \
             RETURNING id",
        )
        .await?;
    let mut ids = Vec::with_capacity(specs.len());
    for s in specs {
        let row = tx
            .query_one(
                &stmt,
                &[
                    &s.account_id,
                    &s.source.as_str(),
                    &s.window_from_ms,
                    &s.window_to_ms,
                    &s.filters_json(),
                    &s.dest,
                    &s.origin,
                    &i64::from(s.max_attempts),
                    &now,
                ],
            )
            .await?;
        ids.push(row.try_get(0)?);
    }
    Ok(ids)
}

fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PgQueue {
    pub async fn connect(url: &str) -> Result<Self> {
        let plan = plan(url)?;
        let queue = PgQueue {
            inner: Arc::new(Inner {
                config: plan.config,
                tls: plan.tls,
                client: Mutex::new(None),
                display: plan.display,
            }),
        };
        let mut conn = queue.conn().await?;
        let client = conn.as_mut().expect("connected");
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(&SCHEMA.replace("{ID}", "BIGSERIAL PRIMARY KEY"))
            .await?;
        tx.commit().await?;
        drop(conn);
        Ok(queue)
    }

    /// The URL, password redacted.
    pub fn display_url(&self) -> &str {
        &self.inner.display
    }

    /// Whether this connection uses TLS.
    pub fn uses_tls(&self) -> bool {
        self.inner.tls.is_some()
    }

    /// Whether the server reports this session as encrypted (`pg_stat_ssl`).
    pub async fn session_encrypted(&self) -> Result<bool> {
        let conn = self.conn().await?;
        Ok(conn
            .as_ref()
            .expect("connected")
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?
            .try_get(0)?)
    }

    async fn conn(&self) -> Result<MutexGuard<'_, Option<Client>>> {
        let mut guard = self.inner.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let config = &self.inner.config;
            let connected = match &self.inner.tls {
                Some(tls) => config.connect(tls.clone()).await.map(|(client, conn)| {
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    client
                }),
                None => config.connect(NoTls).await.map(|(client, conn)| {
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    client
                }),
            };
            let client = connected.map_err(|e| QueueError::Db {
                backend: "postgres",
                message: format!("cannot connect: {}", crate::pg_message(&e)),
            })?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    pub(crate) async fn add(&self, specs: &[JobSpec]) -> Result<Vec<i64>> {
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let ids = insert_jobs(&tx, specs, now).await?;
        tx.commit().await?;
        Ok(ids)
    }

    pub(crate) async fn get(&self, id: i64) -> Result<Job> {
        let conn = self.conn().await?;
        let row = conn
            .as_ref()
            .expect("connected")
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM lpdrop_jobs WHERE id = $1"),
                &[&id],
            )
            .await?
            .ok_or(QueueError::NotFound(id))?;
        job_row(&row)?.into_job()
    }

    pub(crate) async fn list(&self, filter: &ListFilter) -> Result<Vec<Job>> {
        let conn = self.conn().await?;
        let states: Vec<String> = filter
            .states
            .iter()
            .map(|s| s.as_str().to_string())
            .collect();
        let limit = filter.limit.map_or(i64::MAX, count);
        let rows = conn
            .as_ref()
            .expect("connected")
            .query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM lpdrop_jobs \
                     WHERE (cardinality($1::TEXT[]) = 0 OR state = ANY($1)) \
                       AND ($2::TEXT IS NULL OR account_id = $2) \
                     ORDER BY id DESC LIMIT $3"
                ),
                &[&states, &filter.account_id, &limit],
            )
            .await?;
        let mut jobs = rows
            .iter()
            .map(|r| job_row(r)?.into_job())
            .collect::<Result<Vec<_>>>()?;
        jobs.reverse();
        Ok(jobs)
    }

    pub(crate) async fn attempts(&self, id: i64) -> Result<Vec<Attempt>> {
        self.get(id).await?;
        let conn = self.conn().await?;
        let rows = conn
            .as_ref()
            .expect("connected")
            .query(
                "SELECT attempt, worker, started_at, ended_at, outcome, error \
                 FROM lpdrop_job_attempts WHERE job_id = $1 ORDER BY attempt",
                &[&id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Attempt {
                    attempt: r.try_get::<_, i64>(0)?.max(0) as u32,
                    worker: r.try_get(1)?,
                    started_at_ms: r.try_get(2)?,
                    ended_at_ms: r.try_get(3)?,
                    outcome: r.try_get(4)?,
                    error: r.try_get(5)?,
                })
            })
            .collect()
    }

    pub(crate) async fn summary(&self) -> Result<Summary> {
        let conn = self.conn().await?;
        let client = conn.as_ref().expect("connected");
        let mut out = Summary::default();
        for r in client
            .query(
                "SELECT state, COUNT(*) FROM lpdrop_jobs GROUP BY state",
                &[],
            )
            .await?
        {
            let state: String = r.try_get(0)?;
            let n: i64 = r.try_get(1)?;
            out.by_state
                .insert(JobState::parse(&state)?, n.max(0) as u64);
        }
        out.next_due_ms = client
            .query_one(
                "SELECT MIN(t) FROM (\
                   SELECT MIN(not_before) AS t FROM lpdrop_jobs WHERE state IN ('queued', 'failed') \
                   UNION ALL \
                   SELECT MIN(lease_expires) AS t FROM lpdrop_jobs WHERE state IN ('running', 'finished')) m",
                &[],
            )
            .await?
            .try_get(0)?;
        Ok(out)
    }

    pub(crate) async fn cancel(&self, id: i64) -> Result<Job> {
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let job = load(&tx, id).await?;
        check_cancel(&job)?;
        if job.state != JobState::Cancelled {
            tx.execute(
                "UPDATE lpdrop_jobs SET state = 'cancelled', lease_expires = NULL, updated_at = $2 \
                 WHERE id = $1",
                &[&id, &now],
            )
            .await?;
            end_attempt(&tx, id, job.attempts, now, "cancelled", None).await?;
        }
        let job = load(&tx, id).await?;
        tx.commit().await?;
        Ok(job)
    }

    pub(crate) async fn retry(&self, id: i64) -> Result<Job> {
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let job = load(&tx, id).await?;
        check_retry(&job)?;
        tx.execute(
            "UPDATE lpdrop_jobs SET state = 'queued', not_before = $2, updated_at = $2, \
             lease_owner = NULL, lease_expires = NULL, max_attempts = attempts + attempt_limit \
             WHERE id = $1",
            &[&id, &now],
        )
        .await?;
        let job = load(&tx, id).await?;
        tx.commit().await?;
        Ok(job)
    }

    pub(crate) async fn claim(&self, worker: &str, lease: Duration) -> Result<Option<Lease>> {
        let lease_ms = duration_ms(lease);
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        loop {
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT {JOB_COLUMNS} FROM lpdrop_jobs \
                         WHERE (state IN ('queued', 'failed') AND not_before <= $1) \
                            OR (state IN ('running', 'finished') AND lease_expires <= $1) \
                         ORDER BY not_before, id LIMIT 1 FOR UPDATE SKIP LOCKED"
                    ),
                    &[&now],
                )
                .await?;
            let Some(row) = row else {
                tx.commit().await?;
                return Ok(None);
            };
            let job = job_row(&row)?.into_job()?;
            let taken_over = matches!(job.state, JobState::Running | JobState::Finished);
            if taken_over {
                end_attempt(&tx, job.id, job.attempts, now, "lease expired", None).await?;
                if job.attempts >= job.spec.max_attempts {
                    let error = expired_on_last_attempt(&job);
                    tx.execute(
                        "UPDATE lpdrop_jobs SET state = 'dead', last_error = $2, \
                         lease_expires = NULL, updated_at = $3 WHERE id = $1",
                        &[&job.id, &error, &now],
                    )
                    .await?;
                    continue;
                }
            }
            tx.execute(
                "UPDATE lpdrop_jobs SET state = 'running', attempts = attempts + 1, \
                 lease_owner = $2, lease_expires = $3, not_before = $4, \
                 started_at = COALESCE(started_at, $4), updated_at = $4 WHERE id = $1",
                &[&job.id, &worker, &(now + lease_ms), &now],
            )
            .await?;
            tx.execute(
                "INSERT INTO lpdrop_job_attempts (job_id, attempt, worker, started_at) \
                 VALUES ($1, $2, $3, $4)",
                &[&job.id, &(i64::from(job.attempts) + 1), &worker, &now],
            )
            .await?;
            let job = load(&tx, job.id).await?;
            tx.commit().await?;
            return Ok(Some(Lease {
                attempt: job.attempts,
                owner: worker.to_string(),
                taken_over,
                job,
            }));
        }
    }

    pub(crate) async fn heartbeat(&self, lease: &Lease, duration: Duration) -> Result<Heartbeat> {
        let ms = duration_ms(duration);
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let job = load(&tx, lease.job.id).await?;
        let out = match lease_holds(&job, lease) {
            Ok(()) => {
                tx.execute(
                    "UPDATE lpdrop_jobs SET lease_expires = $2, updated_at = $3 WHERE id = $1",
                    &[&job.id, &(now + ms), &now],
                )
                .await?;
                Heartbeat::Renewed {
                    expires_ms: now + ms,
                }
            }
            Err(_) if job.state == JobState::Cancelled => Heartbeat::Cancelled,
            Err(_) => Heartbeat::Lost,
        };
        tx.commit().await?;
        Ok(out)
    }

    pub(crate) async fn record_drop(&self, lease: &Lease, drop: &DropRecord) -> Result<DropRecord> {
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let job = check_lease(&tx, lease).await?;
        if let Some(existing) = job.drop {
            tx.commit().await?;
            return Ok(existing);
        }
        tx.execute(
            "UPDATE lpdrop_jobs SET drop_id = $2, drop_created_at = $3, drop_root = $4, \
             updated_at = $5 WHERE id = $1",
            &[&job.id, &drop.id, &drop.created_at_ms, &drop.root, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(drop.clone())
    }

    pub(crate) async fn finish(&self, lease: &Lease, c: &Counts) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let job = check_lease(&tx, lease).await?;
        tx.execute(
            "UPDATE lpdrop_jobs SET state = 'finished', finished_at = $2, updated_at = $2, \
             conversations = $3, open_conversations = $4, rows_written = $5, files = $6, \
             bytes = $7 WHERE id = $1",
            &[
                &job.id,
                &now,
                &count(c.conversations),
                &count(c.open_conversations),
                &count(c.rows),
                &count(c.files),
                &count(c.bytes),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn uploaded(&self, lease: &Lease, counts: Option<&Counts>) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let job = check_lease(&tx, lease).await?;
        tx.execute(
            "UPDATE lpdrop_jobs SET state = 'uploaded', uploaded_at = $2, \
             finished_at = COALESCE(finished_at, $2), updated_at = $2, lease_expires = NULL \
             WHERE id = $1",
            &[&job.id, &now],
        )
        .await?;
        if let Some(c) = counts {
            tx.execute(
                "UPDATE lpdrop_jobs SET conversations = $2, open_conversations = $3, \
                 rows_written = $4, files = $5, bytes = $6 WHERE id = $1",
                &[
                    &job.id,
                    &count(c.conversations),
                    &count(c.open_conversations),
                    &count(c.rows),
                    &count(c.files),
                    &count(c.bytes),
                ],
            )
            .await?;
        }
        end_attempt(&tx, job.id, lease.attempt, now, "uploaded", None).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<FailOutcome> {
        let error = clip(error, 4000);
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let job = check_lease(&tx, lease).await?;
        let outcome = match retry_after {
            Some(d) if job.attempts < job.spec.max_attempts => {
                FailOutcome::RetryAt(now + duration_ms(d))
            }
            _ => FailOutcome::Dead,
        };
        let (state, not_before) = match outcome {
            FailOutcome::RetryAt(t) => ("failed", t),
            FailOutcome::Dead => ("dead", now),
        };
        tx.execute(
            "UPDATE lpdrop_jobs SET state = $2, not_before = $3, last_error = $4, \
             lease_expires = NULL, updated_at = $5 WHERE id = $1",
            &[&job.id, &state, &not_before, &error, &now],
        )
        .await?;
        end_attempt(&tx, job.id, lease.attempt, now, state, Some(&error)).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    pub(crate) async fn release(&self, lease: &Lease, delay: Duration) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let job = check_lease(&tx, lease).await?;
        tx.execute(
            "UPDATE lpdrop_jobs SET state = 'queued', not_before = $2, updated_at = $3, \
             lease_owner = NULL, lease_expires = NULL, max_attempts = max_attempts + 1 \
             WHERE id = $1",
            &[&job.id, &(now + duration_ms(delay)), &now],
        )
        .await?;
        end_attempt(&tx, job.id, lease.attempt, now, "handed back", None).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn watermark(&self, account_id: &str, source: Source) -> Result<Option<i64>> {
        let conn = self.conn().await?;
        let row = conn
            .as_ref()
            .expect("connected")
            .query_opt(
                "SELECT watermark FROM lpdrop_watermarks WHERE account_id = $1 AND source = $2",
                &[&account_id, &source.as_str()],
            )
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    pub(crate) async fn advance_watermark(
        &self,
        account_id: &str,
        source: Source,
        expected: Option<i64>,
        new: i64,
        specs: &[JobSpec],
    ) -> Result<Option<Vec<i64>>> {
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        // Schedulers of one account and source take turns, also before the first watermark
        // row exists (a row lock could not cover that).
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("lpdrop watermark {account_id} {source}")],
        )
        .await?;
        let current: Option<i64> = match tx
            .query_opt(
                "SELECT watermark FROM lpdrop_watermarks WHERE account_id = $1 AND source = $2",
                &[&account_id, &source.as_str()],
            )
            .await?
        {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        };
        if current != expected {
            tx.commit().await?;
            return Ok(None);
        }
        let ids = insert_jobs(&tx, specs, now).await?;
        tx.execute(
            "INSERT INTO lpdrop_watermarks (account_id, source, watermark, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, source) \
             DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at",
            &[&account_id, &source.as_str(), &new, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(ids))
    }

    pub(crate) async fn add_open_conversations(
        &self,
        job_id: i64,
        ids: &[String],
    ) -> Result<usize> {
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let job = load(&tx, job_id).await?;
        let stmt = tx
            .prepare(
                "INSERT INTO lpdrop_open_conversations \
                 (account_id, source, conversation_id, job_id, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, source, conversation_id) \
                 DO UPDATE SET job_id = excluded.job_id, recorded_at = excluded.recorded_at, \
                 taken_by = NULL, taken_at = NULL",
            )
            .await?;
        for id in ids {
            tx.execute(
                &stmt,
                &[
                    &job.spec.account_id,
                    &job.spec.source.as_str(),
                    id,
                    &job_id,
                    &now,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(ids.len())
    }

    pub(crate) async fn take_open_conversations(
        &self,
        account_id: &str,
        source: Source,
        limit: u32,
        taker: &str,
    ) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        let tx = conn.as_mut().expect("connected").transaction().await?;
        let now = now_ms(&tx).await?;
        let rows = tx
            .query(
                "SELECT conversation_id FROM lpdrop_open_conversations \
                 WHERE account_id = $1 AND source = $2 \
                 AND (taken_by IS NULL OR taken_by = $4) \
                 ORDER BY taken_by IS NULL, recorded_at, conversation_id LIMIT $3 \
                 FOR UPDATE SKIP LOCKED",
                &[&account_id, &source.as_str(), &i64::from(limit), &taker],
            )
            .await?;
        let ids = rows
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        tx.execute(
            "UPDATE lpdrop_open_conversations SET taken_by = $4, taken_at = $5 \
             WHERE account_id = $1 AND source = $2 AND conversation_id = ANY($3)",
            &[&account_id, &source.as_str(), &ids, &taker, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(ids)
    }

    pub(crate) async fn pending_open_conversations(
        &self,
        account_id: &str,
        source: Source,
        recorded_before_ms: i64,
    ) -> Result<u64> {
        let conn = self.conn().await?;
        let row = conn
            .as_ref()
            .expect("connected")
            .query_one(
                "SELECT count(*) FROM lpdrop_open_conversations \
                 WHERE account_id = $1 AND source = $2 AND taken_by IS NULL \
                 AND recorded_at < $3",
                &[&account_id, &source.as_str(), &recorded_before_ms],
            )
            .await?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    pub(crate) async fn open_conversations_of(&self, job_id: i64) -> Result<Vec<String>> {
        let conn = self.conn().await?;
        let rows = conn
            .as_ref()
            .expect("connected")
            .query(
                "SELECT conversation_id FROM lpdrop_open_conversations \
                 WHERE job_id = $1 AND taken_by IS NULL ORDER BY conversation_id",
                &[&job_id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<std::result::Result<Vec<_>, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_required_off_loopback_and_optional_on_it() {
        let p = plan("postgres://u@127.0.0.1:5432/db").unwrap();
        assert!(p.tls.is_none(), "plain on loopback by default");
        let p = plan("postgres://u@localhost/db?sslmode=require").unwrap();
        assert!(p.tls.is_some(), "TLS on loopback when asked for");
        let p = plan("postgres://u:secret@db.example.com/db").unwrap();
        assert!(p.tls.is_some(), "TLS off loopback");
        assert!(!p.display.contains("secret"));
        let err = plan("postgres://u:secret@db.example.com/db?sslmode=disable")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("refused"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err = plan("postgres://u@10.0.0.5/db?sslmode=disable")
            .err()
            .unwrap();
        assert!(err.to_string().contains("must use TLS"));
        assert!(plan("postgres://u@[::1]:5432/db").unwrap().tls.is_none());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://me:pw@h:5/d?sslmode=require"),
            "postgres://me:***@h:5/d?sslmode=require"
        );
        assert_eq!(
            redact("postgres://me@h/d?password=pw"),
            "postgres://me@h/d?password=***"
        );
        assert_eq!(redact("postgres://h/d"), "postgres://h/d");
    }
}
