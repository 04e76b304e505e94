//! The account-wide request budget every request of a [`crate::Client`] (and of its clones)
//! draws from: a cap on requests in flight, a shared pace (a token bucket) that adapts to the
//! server's 429s, and a pause that a throttled answer carrying `Retry-After` imposes on everyone.
//!
//! # The pace
//!
//! LivePerson publishes no request rate; it answers 429 when an account asks too much. So the
//! pace is found from the 429s, the way TCP finds a link's capacity (additive increase,
//! multiplicative decrease), and shared by every request of the client:
//!
//! - Until the first 429 there is no pace, only the cap on requests in flight; unless a rate is
//!   configured: then the pace starts there and never goes above it.
//! - A 429 *cuts* the pace to [`CUT`] times an estimate of the rate the server takes. Once
//!   requests are paced, the estimate is the pace times the share of the paced requests sent
//!   since the last cut that the server took (a share, not a count over time, so that the pauses
//!   of the refused requests' own back-off do not count as a low rate), once [`MIN_ROUND`] of
//!   them are answered, or half as many with two refused; before that, it is the pace itself.
//!   The first cut, with nothing paced yet, takes the rate the server took over the last
//!   [`HISTORY`], or [`FIRST_CUT`] of the rate the last few requests went out at, if more.
//! - A cut is made once per *round*: a 429 for a request sent before the last cut (in flight
//!   when it happened) cuts nothing, nor does one less than [`CUT_GAP`] after the last cut
//!   unless the paced requests sent since measure the share (above).
//! - While the pace is what holds requests back, every answer other than 429 raises it a
//!   little: by [`STEP`] of the level of the last cut per second. After a cut to 0.95 of the
//!   limit it is back at the limit after about 5 s, and the next 429 comes later still.
//!
//! The request that got a 429 still waits its own back-off (at least 1 s) before it is sent
//! again; the pace is what keeps the other requests from running into the limit meanwhile.
//!
//! The bucket hands out *reservations*: a caller takes a token even when none is left (the
//! count goes negative) and sleeps until its token would have been there. Waiters are thus
//! served in arrival order at exactly the pace, and a late wake-up of one waiter never shifts
//! the schedule of the next.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Duration, Instant};

/// A cut sets the pace to this fraction of the estimated limit: below it, with room for the
/// server's measuring to differ from ours. Measured against the emulator (benches/RESULTS.md),
/// 0.95 rather than 0.9 took a sync of a day from 0.87-0.90 to 0.91-0.95 of the limit (hand
/// runs) and one worker's day of hourly jobs from 0.92 to 0.96, for one more 429 a day or none.
const CUT: f64 = 0.95;
/// Least time between two cuts, unless a measured round says better.
const CUT_GAP: Duration = Duration::from_secs(1);
/// Paced requests whose answers make a measured round (the share the server took); half as
/// many are enough when two of them were refused.
const MIN_ROUND: u32 = 8;
/// How far back the first cut looks.
const HISTORY: Duration = Duration::from_secs(2);
/// The first cut takes at least this share of the rate the last few requests went out at.
const FIRST_CUT: f64 = 0.5;
/// Rates are measured over at least this long (a burst of sends at once is not a rate).
const MIN_SPAN: Duration = Duration::from_millis(100);
/// While the pace holds requests back, it rises by this fraction of the last cut's level per
/// second.
const STEP: f64 = 0.01;
/// The first cut while other processes share the account takes this share of the estimate.
const SHARED_FIRST_CUT: f64 = 0.5;
/// The pace never goes below this many requests per second.
const MIN_RATE: f64 = 0.5;

/// A send schedule shared with the other processes of the account (the worker's pace board in
/// the queue): send times handed out one interval apart across all of them, so that their
/// requests are spaced evenly, as one process's are, instead of colliding at random.
pub trait SharedSchedule: Send + Sync {
    /// Reserves the next send time, `interval` after the last one handed out (or now, if that
    /// is past), and returns how long to wait for it; `None` when the schedule cannot be
    /// reached: the request then keeps to this process's own pace.
    fn reserve(
        &self,
        interval: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Duration>> + Send + '_>>;
}

#[derive(Debug)]
pub(crate) struct Limiter {
    permits: Arc<Semaphore>,
    concurrency: usize,
    /// Slots held back while other processes share the account ([`Limiter::share`]).
    withheld: Mutex<Vec<OwnedSemaphorePermit>>,
    pace: Mutex<Pace>,
    paused_until: Mutex<Option<Instant>>,
    /// The pace of this process's latest cut not yet taken by [`Limiter::take_cut`].
    unshared_cut: Mutex<Option<f64>>,
    /// With other processes sharing the account: their common send schedule.
    schedule: Mutex<Option<Arc<dyn SharedSchedule>>>,
}

impl std::fmt::Debug for dyn SharedSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSchedule")
    }
}

