//! What the listener must remember across restarts, in `state.sqlite` beside the segments:
//!
//! - `seen`: the key of every row published (or being published), for
//!   [`SEEN_RETENTION_MS`]: LivePerson may redeliver an event for as long as it retains it
//!   (3 days), so a redelivery must still be recognised then;
//! - `rolls`: each drop being built from sealed segments, and whether it is committed;
//! - `skill_decisions`: with `--skill`, the conversations known to be kept or dropped.
//!
//! The exactly-once rule: a roll's keys are written (one transaction) before its marker, and
//! removed again if the drop turns out not to be committed, so that after any crash the keys
//! in `seen` are exactly those of committed drops plus the roll in flight.

use std::collections::HashMap;
use std::path::Path;

use lpdrop_tables::webhooks::RowKey;
use rusqlite::{Connection, OptionalExtension, params};

use crate::skills::Decision;

/// How long row keys are kept: LivePerson's longest retention (3 days) and a day of margin
/// for the listener's own downtime and rolls.
pub const SEEN_RETENTION_MS: i64 = 4 * 24 * 3600 * 1000;

/// A drop being built from a range of sealed segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roll {
    pub drop_id: uuid::Uuid,
    pub created_at_ms: i64,
    pub first_segment: u64,
    pub last_segment: u64,
}

pub struct State {
    db: Connection,
}

impl State {
    pub fn open(spool: &Path) -> rusqlite::Result<State> {
        let db = Connection::open(spool.join("state.sqlite"))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS seen (
                 key BLOB PRIMARY KEY,
                 drop_id TEXT NOT NULL,
                 at_ms INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS seen_at ON seen (at_ms);
             CREATE INDEX IF NOT EXISTS seen_drop ON seen (drop_id);
             CREATE TABLE IF NOT EXISTS rolls (
                 drop_id TEXT PRIMARY KEY,
                 created_at_ms INTEGER NOT NULL,
                 first_segment INTEGER NOT NULL,
                 last_segment INTEGER NOT NULL,
                 state TEXT NOT NULL CHECK (state IN ('building', 'committed', 'empty'))
             );
             CREATE TABLE IF NOT EXISTS skill_decisions (
                 conversation_id TEXT PRIMARY KEY,
                 decision TEXT NOT NULL CHECK (decision IN ('keep', 'drop')),
                 at_ms INTEGER NOT NULL
             );",
        )?;
        Ok(State { db })
    }

    /// The roll in flight when the last run stopped, if any.
    pub fn unfinished_roll(&self) -> rusqlite::Result<Option<Roll>> {
        self.db
            .query_row(
                "SELECT drop_id, created_at_ms, first_segment, last_segment FROM rolls
                 WHERE state = 'building' ORDER BY last_segment LIMIT 1",
                [],
                roll_of_row,
            )
            .optional()
    }

    /// The last segment any roll has taken: later ones are still to be published.
    pub fn last_rolled_segment(&self) -> rusqlite::Result<u64> {
        self.db.query_row(
            "SELECT COALESCE(MAX(last_segment), 0) FROM rolls",
            [],
            |r| r.get::<_, i64>(0).map(|n| n as u64),
        )
    }

    /// Records a new roll before anything of its drop is written.
    pub fn begin_roll(&self, roll: &Roll) -> rusqlite::Result<()> {
        self.db.execute(
            "INSERT INTO rolls (drop_id, created_at_ms, first_segment, last_segment, state)
             VALUES (?1, ?2, ?3, ?4, 'building')",
            params![
                roll.drop_id.to_string(),
                roll.created_at_ms,
                roll.first_segment as i64,
                roll.last_segment as i64
            ],
        )?;
        Ok(())
    }

    /// A roll whose drop was not committed gets a new drop id (the old folder has no marker,
    /// and `lpdrop gc` removes it), and the keys it had claimed are released.
    pub fn restart_roll(&mut self, roll: &Roll, fresh: &Roll) -> rusqlite::Result<()> {
        let tx = self.db.transaction()?;
        tx.execute(
            "DELETE FROM seen WHERE drop_id = ?1",
            [roll.drop_id.to_string()],
        )?;
        tx.execute(
            "UPDATE rolls SET drop_id = ?2, created_at_ms = ?3 WHERE drop_id = ?1",
            params![
                roll.drop_id.to_string(),
                fresh.drop_id.to_string(),
                fresh.created_at_ms
            ],
        )?;
        tx.commit()
    }

    /// True when a row with this key was published before.
    pub fn seen(&self, key: &RowKey) -> rusqlite::Result<bool> {
        let mut check = self
            .db
            .prepare_cached("SELECT 1 FROM seen WHERE key = ?1")?;
        check.exists([&key.0[..]])
    }

