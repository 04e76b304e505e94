//! The embedded backend: one SQLite file. Worker processes on one machine share it; every
//! change runs in a `BEGIN IMMEDIATE` transaction, so SQLite's write lock serialises claims
//! (the job a claim selects cannot be claimed by anyone else before it commits). The file is in
//! WAL mode, and a busy connection waits for the lock instead of failing.
//!
//! This file is plumbing only: the connection, its transactions, and [`Db`] over rusqlite.
//! What the operations do is [`crate::machine`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use crate::db::{Access, BoxFuture, Cell, Db, Dialect, Row, Turn, Value};
use crate::{QueueError, Result};

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct SqliteQueue {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

/// [`Db`] on the connection, inside a `BEGIN IMMEDIATE` transaction for writes (rolled back
/// when dropped uncommitted, also while unwinding) or outside any for reads.
///
/// It holds the connection by `&mut`, which is `Send` (a `rusqlite::Transaction` holds it by
/// `&` and is not), as [`Db`] requires.
pub(crate) struct SqliteDb<'c> {
    conn: &'c mut Connection,
    in_transaction: bool,
}

impl<'c> SqliteDb<'c> {
    fn begin(conn: &'c mut Connection) -> rusqlite::Result<Self> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteDb {
            conn,
            in_transaction: true,
        })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("COMMIT")?;
        self.in_transaction = false;
        Ok(())
    }

    fn sync_query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let mut stmt = self.conn.prepare_cached(&placeholders(sql))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(to_sql)))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut cells = Vec::with_capacity(columns);
            for i in 0..columns {
                cells.push(match r.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    other => {
                        return Err(QueueError::Invalid(format!(
                            "column {i}: unexpected SQLite value of type {}",
                            other.data_type()
                        )));
                    }
                });
            }
            out.push(Row(cells));
        }
        Ok(out)
    }
}

impl Drop for SqliteDb<'_> {
    fn drop(&mut self) {
        if self.in_transaction {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Int(Some(i)) => rusqlite::types::Value::Integer(*i),
        Value::Text(Some(t)) => rusqlite::types::Value::Text(t.clone()),
        Value::Int(None) | Value::Text(None) => rusqlite::types::Value::Null,
    }
}

/// The shared SQL's `$N` placeholders as SQLite's `?N` (a bare `$1` would be a named
/// parameter to SQLite, numbered by first appearance rather than by its digits).
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

impl Db for SqliteDb<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value],
    ) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(std::future::ready(self.sync_query(sql, params)))
    }

    fn execute<'a>(&'a mut self, sql: &'a str, params: &'a [Value]) -> BoxFuture<'a, Result<u64>> {
        let result = (|| {
            let mut stmt = self.conn.prepare_cached(&placeholders(sql))?;
            let n = stmt.execute(rusqlite::params_from_iter(params.iter().map(to_sql)))?;
            Ok(n as u64)
        })();
        Box::pin(std::future::ready(result))
    }

    fn batch<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(std::future::ready(
            self.conn.execute_batch(sql).map_err(QueueError::from),
        ))
    }

    /// This machine's clock: every process sharing the file runs on it.
    fn now_ms(&mut self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(std::future::ready(
            Ok(chrono::Utc::now().timestamp_millis()),
        ))
    }

    /// Writing transactions take turns already: they hold the file's write lock.
    fn take_turn<'a>(&'a mut self, _turn: Turn<'a>) -> BoxFuture<'a, Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Runs an operation on SQLite to its end. Every `Db` method of [`SqliteDb`] is answered
/// before it returns, and operations await nothing else, so the future is complete after one
/// poll; it never needs waking.
fn complete<T>(mut op: BoxFuture<'_, T>) -> T {
    match op.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("a queue operation awaited something other than SQLite"),
    }
}

/// Why [`set_up`] failed: SQLite's own errors stay as they are, so that `open` can tell BUSY.
enum SetUpError {
    Sqlite(rusqlite::Error),
    Queue(QueueError),
}

impl From<rusqlite::Error> for SetUpError {
    fn from(e: rusqlite::Error) -> Self {
        SetUpError::Sqlite(e)
    }
}