/// A request slot, held from before the request is sent until its answer is in.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    /// When the request went out (after any wait for its token).
    sent: Instant,
    /// Whether it waited for its token (the pace held it back).
    paced: bool,
}

/// How one attempt ended, as far as the pace is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 429: the account asked too much.
    Throttled,
    /// Any other answer: the server took the request.
    Answered,
    /// No answer (a connection error or timeout): says nothing about the rate.
    NoAnswer,
}

/// A lowered pace, for the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cut {
    /// The new pace, requests per second.
    pub rate: f64,
    /// The pace before (`None`: there was none).
    pub was: Option<f64>,
    /// The estimate the new pace is a fraction of.
    pub estimate: f64,
}

/// The shared pace: a token bucket whose rate adapts (see the module documentation).
#[derive(Debug)]
struct Pace {
    /// A configured limit: the pace starts there and never goes above it (this process's
    /// share of it, with other processes sharing the account: `configured / members`).
    ceiling: Option<f64>,
    configured: Option<f64>,
    /// Processes sharing the account's pace, this one included (see [`Limiter::share`]).
    members: u32,
    /// Tokens per second; `None` until the first 429 when no limit is configured.
    rate: Option<f64>,
    /// Most tokens the bucket holds (the largest burst after idling).
    burst: f64,
    /// Tokens now; negative while callers wait for reserved tokens.
    tokens: f64,
    last: Instant,
    /// Before the first cut: when requests went out, and answers other than 429 came, within
    /// [`HISTORY`].
    sends: VecDeque<Instant>,
    taken: VecDeque<Instant>,
    /// How many of the last sends give the rate they went out at: one more than the slots.
    recent: usize,
    last_cut: Option<Instant>,
    /// Paced requests sent since the last cut: answered (429 included), and refused.
    round_answered: u32,
    round_refused: u32,
    /// What the pace rises by per second while it holds requests back.
    step: f64,
    /// When the bucket last made a caller wait.
    last_held: Option<Instant>,
}

impl Pace {
    fn new(concurrency: usize, ceiling: Option<f64>, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Pace {
            ceiling,
            configured: ceiling,
            members: 1,
            rate: ceiling,
            burst,
            tokens: burst,
            last: now,
            sends: VecDeque::new(),
            taken: VecDeque::new(),
            recent: concurrency.max(1) + 1,
            last_cut: None,
            round_answered: 0,
            round_refused: 0,
            step: 0.0,
            last_held: None,
        }
    }

