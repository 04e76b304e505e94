//! Fault injection and request limits: what a flaky, busy LivePerson does to a client.
//!
//! [`Faults`] is part of [`crate::EmulatorConfig`] and parses from a compact spec (see
//! [`Faults::from_str`](std::str::FromStr)):
//!
//! ```text
//! 429=0.05,500=0.1,truncate=0.01,partial=0.01,seed=7
//! rps=50,latency=20ms
//! 503=first:3,slow=every:10,slow-delay=1500ms
//! ```
//!
//! | key | what happens | value |
//! |---|---|---|
//! | `429` | 429 Too Many Requests, no `Retry-After` | trigger |
//! | `429ra` | 429 with `Retry-After: {retry-after}` | trigger |
//! | `retry-after` | the `Retry-After` value of `429ra`, seconds (default 1) | integer |
//! | `500`, `503` | that status with a Spring-style error body | trigger |
//! | `slow` | the answer is held back `slow-delay` first | trigger |
//! | `slow-delay` | default `2s` | duration |
//! | `drop` | 200, then the connection closes in the middle of the body | trigger |
//! | `truncate` | 200 with the body cut in half (a complete HTTP answer of broken JSON) | trigger |
//! | `shards` | a search page with `shardsStatusResult.partialResult: true`, a third of its records missing | trigger |
//! | `partial` | each search record flagged `info.isPartial: true` and cut short (get-by-id returns it whole) | probability |
//! | `badutf8` | each MI search record with bytes that are not UTF-8 in `info.device` (get-by-id returns it whole) | probability |
//! | `rps` | requests per second over which the answer is 429 (no `Retry-After`) | number |
//! | `burst` | requests the `rps` bucket lets through at once (default `rps`/10, at least 1) | integer |
//! | `latency` | added to every data answer | duration |
//! | `seed` | seed of the fault draws (default 0) | integer |
//!
//! A *trigger* is a probability (`0.05` or `5%`), `every:N` (every N-th data request) or
//! `first:N` (the first N data requests). A *duration* is `250ms`, `2s` or `1s 500ms` (the grammar of every lpdrop duration). Keys may use
//! `-` or `_`. The spec `none` (or an empty one) injects nothing.
//!
//! # Determinism
//!
//! A probability is drawn from `(seed, the request, how many times this same request was seen
//! before)`: the request is its method, path, query and body, so a retry of a page gets a new
//! draw while the sequence of answers to one request does not depend on timing or on what else
//! runs concurrently. Partial and bad-UTF-8 records depend on `(seed, record)` only. `every:N` and `first:N`
//! count requests in arrival order.
//!
//! Faults apply to the data endpoints (MI and EH search, get-by-id, account configuration);
//! never to the Domain API, login or token endpoints. The exclusive per-request faults are
//! drawn in the order of the table, from one roll; their probabilities must add up to at most 1.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::rng::{key, mix};

/// When a fault fires.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Trigger {
    #[default]
    Never,
    /// With this probability (0 to 1), drawn per request and attempt.
    Rate(f64),
    /// Every N-th data request (N, 2N, ...).
    Every(u64),
    /// The first N data requests.
    First(u64),
}

impl Trigger {
    fn is_never(&self) -> bool {
        match *self {
            Trigger::Never => true,
            Trigger::Rate(p) => p <= 0.0,
            Trigger::Every(n) | Trigger::First(n) => n == 0,
        }
    }

    /// True when the trigger is a schedule and request `n` (1-based) falls on it.
    fn scheduled(&self, n: u64) -> bool {
        match *self {
            Trigger::Every(k) => k > 0 && n.is_multiple_of(k),
            Trigger::First(k) => n <= k,
            _ => false,
        }
    }

    fn rate(&self) -> f64 {
        match *self {
            Trigger::Rate(p) => p,
            _ => 0.0,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Never => write!(f, "0"),
            Trigger::Rate(p) => write!(f, "{p}"),
            Trigger::Every(n) => write!(f, "every:{n}"),
            Trigger::First(n) => write!(f, "first:{n}"),
        }
    }
}