    /// Claims the keys of a roll's rows, in one transaction, before its marker is written.
    pub fn claim(&mut self, roll: &Roll, keys: &[RowKey], now_ms: i64) -> rusqlite::Result<()> {
        let tx = self.db.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO seen (key, drop_id, at_ms) VALUES (?1, ?2, ?3)",
            )?;
            let drop_id = roll.drop_id.to_string();
            for key in keys {
                insert.execute(params![&key.0[..], drop_id, now_ms])?;
            }
        }
        tx.commit()
    }

    /// Marks a roll done: `committed` with a drop, or `empty` when it had nothing new.
    pub fn finish_roll(&self, roll: &Roll, committed: bool) -> rusqlite::Result<()> {
        self.db.execute(
            "UPDATE rolls SET state = ?2 WHERE drop_id = ?1",
            params![
                roll.drop_id.to_string(),
                if committed { "committed" } else { "empty" }
            ],
        )?;
        Ok(())
    }

    /// What `--skill` knows of each conversation.
    pub fn skill_decisions(&self) -> rusqlite::Result<HashMap<String, Decision>> {
        let mut query = self
            .db
            .prepare("SELECT conversation_id, decision FROM skill_decisions")?;
        let rows = query.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut known = HashMap::new();
        for row in rows {
            let (id, decision) = row?;
            if let Some(d) = Decision::parse(&decision) {
                known.insert(id, d);
            }
        }
        Ok(known)
    }

    /// Records what a roll learnt of conversations' skills.
    pub fn record_decisions(
        &mut self,
        learnt: &[(String, Decision)],
        now_ms: i64,
    ) -> rusqlite::Result<()> {
        let tx = self.db.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO skill_decisions (conversation_id, decision, at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (conversation_id) DO UPDATE SET decision = excluded.decision,
                 at_ms = excluded.at_ms",
            )?;
            for (id, decision) in learnt {
                upsert.execute(params![id, decision.as_str(), now_ms])?;
            }
        }
        tx.commit()
    }

    /// Forgets keys older than [`SEEN_RETENTION_MS`], and finished rolls whose segments are
    /// gone, keeping the newest so that segment numbers are never reused.
    pub fn prune(&self, now_ms: i64) -> rusqlite::Result<usize> {
        let keys = self.db.execute(
            "DELETE FROM seen WHERE at_ms < ?1",
            [now_ms - SEEN_RETENTION_MS],
        )?;
        self.db.execute(
            "DELETE FROM rolls WHERE state != 'building'
             AND last_segment < (SELECT MAX(last_segment) FROM rolls)
             AND created_at_ms < ?1",
            [now_ms - SEEN_RETENTION_MS],
        )?;
        self.db.execute(
            "DELETE FROM skill_decisions WHERE at_ms < ?1",
            [now_ms - SEEN_RETENTION_MS],
        )?;
        Ok(keys)
    }

    /// Keys kept, for the status line and tests.
    pub fn seen_count(&self) -> rusqlite::Result<u64> {
        self.db
            .query_row("SELECT COUNT(*) FROM seen", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    }
}

fn roll_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Roll> {
    let id: String = r.get(0)?;
    let drop_id = id.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Roll {
        drop_id,
        created_at_ms: r.get(1)?,
        first_segment: r.get::<_, i64>(2)? as u64,
        last_segment: r.get::<_, i64>(3)? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_roll_releases_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(dir.path()).unwrap();
        let roll = Roll {
            drop_id: uuid::Uuid::new_v4(),
            created_at_ms: 1,
            first_segment: 1,
            last_segment: 3,
        };
        state.begin_roll(&roll).unwrap();
        let key = RowKey([7; 16]);
        state.claim(&roll, &[key], 10).unwrap();
        assert!(state.seen(&key).unwrap());
        assert_eq!(state.unfinished_roll().unwrap(), Some(roll.clone()));
        let fresh = Roll {
            drop_id: uuid::Uuid::new_v4(),
            created_at_ms: 2,
            ..roll.clone()
        };
        state.restart_roll(&roll, &fresh).unwrap();
        assert!(!state.seen(&key).unwrap());
        assert_eq!(state.unfinished_roll().unwrap(), Some(fresh.clone()));
        state.claim(&fresh, &[key], 10).unwrap();
        state.finish_roll(&fresh, true).unwrap();
        assert_eq!(state.unfinished_roll().unwrap(), None);
        assert_eq!(state.last_rolled_segment().unwrap(), 3);
        // Kept for the retention, then forgotten.
        assert_eq!(state.prune(10 + SEEN_RETENTION_MS - 1).unwrap(), 0);
        assert_eq!(state.prune(10 + SEEN_RETENTION_MS + 1).unwrap(), 1);
    }
}
