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
//!
//! Besides connecting, this file is plumbing only: transactions and [`Db`] over
//! tokio-postgres. What the operations do is [`crate::machine`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, GenericClient, NoTls, Statement};

use crate::db::{Access, BoxFuture, Cell, Db, Dialect, Row, Turn, Value};
use crate::{QueueError, Result};

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
        url: lpdrop_settings::redact_url(url),
        message: message.into(),
    }
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
        Host::Tcp(name) => lpdrop_settings::is_loopback_host(name),
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
        display: lpdrop_settings::redact_url(url),
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

/// [`Db`] on a connection: in a transaction (`C` = [`tokio_postgres::Transaction`]) for writes, on the
/// plain client for reads. Statements are prepared once per operation: a loop of inserts
/// does not parse its SQL again each time.
struct PgDb<'c, C> {
    client: &'c C,
    statements: HashMap<String, Statement>,
}

impl<'c, C: GenericClient + Sync> PgDb<'c, C> {
    fn new(client: &'c C) -> Self {
        PgDb {
            client,
            statements: HashMap::new(),
        }
    }

    async fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

fn to_sql(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|v| match v {
            Value::Int(i) => i as &(dyn ToSql + Sync),
            Value::Text(t) => t as &(dyn ToSql + Sync),
        })
        .collect()
}

fn from_sql(row: &tokio_postgres::Row) -> Result<Row> {
    let mut cells = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let cell = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|v| Cell::Int(i64::from(v)))
        } else if *ty == Type::TEXT || *ty == Type::VARCHAR {
            row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
        } else {
            return Err(QueueError::Invalid(format!(
                "column {} has the unexpected type {ty}",
                column.name()
            )));
        };
        cells.push(cell.unwrap_or(Cell::Null));
    }
    Ok(Row(cells))
}

impl<C: GenericClient + Sync> Db for PgDb<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(async move {
            let stmt = self.statement(sql).await?;
            let rows = self.client.query(&stmt, &to_sql(params)).await?;
            rows.iter().map(from_sql).collect()
        })
    }

    fn execute<'a>(&'a mut self, sql: &'a str, params: &'a [Value]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let stmt = self.statement(sql).await?;
            Ok(self.client.execute(&stmt, &to_sql(params)).await?)
        })
    }

    fn batch<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { Ok(self.client.batch_execute(sql).await?) })
    }

    /// The database server's clock, so that workers whose clocks disagree still agree on when
    /// a lease expires.
    fn now_ms(&mut self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            Ok(self
                .client
                .query_one(
                    "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
                    &[],
                )
                .await?
                .try_get(0)?)
        })
    }

    /// A transaction-scoped advisory lock. The keys are those of the releases before this
    /// one, so that old and new workers sharing a queue still take turns.
    fn take_turn<'a>(&'a mut self, turn: Turn<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match turn {
                Turn::Schema => {
                    self.client
                        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                        .await?;
                }
                Turn::Watermark { account_id, source } => {
                    self.client
                        .execute(
                            "SELECT pg_advisory_xact_lock(hashtext($1))",
                            &[&format!("lpdrop watermark {account_id} {source}")],
                        )
                        .await?;
                }
            }
            Ok(())
        })
    }
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
        queue
            .run(Access::Write, |db| Box::pin(crate::schema::migrate(db)))
            .await?;
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

    /// Runs `op` on the connection; a write in one transaction.
    pub(crate) async fn run<T, F>(&self, access: Access, op: F) -> Result<T>
    where
        F: for<'a> FnOnce(&'a mut dyn Db) -> BoxFuture<'a, Result<T>>,
    {
        let mut conn = self.conn().await?;
        let client = conn.as_mut().expect("connected");
        if access == Access::Read {
            return op(&mut PgDb::new(&*client)).await;
        }
        let tx = client.transaction().await?;
        let out = op(&mut PgDb::new(&tx)).await?;
        tx.commit().await?;
        Ok(out)
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
}