/// Faults and limits of an emulator (see the module documentation for the spec syntax).
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Seed of the fault draws (independent of the data set's seed).
    pub seed: u64,
    /// 429 without `Retry-After`.
    pub throttle: Trigger,
    /// 429 with `Retry-After: retry_after_secs`.
    pub throttle_retry_after: Trigger,
    pub retry_after_secs: u64,
    /// 500 Internal Server Error.
    pub server_error: Trigger,
    /// 503 Service Unavailable.
    pub unavailable: Trigger,
    /// The answer waits `slow_delay` first.
    pub slow: Trigger,
    pub slow_delay: Duration,
    /// The connection closes in the middle of a 200 body.
    pub drop_connection: Trigger,
    /// A 200 whose body is cut in half.
    pub truncate: Trigger,
    /// Search pages reporting `partialResult: true` with records missing.
    pub partial_pages: Trigger,
    /// Probability that a search record comes back flagged `isPartial` and cut short.
    pub partial_records: f64,
    /// Probability that an MI search record comes back holding bytes that are not UTF-8.
    pub bad_utf8_records: f64,
    /// Requests per second over which data requests get 429.
    pub max_requests_per_second: Option<f64>,
    /// Bucket size of that limit; `None`: a tenth of the rate, at least 1.
    pub burst: Option<u32>,
    /// Added to every data answer.
    pub latency: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 0,
            throttle: Trigger::Never,
            throttle_retry_after: Trigger::Never,
            retry_after_secs: 1,
            server_error: Trigger::Never,
            unavailable: Trigger::Never,
            slow: Trigger::Never,
            slow_delay: Duration::from_secs(2),
            drop_connection: Trigger::Never,
            truncate: Trigger::Never,
            partial_pages: Trigger::Never,
            partial_records: 0.0,
            bad_utf8_records: 0.0,
            max_requests_per_second: None,
            burst: None,
            latency: Duration::ZERO,
        }
    }
}

/// What one data request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    Throttle { retry_after: Option<u64> },
    Status(u16),
    Slow,
    Drop,
    Truncate,
    PartialPage,
}

impl Faults {
    /// True when nothing is injected and nothing limited.
    pub fn is_none(&self) -> bool {
        self.exclusive().iter().all(|(_, t)| t.is_never())
            && self.partial_records <= 0.0
            && self.bad_utf8_records <= 0.0
            && self.max_requests_per_second.is_none()
            && self.latency.is_zero()
    }

    /// True when some request may get a fault (not just latency or a rate limit).
    pub(crate) fn injects(&self) -> bool {
        self.exclusive().iter().any(|(_, t)| !t.is_never())
    }

    /// The per-request faults in draw order.
    fn exclusive(&self) -> [(Fault, Trigger); 8] {
        [
            (Fault::Throttle { retry_after: None }, self.throttle),
            (
                Fault::Throttle {
                    retry_after: Some(self.retry_after_secs),
                },
                self.throttle_retry_after,
            ),
            (Fault::Status(500), self.server_error),
            (Fault::Status(503), self.unavailable),
            (Fault::Drop, self.drop_connection),
            (Fault::Truncate, self.truncate),
            (Fault::Slow, self.slow),
            (Fault::PartialPage, self.partial_pages),
        ]
    }

    /// The fault of data request number `n` (1-based, arrival order), the `attempt`-th time
    /// (0-based) a request hashing to `request` is seen.
    pub(crate) fn decide(&self, request: u64, attempt: u32, n: u64) -> Fault {
        let table = self.exclusive();
        if let Some((fault, _)) = table.iter().find(|(_, t)| t.scheduled(n)) {
            return *fault;
        }
        let roll = unit(key(self.seed, request, 0xFA17 + u64::from(attempt)));
        let mut edge = 0.0;
        for (fault, trigger) in table {
            edge += trigger.rate();
            if roll < edge {
                return fault;
            }
        }
        Fault::None
    }

