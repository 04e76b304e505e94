//! Scheduling: window arithmetic for `jobs add --split` and `schedule` (windows are cut at
//! multiples of the step counted from the Unix epoch, so `1h` windows start on the hour and
//! `1d` windows at midnight UTC, whatever the first bound is), the watermark-driven enqueueing
//! of due windows ([`schedule_due`]), and refetch jobs for late data ([`enqueue_refetch`]).

use crate::{JobSpec, JobState, ListFilter, Queue, REFETCH_ORIGIN, Result, Source};

/// `[from, to)` cut at every multiple of `step_ms` in between; one window when `step_ms` is
/// `None`. Empty when `from >= to`.
pub fn split(from_ms: i64, to_ms: i64, step_ms: Option<i64>) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let Some(step) = step_ms.filter(|s| *s > 0) else {
        if from_ms < to_ms {
            out.push((from_ms, to_ms));
        }
        return out;
    };
    let mut start = from_ms;
    while start < to_ms {
        let end = (start.div_euclid(step) + 1).saturating_mul(step).min(to_ms);
        out.push((start, end));
        start = end;
    }
    out
}

/// What one `schedule` run enqueues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// New windows, from the watermark up to the new watermark.
    pub windows: Vec<(i64, i64)>,
    /// Windows read again because data may have arrived late (the trailing lookback).
    pub lookback: Vec<(i64, i64)>,
    pub new_watermark: i64,
}

/// The windows due after `watermark`: every whole `every_ms` window that ends at or before
/// `now - delay` (a first window that starts off the grid ends at the next multiple). With a
/// lookback `L`, the same span shifted back by `L` is read again, so every period is read once
/// when it is `delay` old and once more when it is `delay + L` old (never before
/// `not_before_ms`, the schedule's first start, when known). `None` when nothing is due.
pub fn plan(
    watermark: i64,
    now_ms: i64,
    every_ms: i64,
    delay_ms: i64,
    lookback_ms: Option<i64>,
    not_before_ms: Option<i64>,
) -> Option<Plan> {
    let every = every_ms.max(1);
    let horizon = (now_ms - delay_ms).div_euclid(every) * every;
    if horizon <= watermark {
        return None;
    }
    let windows = split(watermark, horizon, Some(every));
    let lookback = match lookback_ms.filter(|l| *l > 0) {
        Some(l) => {
            let floor = not_before_ms.unwrap_or(i64::MIN);
            let from = (watermark - l).max(floor);
            let to = (horizon - l).max(floor);
            split(from, to, Some(every))
        }
        None => Vec::new(),
    };
    Some(Plan {
        windows,
        lookback,
        new_watermark: horizon,
    })
}

/// Whose open conversations a refetch job re-reads, and where its drop goes.
pub struct RefetchTarget<'a> {
    pub account_id: &'a str,
    pub source: Source,
    pub dest: &'a str,
    pub max_attempts: u32,
}

/// Enqueues one refetch job when open conversations recorded before `cutoff_ms` wait and no
/// refetch job of the account and source is pending already. Returns the job id and how many
/// conversations wait.
pub async fn enqueue_refetch(
    queue: &Queue,
    target: &RefetchTarget<'_>,
    now_ms: i64,
    cutoff_ms: i64,
) -> Result<Option<(i64, u64)>> {
    let waiting = queue
        .pending_open_conversations(target.account_id, target.source, cutoff_ms)
        .await?;
    if waiting == 0 {
        return Ok(None);
    }
    let pending = queue
        .list(&ListFilter {
            states: vec![
                JobState::Queued,
                JobState::Running,
                JobState::Finished,
                JobState::Failed,
            ],
            account_id: Some(target.account_id.to_string()),
            limit: None,
        })
        .await?;
    if pending
        .iter()
        .any(|j| j.spec.origin == REFETCH_ORIGIN && j.spec.source == target.source)
    {
        return Ok(None);
    }
    // The window records when the refetch was due; the job reads by id, not by window.
    let from = cutoff_ms.min(now_ms - 1000);
    let ids = queue
        .add(&[JobSpec {
            account_id: target.account_id.to_string(),
            source: target.source,
            window_from_ms: from,
            window_to_ms: now_ms,
            skill_ids: Vec::new(),
            dest: target.dest.to_string(),
            max_attempts: target.max_attempts,
            origin: REFETCH_ORIGIN.into(),
        }])
        .await?;
    Ok(ids.first().map(|&id| (id, waiting)))
}

/// What one `schedule` run enqueues: the windows of an account and source after its
/// watermark, on the grid of `every_ms`.
pub struct ScheduleSpec {
    pub account_id: String,
    pub source: Source,
    pub every_ms: i64,
    /// A window is due once it ended at least this long ago.
    pub delay_ms: i64,
    /// Each window is read again this much later, when set.
    pub lookback_ms: Option<i64>,
    /// Where the first run starts when there is no watermark yet.
    pub start_ms: Option<i64>,
    pub skill_ids: Vec<i64>,
    pub dest: String,
    pub max_attempts: u32,
}