/// WAL mode and the schema at its current version.
fn set_up(conn: &mut Connection) -> std::result::Result<(), SetUpError> {
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let mut db = SqliteDb::begin(conn)?;
    complete(Box::pin(crate::schema::migrate(&mut db))).map_err(SetUpError::Queue)?;
    db.commit()?;
    Ok(())
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl SqliteQueue {
    pub async fn open(path: &str) -> Result<Self> {
        let path = PathBuf::from(path);
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            let mut conn = Connection::open(&p).map_err(|e| QueueError::Db {
                backend: "sqlite",
                message: format!("cannot open {}: {e}", p.display()),
            })?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // Switching a new file to WAL needs an exclusive lock, and SQLite answers BUSY at
            // once (without its busy handler) when another process is opening the same new
            // file: retry the set-up for as long as the busy timeout would have waited.
            let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
            loop {
                match set_up(&mut conn) {
                    Ok(()) => return Ok(conn),
                    Err(SetUpError::Sqlite(e))
                        if is_busy(&e) && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(25));
                    }
                    Err(SetUpError::Sqlite(e)) => return Err(e.into()),
                    Err(SetUpError::Queue(e)) => return Err(e),
                }
            }
        })
        .await
        .map_err(|e| QueueError::Invalid(format!("the SQLite thread failed: {e}")))??;
        Ok(SqliteQueue {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Runs `op` on the connection off the async workers; a write inside one IMMEDIATE
    /// transaction.
    pub(crate) async fn run<T, F>(&self, access: Access, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut dyn Db) -> BoxFuture<'a, Result<T>> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            if access == Access::Read {
                let mut db = SqliteDb {
                    conn: &mut guard,
                    in_transaction: false,
                };
                return complete(op(&mut db));
            }
            let mut db = SqliteDb::begin(&mut guard)?;
            let out = complete(op(&mut db))?;
            db.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| QueueError::Invalid(format!("the SQLite thread failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Migration, migrate_with};

    #[test]
    fn placeholders_become_sqlite_numbered_parameters() {
        assert_eq!(
            placeholders("UPDATE t SET a = $2 WHERE id = $1 AND b = '$x'"),
            "UPDATE t SET a = ?2 WHERE id = ?1 AND b = '$x'"
        );
        assert_eq!(placeholders("LIMIT $12"), "LIMIT ?12");
    }

    #[test]
    fn pending_migrations_apply_in_order_and_a_newer_queue_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        let migrate = |conn: &mut Connection, migrations: &[Migration]| {
            let mut db = SqliteDb::begin(conn).unwrap();
            let out = complete(Box::pin(migrate_with(&mut db, migrations)));
            if out.is_ok() {
                db.commit().unwrap();
            }
            out
        };
        let v1 = &crate::schema::MIGRATIONS[..1];
        assert_eq!(migrate(&mut conn, v1).unwrap(), 1);
        assert_eq!(migrate(&mut conn, v1).unwrap(), 1, "nothing left to apply");
        let v2 = [
            Migration { ..v1[0] },
            Migration {
                version: 2,
                description: "a column",
                sql: "ALTER TABLE lpdrop_jobs ADD COLUMN note TEXT",
            },
        ];
        assert_eq!(migrate(&mut conn, &v2).unwrap(), 2);
        conn.prepare("SELECT note FROM lpdrop_jobs").unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM lpdrop_schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(versions, [1, 2]);
        // A failing migration leaves nothing behind: its transaction rolls back.
        let v3 = [
            Migration { ..v2[0] },
            Migration { ..v2[1] },
            Migration {
                version: 3,
                description: "broken",
                sql: "CREATE TABLE t3 (a INT); SELECT * FROM no_such_table",
            },
        ];
        assert!(migrate(&mut conn, &v3).is_err());
        let t3: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 't3'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(t3, 0);
        // Code that knows only version 1 refuses the version 2 queue.
        let err = migrate(&mut conn, v1).unwrap_err();
        assert!(
            matches!(err, QueueError::SchemaTooNew { found: 2, known: 1 }),
            "{err}"
        );
        assert!(err.to_string().contains("newer lpdrop"), "{err}");
    }
}