    /// Whether search record `record` (a conversation or chat index, `salt` telling the two
    /// apart) comes back partial.
    pub(crate) fn partial_record(&self, record: u64, salt: u64) -> bool {
        self.partial_records > 0.0
            && unit(key(self.seed ^ mix(salt), record, 0x9A27)) < self.partial_records
    }

    /// Whether MI search record `record` (a conversation index) comes back with bytes that
    /// are not UTF-8. Public so that a test can tell which conversations to expect in
    /// quarantine.
    pub fn bad_utf8_record(&self, record: u64) -> bool {
        self.bad_utf8_records > 0.0
            && unit(key(self.seed ^ mix(0xBAD0), record, 0x07F8)) < self.bad_utf8_records
    }

    fn check(&self) -> Result<(), String> {
        let mut total = 0.0;
        for (_, t) in self.exclusive() {
            if let Trigger::Rate(p) = t {
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("probability {p} is not between 0 and 1"));
                }
                total += p;
            }
        }
        if total > 1.0 + 1e-9 {
            return Err(format!(
                "the per-request fault probabilities add up to {total}, more than 1"
            ));
        }
        if !(0.0..=1.0).contains(&self.partial_records) {
            return Err(format!(
                "partial={} is not between 0 and 1",
                self.partial_records
            ));
        }
        if !(0.0..=1.0).contains(&self.bad_utf8_records) {
            return Err(format!(
                "badutf8={} is not between 0 and 1",
                self.bad_utf8_records
            ));
        }
        if let Some(rps) = self.max_requests_per_second
            && !(rps.is_finite() && rps > 0.0)
        {
            return Err(format!("rps={rps} must be a positive number"));
        }
        Ok(())
    }
}

/// A uniform draw in `[0, 1)` from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The one duration grammar of every setting (`250ms`, `2s`, `1s 500ms`).
fn parse_duration(v: &str) -> Result<Duration, String> {
    lpdrop_settings::parse_duration(v)
}

fn fmt_duration(d: Duration) -> String {
    lpdrop_settings::Duration(d).to_string()
}

fn parse_probability(v: &str) -> Result<f64, String> {
    let (number, scale) = match v.strip_suffix('%') {
        Some(p) => (p, 0.01),
        None => (v, 1.0),
    };
    let p: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{v:?} is not a probability (use 0.05 or 5%)"))?;
    let p = p * scale;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("{v:?} is not between 0 and 1"));
    }
    Ok(p)
}

fn parse_trigger(v: &str) -> Result<Trigger, String> {
    let count = |n: &str| {
        n.trim()
            .parse::<u64>()
            .map_err(|_| format!("{v:?}: expected a whole number after ':'"))
    };
    if let Some(n) = v.strip_prefix("every:") {
        return Ok(Trigger::Every(count(n)?));
    }
    if let Some(n) = v.strip_prefix("first:") {
        return Ok(Trigger::First(count(n)?));
    }
    let p = parse_probability(v)?;
    Ok(if p > 0.0 {
        Trigger::Rate(p)
    } else {
        Trigger::Never
    })
}

/// The `key=value` items of a fault spec (`none` or empty: no item), keys lower-case with `-`
/// for `_`: the grammar of `--faults` and `--webhook-faults`.
pub(crate) fn spec_items(spec: &str) -> Result<Vec<(String, &str)>, String> {
    let spec = spec.trim();
    if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected key=value"))?;
            Ok((k.trim().to_ascii_lowercase().replace('_', "-"), v.trim()))
        })
        .collect()
}

