//! Window arithmetic for `jobs add --split` and `schedule`: windows are cut at multiples of
//! the step counted from the Unix epoch (so `1h` windows start on the hour and `1d` windows at
//! midnight UTC, whatever the first bound is).

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
