//! The pace board: how the worker processes of one account share its LivePerson request pace.
//!
//! Each process finds the pace from the server's 429s (see the liveperson crate's limiter);
//! alone, four processes would each find their own and together ask four times too much. The
//! board holds, per account, the rate the account's processes share after its last cut, and
//! who cut it and when. The processes sharing it are those holding a live lease on a job of
//! the account: the lease is the heartbeat, so a dead process stops counting once its lease
//! expires. Rates are stored in thousandths of a request per second (the queue's columns are
//! integers and text).
//!
//! The board also holds the account's send schedule: each request of a process sharing the
//! account reserves the next send time, one interval (at the account's rate) after the last
//! one handed out, so that the processes' requests are spaced as evenly as one process's.

use std::time::Duration;

use crate::Result;
use crate::db::Db;

/// What the board says of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceBoard {
    /// The account's rate after its last cut, thousandths of a request per second (`None`:
    /// never cut).
    pub rate_milli: Option<i64>,
    /// When it was cut (the queue's clock, ms since the epoch), and by which worker.
    pub cut_at_ms: Option<i64>,
    pub cut_by: Option<String>,
    /// Worker processes holding a live lease on a job of the account.
    pub members: u64,
}

pub(crate) async fn read(db: &mut dyn Db, account_id: String) -> Result<PaceBoard> {
    let now = db.now_ms().await?;
    let members = db
        .query_one(
            "SELECT COUNT(DISTINCT lease_owner) FROM lpdrop_jobs \
             WHERE account_id = $1 AND state IN ('running', 'finished') AND lease_expires > $2",
            &[account_id.as_str().into(), now.into()],
        )
        .await?
        .int(0)?;
    let row = db
        .query_opt(
            "SELECT rate_milli, cut_at, cut_by FROM lpdrop_account_pace WHERE account_id = $1",
            &[account_id.as_str().into()],
        )
        .await?;
    let (rate_milli, cut_at_ms, cut_by) = match row {
        Some(r) => (r.opt_int(0)?, r.opt_int(1)?, r.opt_text(2)?),
        None => (None, None, None),
    };
    Ok(PaceBoard {
        rate_milli,
        cut_at_ms,
        cut_by,
        members: members.max(0) as u64,
    })
}

/// Records a cut of the account's rate to `rate_milli` by `worker`, unless another worker cut
/// it less than `gap` ago (one round of 429s makes one cut, whichever process saw them).
/// Returns whether this cut is the board's.
pub(crate) async fn cut(
    db: &mut dyn Db,
    account_id: String,
    worker: String,
    rate_milli: i64,
    gap: Duration,
) -> Result<bool> {
    let now = db.now_ms().await?;
    let gap_ms = i64::try_from(gap.as_millis()).unwrap_or(i64::MAX);
    let changed = db
        .execute(
            "INSERT INTO lpdrop_account_pace (account_id, rate_milli, cut_at, cut_by) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id) DO UPDATE SET \
                 rate_milli = excluded.rate_milli, cut_at = excluded.cut_at, \
                 cut_by = excluded.cut_by \
             WHERE lpdrop_account_pace.cut_at IS NULL \
                OR lpdrop_account_pace.cut_by = excluded.cut_by \
                OR lpdrop_account_pace.cut_at <= $5",
            &[
                account_id.as_str().into(),
                rate_milli.into(),
                now.into(),
                worker.as_str().into(),
                now.saturating_sub(gap_ms).into(),
            ],
        )
        .await?;
    Ok(changed > 0)
}

/// Reserves the account's next send time, `interval_us` after the last one handed out (or now,
/// if that is past); returns how long to wait for it, in µs.
pub(crate) async fn reserve_send(
    db: &mut dyn Db,
    account_id: String,
    interval_us: i64,
) -> Result<i64> {
    let now_us = db.now_ms().await?.saturating_mul(1000);
    let sql = format!(
        "SELECT next_send_us FROM lpdrop_account_pace WHERE account_id = $1{}",
        db.dialect().for_update()
    );
    let next = db.query_opt(&sql, &[account_id.as_str().into()]).await?;
    let start = match &next {
        Some(row) => row.int(0)?.max(now_us),
        None => now_us,
    };
    let following = start.saturating_add(interval_us.max(0));
    if next.is_some() {
        db.execute(
            "UPDATE lpdrop_account_pace SET next_send_us = $2 WHERE account_id = $1",
            &[account_id.as_str().into(), following.into()],
        )
        .await?;
    } else {
        db.execute(
            "INSERT INTO lpdrop_account_pace (account_id, next_send_us) VALUES ($1, $2) \
             ON CONFLICT (account_id) DO UPDATE SET next_send_us = excluded.next_send_us",
            &[account_id.as_str().into(), following.into()],
        )
        .await?;
    }
    Ok(start - now_us)
}