impl FromStr for Faults {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut f = Faults::default();
        for (k, v) in spec_items(spec)? {
            let int = |what: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{what}={v:?}: expected a whole number"))
            };
            match k.as_str() {
                "429" => f.throttle = parse_trigger(v)?,
                "429ra" => f.throttle_retry_after = parse_trigger(v)?,
                "retry-after" => f.retry_after_secs = int("retry-after")?,
                "500" => f.server_error = parse_trigger(v)?,
                "503" => f.unavailable = parse_trigger(v)?,
                "slow" => f.slow = parse_trigger(v)?,
                "slow-delay" => f.slow_delay = parse_duration(v)?,
                "drop" => f.drop_connection = parse_trigger(v)?,
                "truncate" => f.truncate = parse_trigger(v)?,
                "shards" => f.partial_pages = parse_trigger(v)?,
                "partial" => f.partial_records = parse_probability(v)?,
                "badutf8" => f.bad_utf8_records = parse_probability(v)?,
                "rps" => {
                    f.max_requests_per_second = Some(
                        v.parse::<f64>()
                            .map_err(|_| format!("rps={v:?}: expected a number"))?,
                    )
                }
                "burst" => {
                    f.burst = Some(
                        u32::try_from(int("burst")?)
                            .map_err(|_| format!("burst={v} is too big"))?,
                    )
                }
                "latency" => f.latency = parse_duration(v)?,
                "seed" => f.seed = int("seed")?,
                other => {
                    return Err(format!(
                        "unknown fault {other:?}; known: 429, 429ra, retry-after, 500, 503, slow, \
                         slow-delay, drop, truncate, shards, partial, badutf8, rps, burst, latency, \
                         seed"
                    ));
                }
            }
        }
        f.check()?;
        Ok(f)
    }
}

impl fmt::Display for Faults {
    /// The spec that parses back to these faults (only what differs from the defaults).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = Faults::default();
        let mut items: Vec<String> = Vec::new();
        let triggers = [
            ("429", self.throttle),
            ("429ra", self.throttle_retry_after),
            ("500", self.server_error),
            ("503", self.unavailable),
            ("slow", self.slow),
            ("drop", self.drop_connection),
            ("truncate", self.truncate),
            ("shards", self.partial_pages),
        ];
        for (name, t) in triggers {
            if !t.is_never() {
                items.push(format!("{name}={t}"));
            }
        }
        if self.retry_after_secs != d.retry_after_secs {
            items.push(format!("retry-after={}", self.retry_after_secs));
        }
        if self.slow_delay != d.slow_delay {
            items.push(format!("slow-delay={}", fmt_duration(self.slow_delay)));
        }
        if self.partial_records > 0.0 {
            items.push(format!("partial={}", self.partial_records));
        }
        if self.bad_utf8_records > 0.0 {
            items.push(format!("badutf8={}", self.bad_utf8_records));
        }
        if let Some(rps) = self.max_requests_per_second {
            items.push(format!("rps={rps}"));
        }
        if let Some(burst) = self.burst {
            items.push(format!("burst={burst}"));
        }
        if !self.latency.is_zero() {
            items.push(format!("latency={}", fmt_duration(self.latency)));
        }
        if self.seed != d.seed {
            items.push(format!("seed={}", self.seed));
        }
        if items.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", items.join(","))
        }
    }
}

