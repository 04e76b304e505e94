//! Half-open UTC time windows `[from, to)` and their split into API-sized sub-windows.

use std::fmt;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// The Messaging Interactions API rounds `from` down and `to` up to 10 minutes.
pub const ROUNDING_MS: i64 = 10 * 60 * 1000;

/// The longest span one MI search accepts (3 months; LivePerson rejects longer ones).
pub const MAX_SEARCH_SPAN_MS: i64 = 92 * 24 * 3600 * 1000;

/// The longest span the client asks one Engagement History search for. The API accepts "1
/// month"; 30 days stays within it even after the 10-minute rounding widens the window (how
/// LivePerson counts a month is not documented).
pub const MAX_CHAT_SEARCH_SPAN_MS: i64 = 30 * 24 * 3600 * 1000;

/// A non-empty half-open window of conversation start times, in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    from: i64,
    to: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("the window is empty or inverted: from {from} is not before to {to}")]
    Empty { from: String, to: String },
    #[error("{0:?} is not a time: use RFC 3339 (2026-11-20T10:00:00Z) or a date (2026-11-20)")]
    BadTime(String),
}

impl Window {
    /// A window `[from_ms, to_ms)`; `from` must be before `to`.
    pub fn try_new(from_ms: i64, to_ms: i64) -> Result<Self, WindowError> {
        if from_ms >= to_ms {
            return Err(WindowError::Empty {
                from: fmt_ms(from_ms),
                to: fmt_ms(to_ms),
            });
        }
        Ok(Window {
            from: from_ms,
            to: to_ms,
        })
    }

    /// Parses `--from` / `--to` style arguments (RFC 3339 or `YYYY-MM-DD`, UTC).
    pub fn parse(from: &str, to: &str) -> Result<Self, WindowError> {
        Self::try_new(parse_time(from)?, parse_time(to)?)
    }

    pub fn from_ms(&self) -> i64 {
        self.from
    }

    pub fn to_ms(&self) -> i64 {
        self.to
    }

    pub fn span_ms(&self) -> i64 {
        self.to - self.from
    }

    pub fn contains(&self, ms: i64) -> bool {
        self.from <= ms && ms < self.to
    }

    /// Splits into consecutive sub-windows of at most `max_span_ms`, cut at 10-minute
    /// boundaries so that the API's rounding widens each by as little as possible.
    pub fn split(&self, max_span_ms: i64) -> Vec<Window> {
        let step = (max_span_ms / ROUNDING_MS).max(1) * ROUNDING_MS;
        let mut out = Vec::new();
        let mut start = self.from;
        while start < self.to {
            // The first cut is the next aligned boundary at least `step` after an aligned start.
            let aligned = start.div_euclid(ROUNDING_MS) * ROUNDING_MS;
            let end = (aligned + step).min(self.to);
            out.push(Window {
                from: start,
                to: end,
            });
            start = end;
        }
        out
    }

    /// Halves the window at a 10-minute boundary; `None` when it is too short to cut.
    pub fn halve(&self) -> Option<(Window, Window)> {
        let mid = (self.from + self.span_ms() / 2).div_euclid(ROUNDING_MS) * ROUNDING_MS;
        if mid <= self.from || mid >= self.to {
            return None;
        }
        Some((
            Window {
                from: self.from,
                to: mid,
            },
            Window {
                from: mid,
                to: self.to,
            },
        ))
    }

    pub fn from_utc(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.from)
            .single()
            .unwrap_or_default()
    }

    pub fn to_utc(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.to)
            .single()
            .unwrap_or_default()
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", fmt_ms(self.from), fmt_ms(self.to))
    }
}

/// RFC 3339 with millisecond precision, UTC.
pub fn fmt_ms(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

/// Parses RFC 3339 or a bare `YYYY-MM-DD` (midnight UTC) into epoch milliseconds.
pub fn parse_time(s: &str) -> Result<i64, WindowError> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc).timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis());
    }
    Err(WindowError::BadTime(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_and_inverted() {
        assert!(Window::try_new(5, 5).is_err());
        assert!(Window::try_new(6, 5).is_err());
        assert!(Window::parse("2026-11-21", "2026-11-20").is_err());
        assert!(Window::parse("yesterday", "2026-11-20").is_err());
    }

    #[test]
    fn parses_dates_and_rfc3339() {
        let w = Window::parse("2026-11-20", "2026-11-20T01:30:00+01:00").unwrap();
        assert_eq!(w.span_ms(), 30 * 60 * 1000);
        assert_eq!(
            w.to_string(),
            "[2026-11-20T00:00:00.000Z, 2026-11-20T00:30:00.000Z)"
        );
    }

    #[test]
    fn split_covers_the_window_exactly_with_aligned_cuts() {
        let from = parse_time("2026-11-20T00:03:00Z").unwrap();
        let to = parse_time("2026-11-22T05:07:00Z").unwrap();
        let w = Window::try_new(from, to).unwrap();
        let parts = w.split(24 * 3600 * 1000);
        assert_eq!(parts.first().unwrap().from_ms(), from);
        assert_eq!(parts.last().unwrap().to_ms(), to);
        for pair in parts.windows(2) {
            assert_eq!(pair[0].to_ms(), pair[1].from_ms());
            assert_eq!(pair[0].to_ms() % ROUNDING_MS, 0, "inner cuts are aligned");
        }
        assert!(parts.iter().all(|p| p.span_ms() <= 24 * 3600 * 1000));
        assert_eq!(parts.len(), 3);
    }

    #[test]
    fn halve_cuts_on_a_boundary_or_refuses() {
        let w = Window::try_new(0, 3_600_000).unwrap();
        let (a, b) = w.halve().unwrap();
        assert_eq!((a.to_ms(), b.from_ms()), (1_800_000, 1_800_000));
        assert!(Window::try_new(0, ROUNDING_MS).unwrap().halve().is_none());
    }
}
