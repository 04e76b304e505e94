//! What the queue's logic ([`crate::machine`], [`crate::schema`]) needs from a database, and
//! all a backend has to supply: run SQL in its transaction, read the clock all workers agree
//! on, and make some transactions take turns. The SQL itself is written once, with
//! Postgres' `$1` placeholders; the few places where the two dialects differ are
//! [`Dialect`]'s methods.
//!
//! The methods return boxed futures so that an operation can take `&mut dyn Db` and be
//! written once for both backends. Operations await nothing but these methods: the SQLite
//! backend answers them synchronously and relies on that (see `sqlite::complete`).

use std::future::Future;
use std::pin::Pin;

use crate::{QueueError, Result, Source};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Appended to a `SELECT` of job rows that the transaction goes on to change: Postgres
    /// locks them until it ends. SQLite needs nothing: a writing transaction holds the whole
    /// file's write lock (`BEGIN IMMEDIATE`).
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// Like [`Dialect::for_update`], for claims: a row another worker is claiming right now
    /// is passed over instead of waited for.
    pub(crate) fn for_update_skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// The type of an auto-increment primary key (`{ID}` in the schema).
    pub(crate) fn auto_id(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
        }
    }
}

/// How a backend runs an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Only reads: outside any transaction.
    Read,
    /// Changes something: in one transaction, committed when the operation succeeds.
    Write,
}

/// Transactions that must not interleave even when they touch no common row yet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Turn<'a> {
    /// Creating or migrating the schema.
    Schema,
    /// Moving the watermark of an account and source (before its first row exists, there is
    /// no row to lock).
    Watermark { account_id: &'a str, source: Source },
}

/// A parameter: every column is a 64-bit integer or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}

/// Counts are stored as BIGINT; a count beyond its range (never in practice) is clamped.
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(Some(i64::try_from(v).unwrap_or(i64::MAX)))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_string()))
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_string))
    }
}

/// A value read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// A result row, read the same way from either backend.
#[derive(Debug, Clone)]
pub(crate) struct Row(pub(crate) Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell> {
        self.0
            .get(i)
            .ok_or_else(|| QueueError::Invalid(format!("a result row has no column {i}")))
    }

    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            Cell::Text(t) => Err(QueueError::Invalid(format!(
                "column {i}: expected an integer, found {t:?}"
            ))),
        }
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?
            .ok_or_else(|| QueueError::Invalid(format!("column {i}: unexpected NULL")))
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(t) => Ok(Some(t.clone())),
            Cell::Int(v) => Err(QueueError::Invalid(format!(
                "column {i}: expected text, found {v}"
            ))),
        }
    }

    pub(crate) fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?
            .ok_or_else(|| QueueError::Invalid(format!("column {i}: unexpected NULL")))
    }
}

/// A connection inside one transaction (or, for reads, outside any).
pub(crate) trait Db: Send {
    fn dialect(&self) -> Dialect;

    /// Runs `sql` (with `$1`, `$2`, ... placeholders) and returns its rows.
    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value],
    ) -> BoxFuture<'a, Result<Vec<Row>>>;

    /// Runs `sql` and returns how many rows it changed.
    fn execute<'a>(&'a mut self, sql: &'a str, params: &'a [Value]) -> BoxFuture<'a, Result<u64>>;

    /// Runs several statements without parameters (schema changes).
    fn batch<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Milliseconds since the epoch on the clock every worker of this queue uses.
    fn now_ms(&mut self) -> BoxFuture<'_, Result<i64>>;

    /// Waits until no other transaction holds `turn`, and holds it until this one ends.
    fn take_turn<'a>(&'a mut self, turn: Turn<'a>) -> BoxFuture<'a, Result<()>>;
}

impl dyn Db + '_ {
    /// The first row, if any.
    pub(crate) async fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    pub(crate) async fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| QueueError::Invalid(format!("no row from {sql}")))
    }
}