/// The server's running state for faults and limits.
#[derive(Debug)]
pub(crate) struct FaultState {
    seen: Mutex<HashMap<u64, u32>>,
    bucket: Option<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl FaultState {
    pub(crate) fn new(faults: &Faults) -> Self {
        FaultState {
            seen: Mutex::new(HashMap::new()),
            bucket: faults.max_requests_per_second.map(|rate| {
                let burst = faults
                    .burst
                    .map_or((rate / 10.0).ceil(), f64::from)
                    .max(1.0);
                Mutex::new(Bucket {
                    rate,
                    burst,
                    tokens: burst,
                    last: Instant::now(),
                })
            }),
        }
    }

    /// How many times a request hashing to `request` was seen before (and counts this one).
    pub(crate) fn attempt(&self, request: u64) -> u32 {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let n = seen.entry(request).or_insert(0);
        let attempt = *n;
        *n = n.saturating_add(1);
        attempt
    }

    /// False when the request is over the rate limit (it gets 429 and takes no token).
    pub(crate) fn admit(&self) -> bool {
        let Some(bucket) = &self.bucket else {
            return true;
        };
        let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = now;
        b.tokens = (b.tokens + elapsed * b.rate).min(b.burst);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// FNV-1a over the parts of a request, finished with SplitMix64: stable across platforms and
/// Rust versions (unlike `DefaultHasher`).
pub(crate) fn request_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0xFFu8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    mix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips() {
        let spec = "429=0.05,429ra=0.02,500=0.1,503=first:3,slow=every:10,drop=0.01,truncate=0.01,\
                    shards=1%,retry-after=2,slow-delay=150ms,partial=0.01,badutf8=0.02,rps=50,burst=5,\
                    latency=20ms,seed=7";
        let f: Faults = spec.parse().unwrap();
        assert_eq!(f.bad_utf8_records, 0.02);
        let marked = (0..10_000).filter(|&i| f.bad_utf8_record(i)).count();
        assert!((150..250).contains(&marked), "{marked} of 10,000 at 2%");
        assert_eq!(f.throttle, Trigger::Rate(0.05));
        assert_eq!(f.unavailable, Trigger::First(3));
        assert_eq!(f.slow, Trigger::Every(10));
        assert_eq!(f.partial_pages, Trigger::Rate(0.01));
        assert_eq!(f.slow_delay, Duration::from_millis(150));
        assert_eq!(f.latency, Duration::from_millis(20));
        assert_eq!(f.max_requests_per_second, Some(50.0));
        assert_eq!((f.burst, f.seed, f.retry_after_secs), (Some(5), 7, 2));
        let again: Faults = f.to_string().parse().unwrap();
        assert_eq!(again, f);
        assert_eq!(Faults::default().to_string(), "none");
        assert!("none".parse::<Faults>().unwrap().is_none());
        assert!("".parse::<Faults>().unwrap().is_none());
        assert!(!f.is_none());
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        for (spec, needle) in [
            ("429", "key=value"),
            ("bogus=1", "unknown fault"),
            ("500=1.5", "between 0 and 1"),
            ("500=0.7,503=0.6", "add up"),
            ("latency=20", "duration"),
            ("503=every:x", "whole number"),
            ("rps=0", "positive"),
        ] {
            let err = spec.parse::<Faults>().unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn draws_are_deterministic_and_near_their_rates() {
        let f: Faults = "429=0.05,500=0.1,truncate=0.01,seed=3".parse().unwrap();
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for r in 0..100_000u64 {
            let fault = f.decide(r, 0, r + 1);
            assert_eq!(fault, f.decide(r, 0, r + 1), "same request, same draw");
            let name = match fault {
                Fault::Throttle { .. } => "429",
                Fault::Status(500) => "500",
                Fault::Truncate => "truncate",
                Fault::None => "none",
                other => panic!("{other:?} was not asked for"),
            };
            *counts.entry(name).or_default() += 1;
        }
        let near = |name: &str, expected: f64| {
            let got = f64::from(counts[name]) / 100_000.0;
            assert!((got - expected).abs() < expected * 0.15, "{name}: {got}");
        };
        near("429", 0.05);
        near("500", 0.1);
        near("truncate", 0.01);
        // A retry of the same request is a fresh draw.
        let differs = (0..1000u64).any(|r| f.decide(r, 0, 1) != f.decide(r, 1, 1));
        assert!(differs);
    }

    #[test]
    fn schedules_count_requests() {
        let f: Faults = "503=first:2,429=every:3".parse().unwrap();
        let got: Vec<Fault> = (1..=6).map(|n| f.decide(n, 0, n)).collect();
        assert_eq!(
            got,
            [
                Fault::Status(503),
                Fault::Status(503),
                Fault::Throttle { retry_after: None },
                Fault::None,
                Fault::None,
                Fault::Throttle { retry_after: None },
            ]
        );
    }

    #[test]
    fn request_hash_separates_parts() {
        assert_ne!(request_hash(&[b"ab", b"c"]), request_hash(&[b"a", b"bc"]));
        assert_eq!(request_hash(&[b"x"]), request_hash(&[b"x"]));
    }
}