    /// Takes one token and returns how long the caller must wait for it (none without a pace).
    fn reserve(&mut self, now: Instant) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * rate).min(self.burst);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            self.last_held = Some(now);
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }

    /// A request waited `wait` for its turn on a shared schedule (instead of [`Pace::reserve`]):
    /// when it waited, the pace is what holds requests back, and may rise.
    fn waited(&mut self, wait: Duration, now: Instant) {
        if !wait.is_zero() {
            self.last_held = Some(now);
        }
    }

    /// A request went out at `at`.
    fn sent(&mut self, at: Instant) {
        if self.rate.is_none() {
            self.sends.push_back(at);
            forget_before(&mut self.sends, at.checked_sub(HISTORY));
        }
    }

    /// The first cut's estimate, from the requests sent (unpaced) within [`HISTORY`]: the rate
    /// the server took, or half the rate the last few went out at, if more. (One request more
    /// than the slots, sent at once, is a burst, not a rate: it may overshoot the limit by any
    /// factor, and halving it is TCP's answer to a loss.)
    fn unpaced_rate(&mut self, sent: Instant, now: Instant) -> f64 {
        let rate = |count: usize, since: Option<Instant>| {
            let span = now.saturating_duration_since(since.unwrap_or(sent).min(sent));
            count.max(1) as f64 / span.max(MIN_SPAN).as_secs_f64()
        };
        forget_before(&mut self.sends, now.checked_sub(HISTORY));
        forget_before(&mut self.taken, now.checked_sub(HISTORY));
        let recent = self.sends.len().saturating_sub(self.recent);
        let sent_rate = rate(self.sends.len() - recent, self.sends.get(recent).copied());
        let taken_rate = if self.taken.is_empty() {
            0.0
        } else {
            rate(self.taken.len(), self.sends.front().copied())
        };
        (FIRST_CUT * sent_rate).max(taken_rate)
    }

    /// Whether a request sent at `sent` belongs to the current round (sent since the last cut).
    fn this_round(&self, sent: Instant) -> bool {
        self.last_cut.is_none_or(|cut| sent >= cut)
    }

    /// A request sent at `sent` (`paced`: after waiting for its token) got 429 at `now`: the
    /// cut, if this one makes one.
    fn throttled(&mut self, sent: Instant, paced: bool, now: Instant) -> Option<Cut> {
        if !self.this_round(sent) {
            return None; // in flight at the last cut: that round is counted
        }
        if paced {
            self.round_answered = self.round_answered.saturating_add(1);
            self.round_refused = self.round_refused.saturating_add(1);
        }
        let gap_over = self
            .last_cut
            .is_none_or(|cut| now.saturating_duration_since(cut) >= CUT_GAP);
        let estimate = match self.rate {
            None => self.unpaced_rate(sent, now),
            Some(pace)
                if self.round_answered >= MIN_ROUND
                    || (self.round_refused >= 2 && self.round_answered >= MIN_ROUND / 2) =>
            {
                // One more taken than seen: a share from a handful of answers errs high, and a
                // pace too high is soon measured again, one too low only slowly regained.
                let taken = self.round_answered - self.round_refused;
                let share = f64::from(taken + 1) / f64::from(self.round_answered + 1);
                pace * share
            }
            Some(pace) if gap_over => pace,
            Some(_) => return None, // too soon, too little known: wait for more answers
        };
        let mut rate = CUT * estimate;
        if self.rate.is_none() && self.members > 1 {
            // The first cut while other processes share the account: the estimate comes from
            // a burst they all sent at once, which overstates this process's share of what the
            // server takes; half of it is taken (the account's first rate, published on the
            // worker's pace board, is then half of what the processes' estimates add up to).
            rate *= SHARED_FIRST_CUT;
        }
        let was = self.rate;
        let rate = self.cut_to(rate, now);
        Some(Cut {
            rate,
            was,
            estimate,
        })
    }

    /// Sets the pace to `rate` (kept within [`MIN_RATE`] and the ceiling) as a cut made at
    /// `now`, by this process on a 429 or by another process of the account (see
    /// [`Limiter::adopt`]): a new round starts, and answers to requests sent before it are of
    /// the round that cut. Returns the pace set.
    fn cut_to(&mut self, rate: f64, now: Instant) -> f64 {
        let rate = self.bounded(rate);
        if self.rate.is_none() {
            self.last = now;
        }
        self.rate = Some(rate);
        self.sends.clear();
        self.taken.clear();
        self.step = STEP * rate;
        // No saved-up tokens: after a cut the next request waits its turn.
        self.tokens = self.tokens.min(0.0);
        self.last_cut = Some(now);
        self.round_answered = 0;
        self.round_refused = 0;
        rate
    }

    /// `rate` within [`MIN_RATE`] and the ceiling.
    fn bounded(&self, rate: f64) -> f64 {
        let rate = rate.max(MIN_RATE);
        self.ceiling.map_or(rate, |ceiling| rate.min(ceiling))
    }

    /// The server took a request sent at `sent` (`paced`: after waiting for its token),
    /// answering at `now`: the round counts it, and the pace may rise.
    fn answered(&mut self, sent: Instant, paced: bool, now: Instant) {
        if paced && self.this_round(sent) {
            self.round_answered = self.round_answered.saturating_add(1);
        }
        let Some(rate) = self.rate else {
            self.taken.push_back(now);
            forget_before(&mut self.taken, now.checked_sub(HISTORY));
            return;
        };
        let held = self
            .last_held
            .is_some_and(|t| now.saturating_duration_since(t) <= HISTORY);
        if self.last_cut.is_none() || !held {
            return; // not found by 429s, or not what holds requests back
        }
        // About `rate` answers per second: `step` per second while the pace is what binds.
        let mut raised = rate + self.step / rate;
        if let Some(ceiling) = self.ceiling {
            raised = raised.min(ceiling);
        }
        self.rate = Some(raised.max(rate));
    }
}

impl Pace {
    /// `members` processes share the account's pace from now on: this one's pace (and its
    /// share of a configured limit) scales by the old count over the new.
    fn share(&mut self, members: u32) {
        let members = members.max(1);
        if members == self.members {
            return;
        }
        let factor = f64::from(self.members) / f64::from(members);
        self.members = members;
        self.ceiling = self.configured.map(|c| c / f64::from(members));
        if let Some(rate) = self.rate {
            self.rate = Some(self.bounded(rate * factor));
            self.step *= factor;
        }
    }
}