/// What a `schedule` run did.
#[derive(Debug)]
pub enum Scheduled {
    /// No watermark yet and no start given.
    NoStart,
    /// Nothing is due: the next window `[from, next_end)` falls due at `due_ms`.
    NothingDue {
        watermark_ms: i64,
        next_end_ms: i64,
        due_ms: i64,
    },
    /// Another run advanced the watermark first; nothing was enqueued.
    Raced,
    /// Jobs enqueued: `windows` new ones and `lookback` read again, from `from_ms` to the new
    /// watermark.
    Enqueued {
        ids: Vec<i64>,
        windows: usize,
        lookback: usize,
        from_ms: i64,
        watermark_ms: i64,
    },
}

/// Enqueues the windows of `spec` that are due at `now_ms` and advances the watermark in the
/// same transaction, so that racing runs enqueue each window once.
pub async fn schedule_due(queue: &Queue, spec: &ScheduleSpec, now_ms: i64) -> Result<Scheduled> {
    let current = queue.watermark(&spec.account_id, spec.source).await?;
    let from = match (current, spec.start_ms) {
        (Some(w), _) => w,
        (None, Some(s)) => s,
        (None, None) => return Ok(Scheduled::NoStart),
    };
    let Some(p) = plan(
        from,
        now_ms,
        spec.every_ms,
        spec.delay_ms,
        spec.lookback_ms,
        spec.start_ms,
    ) else {
        let next_end_ms = (from.div_euclid(spec.every_ms) + 1) * spec.every_ms;
        return Ok(Scheduled::NothingDue {
            watermark_ms: from,
            next_end_ms,
            due_ms: next_end_ms + spec.delay_ms,
        });
    };
    let job = |(from, to): (i64, i64), origin: &str| JobSpec {
        account_id: spec.account_id.clone(),
        source: spec.source,
        window_from_ms: from,
        window_to_ms: to,
        skill_ids: spec.skill_ids.clone(),
        dest: spec.dest.clone(),
        max_attempts: spec.max_attempts,
        origin: origin.into(),
    };
    let mut specs: Vec<JobSpec> = p.windows.iter().map(|&w| job(w, "schedule")).collect();
    specs.extend(p.lookback.iter().map(|&w| job(w, "lookback")));
    let enqueued = queue
        .advance_watermark(
            &spec.account_id,
            spec.source,
            current,
            p.new_watermark,
            &specs,
        )
        .await?;
    Ok(match enqueued {
        None => Scheduled::Raced,
        Some(ids) => Scheduled::Enqueued {
            ids,
            windows: p.windows.len(),
            lookback: p.lookback.len(),
            from_ms: from,
            watermark_ms: p.new_watermark,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn splits_on_the_grid() {
        assert_eq!(
            split(0, 3 * H, Some(H)),
            vec![(0, H), (H, 2 * H), (2 * H, 3 * H)]
        );
        // Off-grid bounds: the first and last windows are partial.
        assert_eq!(
            split(H / 2, 2 * H + 10, Some(H)),
            vec![(H / 2, H), (H, 2 * H), (2 * H, 2 * H + 10)]
        );
        assert_eq!(split(5, 10, None), vec![(5, 10)]);
        assert!(split(10, 10, Some(H)).is_empty());
        assert!(split(10, 5, None).is_empty());
    }

    #[test]
    fn plans_whole_windows_up_to_now_minus_delay() {
        let now = 10 * H + 5 * 60_000; // 10:05
        // Delay 10 minutes: 09:55 is the horizon, so the last whole window ends at 09:00.
        let p = plan(6 * H, now, H, 600_000, None, None).unwrap();
        assert_eq!(
            p.windows,
            vec![(6 * H, 7 * H), (7 * H, 8 * H), (8 * H, 9 * H)]
        );
        assert_eq!(p.new_watermark, 9 * H);
        assert!(p.lookback.is_empty());
        // Nothing more is due until 10:10.
        assert_eq!(plan(9 * H, now, H, 600_000, None, None), None);
        assert!(plan(9 * H, 10 * H + 10 * 60_000, H, 600_000, None, None).is_some());
    }

    #[test]
    fn lookback_reads_the_same_span_again_later() {
        let p = plan(6 * H, 9 * H, H, 0, Some(2 * H), Some(5 * H)).unwrap();
        assert_eq!(
            p.windows,
            vec![(6 * H, 7 * H), (7 * H, 8 * H), (8 * H, 9 * H)]
        );
        // [4h, 7h) shifted back, but never before the schedule's start (5h).
        assert_eq!(p.lookback, vec![(5 * H, 6 * H), (6 * H, 7 * H)]);
    }
}