/// Drops the instants before `cutoff` from the front of an ordered queue.
fn forget_before(queue: &mut VecDeque<Instant>, cutoff: Option<Instant>) {
    let Some(cutoff) = cutoff else { return };
    while queue.front().is_some_and(|&t| t < cutoff) {
        queue.pop_front();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Limiter {
    /// `concurrency` requests in flight at most; `ceiling` requests per second at most (none:
    /// no pace until the server answers 429), with bursts of up to `burst` requests.
    pub(crate) fn new(concurrency: usize, ceiling: Option<f64>, burst: u32) -> Self {
        let concurrency = concurrency.max(1);
        Limiter {
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            withheld: Mutex::new(Vec::new()),
            pace: Mutex::new(Pace::new(concurrency, ceiling, burst, Instant::now())),
            paused_until: Mutex::new(None),
            unshared_cut: Mutex::new(None),
            schedule: Mutex::new(None),
        }
    }

    /// Waits for a free slot, the end of any pause, and a token. The slot is held until it is
    /// handed back to [`Limiter::release`] (when the answer is in).
    pub(crate) async fn acquire(&self) -> Slot {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("the limiter's semaphore is never closed");
        loop {
            let until = *lock(&self.paused_until);
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => break,
            }
        }
        let wait = self.wait_for_turn().await;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let sent = Instant::now();
        lock(&self.pace).sent(sent);
        Slot {
            _permit: permit,
            sent,
            paced: !wait.is_zero(),
        }
    }

    /// How long the next request waits for its turn: a token of this process's pace, or, with
    /// other processes sharing the account and a pace found, a send time of their common
    /// schedule at the account's rate (this process's share times the processes).
    async fn wait_for_turn(&self) -> Duration {
        let schedule = lock(&self.schedule).clone();
        let interval = {
            let pace = lock(&self.pace);
            match pace.rate {
                Some(rate) if pace.members > 1 => Some(Duration::from_secs_f64(
                    1.0 / (rate * f64::from(pace.members)),
                )),
                _ => None,
            }
        };
        if let (Some(schedule), Some(interval)) = (schedule, interval)
            && let Some(wait) = schedule.reserve(interval).await
        {
            lock(&self.pace).waited(wait, Instant::now());
            return wait;
        }
        lock(&self.pace).reserve(Instant::now())
    }

    /// Spaces this process's requests on `schedule`, shared with the other processes of the
    /// account, while there are others ([`Limiter::share`]) and a pace.
    pub(crate) fn set_schedule(&self, schedule: Arc<dyn SharedSchedule>) {
        *lock(&self.schedule) = Some(schedule);
    }

    /// Frees `slot` and tells the pace how its request ended; logs a cut.
    pub(crate) fn release(&self, slot: Slot, outcome: Outcome) {
        let now = Instant::now();
        let (sent, paced) = (slot.sent, slot.paced);
        drop(slot);
        let cut = {
            let mut pace = lock(&self.pace);
            match outcome {
                Outcome::Answered => {
                    pace.answered(sent, paced, now);
                    None
                }
                Outcome::Throttled => pace.throttled(sent, paced, now),
                Outcome::NoAnswer => None,
            }
        };
        if let Some(cut) = cut {
            *lock(&self.unshared_cut) = Some(cut.rate);
            log_cut(&cut);
        }
    }

    /// The pace of this process's latest cut since the last call, if any: for sharing it.
    pub(crate) fn take_cut(&self) -> Option<f64> {
        lock(&self.unshared_cut).take()
    }

    /// Takes `rate`, this process's share of the account's rate after a cut (its own or
    /// another process's), as its pace now.
    pub(crate) fn adopt(&self, rate: f64) {
        lock(&self.pace).cut_to(rate, Instant::now());
        tracing::debug!(
            rate = round2(rate),
            "paced at this process's share of the account's rate"
        );
    }

    /// `members` processes (this one included) share the account from now on: this one keeps
    /// its share of the request slots (at least one) and of the pace. Slots in use are not
    /// taken back; the share is reached as they are freed, on the next call.
    pub(crate) fn share(&self, members: u32) {
        let members = members.max(1) as usize;
        let own = self.concurrency.div_ceil(members).max(1);
        let target = self.concurrency - own;
        let mut withheld = lock(&self.withheld);
        withheld.truncate(target);
        while withheld.len() < target {
            match Arc::clone(&self.permits).try_acquire_owned() {
                Ok(permit) => withheld.push(permit),
                Err(_) => break,
            }
        }
        lock(&self.pace).share(members as u32);
    }

    /// The pace now, requests per second (`None`: none yet).
    pub(crate) fn rate(&self) -> Option<f64> {
        lock(&self.pace).rate
    }

    /// Holds back every request not yet sent for `d` (the server asked us to slow down).
    pub(crate) fn pause_for(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut paused = lock(&self.paused_until);
        if paused.is_none_or(|t| t < until) {
            *paused = Some(until);
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn log_cut(cut: &Cut) {
    let (rate, estimate) = (round2(cut.rate), round2(cut.estimate));
    match cut.was {
        None => tracing::info!(
            rate,
            estimate,
            "the API answered 429: requests are now paced at {rate} per second"
        ),
        Some(was) => tracing::debug!(
            rate,
            was = round2(was),
            estimate,
            "the API answered 429: request pace lowered to {rate} per second"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bucket_spaces_reservations_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Pace::new(4, Some(10.0), 2, t0);
        // Two tokens at once (the burst), then one every 100 ms, queued in order.
        assert_eq!(b.reserve(t0), Duration::ZERO);
        assert_eq!(b.reserve(t0), Duration::ZERO);
        let w3 = b.reserve(t0);
        let w4 = b.reserve(t0);
        assert!((w3.as_secs_f64() - 0.1).abs() < 1e-9, "{w3:?}");
        assert!((w4.as_secs_f64() - 0.2).abs() < 1e-9, "{w4:?}");
        // After a long idle time the bucket holds no more than the burst.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.reserve(later), Duration::ZERO);
        assert_eq!(b.reserve(later), Duration::ZERO);
        assert!(b.reserve(later) > Duration::ZERO);
    }

    #[test]
    fn no_pace_until_a_429_then_a_fraction_of_the_rate_the_server_took() {
        let t0 = Instant::now();
        let mut p = Pace::new(4, None, 1, t0);
        // Unpaced: 40 requests a second for a second, all answered 10 ms later.
        let mut t = t0;
        for i in 0..40 {
            t = t0 + ms(25 * i);
            assert_eq!(p.reserve(t), Duration::ZERO, "no pace yet");
            p.sent(t);
            p.answered(t, false, t + ms(10));
        }
        let now = t + ms(30);
        let cut = p.throttled(t, false, now).expect("the first 429 cuts");
        assert_eq!(cut.was, None);
        // 40 taken over the 1.005 s since the first send (more than half of the rate the last
        // 5 went out at: 5 in 130 ms).
        assert!((cut.estimate - 40.0 / 1.005).abs() < 1e-9, "{cut:?}");
        assert!((cut.rate - CUT * cut.estimate).abs() < 1e-9, "{cut:?}");
        assert_eq!(p.rate, Some(cut.rate));
        // From now on requests are paced, starting with a wait (no saved-up burst).
        assert!(p.reserve(now) > Duration::ZERO);
    }

    #[test]
    fn a_burst_is_not_taken_for_a_rate() {
        let t0 = Instant::now();
        let mut p = Pace::new(4, None, 1, t0);
        // Three requests one after the other, then four at once: the last five went out in
        // 130 ms, a rate of 38 that is only a burst; the server took 3 in 330 ms.
        for i in 0..3 {
            p.sent(t0 + ms(100 * i));
            p.answered(t0 + ms(100 * i), false, t0 + ms(100 * i + 90));
        }
        for _ in 0..4 {
            p.sent(t0 + ms(300));
        }
        let cut = p.throttled(t0 + ms(300), false, t0 + ms(330)).unwrap();
        // Half the burst's rate, more than the 9/s taken.
        assert!(
            (cut.estimate - FIRST_CUT * 5.0 / 0.13).abs() < 1e-9,
            "{cut:?}"
        );
    }

    /// Paced requests at the pace from `from`, answered as `answers` says (`A`: taken, `R`:
    /// 429); only the last may cut, and its cut is returned.
    fn paced_round(p: &mut Pace, from: Instant, answers: &str) -> Option<Cut> {
        let rate = p.rate.unwrap();
        let mut cut = None;
        for (i, answer) in answers.chars().enumerate() {
            assert!(cut.is_none(), "only the round's last answer cuts");
            let t = from + Duration::from_secs_f64((i + 1) as f64 / rate);
            p.reserve(t - ms(1));
            p.sent(t);
            match answer {
                'A' => p.answered(t, true, t + ms(30)),
                _ => cut = p.throttled(t, true, t + ms(30)),
            }
        }
        cut
    }

    /// A pace after a first cut to CUT of 40/s (40 requests a second taken for a second).
    fn paced_after_a_first_cut(t0: Instant) -> Pace {
        let mut p = Pace::new(4, None, 1, t0);
        for i in 0..40 {
            let t = t0 + ms(25 * i);
            p.sent(t);
            p.answered(t, false, t + ms(5));
        }
        let last = t0 + ms(25 * 39);
        let first = p
            .throttled(last, false, t0 + Duration::from_secs(1))
            .unwrap();
        assert!((first.rate - CUT * 40.0).abs() < 1e-9, "{first:?}");
        p
    }

    #[test]
    fn a_paced_cut_takes_the_share_the_server_took() {
        let t0 = Instant::now();
        let from = t0 + Duration::from_secs(1);
        // MIN_ROUND paced requests answered, the last a 429: 7 of 8 taken. The cut comes at
        // once, without waiting CUT_GAP.
        let mut p = paced_after_a_first_cut(t0);
        let cut = paced_round(&mut p, from, "AAAAAAAR").expect("a measured round");
        let was = cut.was.unwrap();
        let first = CUT * 40.0;
        assert!((first..first + 0.5).contains(&was), "{cut:?}"); // it rose a little meanwhile
        assert!((cut.estimate - was * 8.0 / 9.0).abs() < 1e-9, "{cut:?}"); // (7 + 1) / (8 + 1)
        assert!((cut.rate - CUT * cut.estimate).abs() < 1e-9, "{cut:?}");
        // Two 429s measure a round too, once half as many answers are in: 3 of 5 taken,
        // (3 + 1) / (5 + 1).
        let mut p = paced_after_a_first_cut(t0);
        let cut = paced_round(&mut p, from, "AARAR").expect("two 429s");
        assert!(
            (cut.estimate - cut.was.unwrap() * 4.0 / 6.0).abs() < 1e-9,
            "{cut:?}"
        );
        // One 429 among fewer than MIN_ROUND answers, within CUT_GAP, does not; nor do two
        // among fewer than half of them.
        let mut p = paced_after_a_first_cut(t0);
        assert_eq!(paced_round(&mut p, from, "AAARAA"), None);
        let mut p = paced_after_a_first_cut(t0);
        assert_eq!(paced_round(&mut p, from, "RR"), None);
    }

    #[test]
    fn answers_in_flight_at_a_cut_and_429s_soon_after_it_cut_nothing() {
        let t0 = Instant::now();
        let mut p = Pace::new(4, None, 1, t0);
        for i in 0..8 {
            p.sent(t0 + ms(i * 10));
        }
        let cut_at = t0 + ms(100);
        let first = p.throttled(t0 + ms(70), false, cut_at).unwrap();
        // Three more 429s for requests sent before the cut: the same round.
        for k in 0..3 {
            assert_eq!(
                p.throttled(t0 + ms(70 - k * 10), false, cut_at + ms(k * 5)),
                None
            );
        }
        // A paced request sent after the cut, refused within CUT_GAP, and two that were not
        // held back by the pace: too little to measure, nothing.
        for k in 0..3 {
            let sent = cut_at + ms(50 * (k + 1));
            assert_eq!(p.throttled(sent, k == 0, sent + ms(30)), None);
        }
        assert_eq!(p.rate, Some(first.rate));
        // Past the gap, a 429 does cut again: to CUT of the pace (too little to measure).
        let again = p
            .throttled(cut_at + ms(900), false, cut_at + CUT_GAP)
            .unwrap();
        assert!((again.rate - CUT * first.rate).abs() < 1e-9, "{again:?}");
    }

    #[test]
    fn four_answers_two_429s_cut_deep_and_no_cut_goes_below_the_least() {
        let t0 = Instant::now();
        let mut p = Pace::new(4, Some(20.0), 1, t0);
        // The first 429, with too few answers to measure: CUT of the pace.
        let first = p.throttled(t0, true, t0 + ms(30)).unwrap();
        assert!((first.rate - CUT * 20.0).abs() < 1e-9, "{first:?}");
        // Then four paced requests answered, the last two 429: a deep cut, to CUT times
        // (2 + 1) / (4 + 1) of the pace.
        let mut t = t0 + ms(30);
        let cut = paced_round(&mut p, t, "AARR").expect("two 429s of four");
        assert!(
            (cut.estimate - cut.was.unwrap() * 0.6).abs() < 1e-9,
            "{cut:?}"
        );
        assert!((cut.rate - CUT * cut.estimate).abs() < 1e-9, "{cut:?}");
        // However many cuts, never below MIN_RATE.
        for _ in 0..100 {
            t += CUT_GAP;
            p.throttled(t - ms(1), false, t);
        }
        assert_eq!(p.rate, Some(MIN_RATE));
    }

    #[test]
    fn a_configured_rate_is_the_start_and_the_ceiling() {
        let t0 = Instant::now();
        let mut p = Pace::new(4, Some(10.0), 1, t0);
        assert_eq!(p.rate, Some(10.0));
        // No 429 yet: it stays at the ceiling however long requests are held back.
        let mut t = t0;
        for _ in 0..100 {
            t += p.reserve(t).max(ms(1));
            p.sent(t);
            p.answered(t, true, t + ms(20));
        }
        assert_eq!(p.rate, Some(10.0));
        // The 429 that follows 100 answers cuts below the ceiling...
        let cut = p.throttled(t, true, t + ms(30)).unwrap();
        assert!(
            (cut.estimate - 10.0 * 101.0 / 102.0).abs() < 1e-9,
            "{cut:?}"
        );
        assert!((cut.rate - CUT * cut.estimate).abs() < 1e-9, "{cut:?}");
        // ... a round in which the server takes 8 of 10 cuts to CUT x 9/11 of the pace...
        let last = t + ms(30) + Duration::from_secs_f64(10.0 / p.rate.unwrap());
        let cut = paced_round(&mut p, t + ms(30), "AAAAARAAAR").unwrap();
        assert!(
            (cut.rate - CUT * 9.0 / 11.0 * cut.was.unwrap()).abs() < 1e-9,
            "{cut:?}"
        );
        // ... and the pace creeps back up to it, never past it.
        t = last + ms(30);
        for _ in 0..3000 {
            t += p.reserve(t).max(ms(1));
            p.sent(t);
            p.answered(t, true, t + ms(20));
        }
        assert_eq!(p.rate, Some(10.0));
    }

    #[test]
    fn the_pace_rises_slowly_and_only_while_it_holds_requests_back() {
        let t0 = Instant::now();
        let mut p = Pace::new(4, None, 1, t0);
        for i in 0..5 {
            p.sent(t0 + ms(i * 50));
        }
        let cut = p.throttled(t0 + ms(200), false, t0 + ms(230)).unwrap();
        let start = cut.rate;
        // Ten seconds of answers at the pace, every request held back by the bucket.
        let mut t = t0 + ms(230);
        let end = t + Duration::from_secs(10);
        while t < end {
            t += p.reserve(t).max(ms(1));
            p.sent(t);
            p.answered(t, true, t);
        }
        let raised = p.rate.unwrap();
        // STEP of the cut's level per second: about 10% in ten seconds (not compounding).
        let expected = start * (1.0 + 10.0 * STEP);
        assert!(
            (raised - expected).abs() < 0.01 * start,
            "{start} -> {raised}, expected about {expected}"
        );
        // Answers while nobody waits for a token (the pace is not what binds): no rise.
        let idle = t + Duration::from_secs(5);
        for i in 0..100 {
            p.answered(idle, false, idle + ms(i));
        }
        assert_eq!(p.rate, Some(raised));
    }

    #[test]
    fn a_steady_limit_is_met_at_nine_tenths_or_more_with_few_429s() {
        // A simulated server: a token bucket of 20 per second and 2 of burst, 30 ms away. The
        // client sends whenever its pace lets it, up to 100 a second (more than the limit).
        let t0 = Instant::now();
        let mut p = Pace::new(4, None, 1, t0);
        let (limit, burst) = (20.0, 2.0);
        let (mut server_tokens, mut server_last) = (burst, t0);
        let mut t = t0;
        let (mut taken, mut refused) = (0u32, 0u32);
        let secs = 120;
        while t < t0 + Duration::from_secs(secs) {
            let wait = p.reserve(t);
            t += wait.max(ms(10));
            p.sent(t);
            let elapsed = t.saturating_duration_since(server_last).as_secs_f64();
            server_last = t;
            server_tokens = (server_tokens + elapsed * limit).min(burst);
            if server_tokens >= 1.0 {
                server_tokens -= 1.0;
                taken += 1;
                p.answered(t, !wait.is_zero(), t + ms(30));
            } else {
                refused += 1;
                p.throttled(t, !wait.is_zero(), t + ms(30));
            }
        }
        let fraction = f64::from(taken) / (secs as f64 * limit);
        println!("simulated: {fraction:.3} of the limit; {refused} refused, {taken} taken");
        assert!(fraction > 0.9, "{fraction}");
        // After the first rounds, a 429 only every several seconds.
        assert!(refused < 40, "{refused}");
    }

    #[test]
    fn sharing_divides_slots_and_pace_among_processes() {
        let l = Limiter::new(4, Some(20.0), 1);
        l.share(4);
        assert_eq!(l.permits.available_permits(), 1);
        assert_eq!(l.rate(), Some(5.0));
        l.share(3);
        assert_eq!(l.permits.available_permits(), 2, "4 / 3, rounded up");
        assert!((l.rate().unwrap() - 20.0 / 3.0).abs() < 1e-9);
        // Back to one: every slot and the whole configured limit.
        l.share(1);
        assert_eq!(l.permits.available_permits(), 4);
        assert_eq!(l.rate(), Some(20.0));
    }

    #[tokio::test]
    async fn slots_in_use_are_withheld_once_freed() {
        let l = Limiter::new(2, None, 1);
        let (a, b) = (l.acquire().await, l.acquire().await);
        l.share(2);
        l.release(a, Outcome::Answered);
        l.release(b, Outcome::Answered);
        assert_eq!(
            l.permits.available_permits(),
            2,
            "nothing was free to withhold"
        );
        l.share(2);
        assert_eq!(l.permits.available_permits(), 1);
    }

    #[test]
    fn a_shared_first_cut_takes_half_the_estimate_as_this_processs_share() {
        let t0 = Instant::now();
        let first_cut = |members: u32| {
            let mut p = Pace::new(4, None, 1, t0);
            p.share(members);
            for i in 0..8 {
                p.sent(t0 + ms(i * 10));
            }
            p.throttled(t0 + ms(70), false, t0 + ms(100)).unwrap()
        };
        let (alone, shared) = (first_cut(1), first_cut(4));
        assert_eq!(alone.estimate, shared.estimate);
        assert!(
            (shared.rate - alone.rate / 2.0).abs() < 1e-9,
            "{alone:?} {shared:?}"
        );
        assert!((first_cut(2).rate - alone.rate / 2.0).abs() < 1e-9);
    }

    #[test]
    fn an_adopted_pace_counts_as_a_cut_made_now() {
        let t0 = Instant::now();
        let mut p = Pace::new(4, None, 1, t0);
        p.cut_to(7.5, t0 + ms(100));
        assert_eq!(p.rate, Some(7.5));
        assert!(p.tokens <= 0.0, "no saved-up tokens after a cut");
        // A 429 for a request sent before it is of the round that cut: nothing more.
        assert_eq!(p.throttled(t0 + ms(50), false, t0 + ms(150)), None);
        assert_eq!(p.rate, Some(7.5));
        // Adopting never goes above a configured limit.
        let mut capped = Pace::new(4, Some(5.0), 1, t0);
        capped.cut_to(9.0, t0);
        assert_eq!(capped.rate, Some(5.0));
    }

    /// A schedule that hands out no wait and remembers the intervals it was asked for.
    struct Recorded(Mutex<Vec<Duration>>);

    impl SharedSchedule for Recorded {
        fn reserve(
            &self,
            interval: Duration,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Duration>> + Send + '_>>
        {
            lock(&self.0).push(interval);
            Box::pin(async { Some(Duration::ZERO) })
        }
    }

    #[tokio::test]
    async fn shared_processes_take_turns_on_the_schedule_at_the_accounts_rate() {
        let l = Limiter::new(4, Some(20.0), 1);
        let schedule = Arc::new(Recorded(Mutex::new(Vec::new())));
        l.set_schedule(schedule.clone());
        // Alone: this process's own bucket.
        let s = l.acquire().await;
        l.release(s, Outcome::Answered);
        assert!(lock(&schedule.0).is_empty());
        // Shared by 4 at 5 per second each: the schedule, at the account's 20 per second.
        l.share(4);
        let s = l.acquire().await;
        l.release(s, Outcome::Answered);
        assert_eq!(*lock(&schedule.0), vec![Duration::from_millis(50)]);
    }

    #[tokio::test]
    async fn concurrency_is_capped() {
        let l = Arc::new(Limiter::new(2, None, 1));
        let a = l.acquire().await;
        let _b = l.acquire().await;
        let l2 = Arc::clone(&l);
        let third = tokio::spawn(async move { l2.acquire().await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!third.is_finished(), "a third request waits for a slot");
        l.release(a, Outcome::Answered);
        let slot = tokio::time::timeout(Duration::from_secs(2), third)
            .await
            .expect("a freed slot lets it through")
            .unwrap();
        l.release(slot, Outcome::NoAnswer);
    }

    #[tokio::test]
    async fn a_pause_holds_everyone_back() {
        let l = Limiter::new(4, None, 1);
        l.pause_for(Duration::from_millis(60));
        let t = Instant::now();
        let slot = l.acquire().await;
        assert!(t.elapsed() >= Duration::from_millis(55));
        l.release(slot, Outcome::Answered);
    }

    #[tokio::test]
    async fn a_429_paces_every_later_request() {
        let l = Limiter::new(4, None, 1);
        for _ in 0..10 {
            let slot = l.acquire().await;
            l.release(slot, Outcome::Answered);
        }
        assert_eq!(l.rate(), None);
        let slot = l.acquire().await;
        l.release(slot, Outcome::Throttled);
        let rate = l.rate().expect("a pace after the 429");
        // The next two requests are spaced by the pace.
        let start = Instant::now();
        for _ in 0..2 {
            let slot = l.acquire().await;
            l.release(slot, Outcome::Answered);
        }
        let spacing = Duration::from_secs_f64(1.0 / rate);
        assert!(
            start.elapsed() >= spacing,
            "{:?} < {spacing:?}",
            start.elapsed()
        );
    }
}
