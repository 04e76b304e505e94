//! Retrying a store's requests that failed for a passing reason (a 5xx, throttling, a reset
//! connection, a timeout), with exponential backoff and jitter, within a budget.
//!
//! This is the only retry loop for store requests (the S3 SDK's own is turned off), so that
//! every retry is logged, and a write that landed although its answer was lost is recognised
//! by the caller after the loop.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How hard to try one request: at most `attempts` in all, waiting about `first_delay`
/// before the second, twice that before the third, and so on up to `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryBudget {
    /// 8 attempts from 200 ms, doubling, capped at 5 s: about 15 s of waiting in all, enough
    /// to ride out an S3 prefix being throttled while it scales.
    fn default() -> Self {
        RetryBudget {
            attempts: 8,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryBudget {
    /// No retry at all (one attempt).
    pub fn none() -> Self {
        RetryBudget {
            attempts: 1,
            ..RetryBudget::default()
        }
    }

    /// The wait before attempt `attempt + 1` (`attempt` counts from 1): the exponential delay
    /// with "full jitter", a uniform pick between half of it and all of it, so that parallel
    /// requests failed by the same hiccup do not come back in step.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let exponential = self
            .first_delay
            .saturating_mul(1 << doublings)
            // A first delay set above the cap is taken as the user's wish.
            .min(self.max_delay.max(self.first_delay));
        exponential.mul_f64(0.5 + 0.5 * random_unit())
    }
}

/// A uniform number in [0, 1). The standard library's per-process random hash keys are
/// enough for jitter; nothing depends on its quality.
fn random_unit() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A failed attempt, as the retry loop sees it.
pub trait Attempt {
    /// Worth trying again: the same request may well succeed.
    fn is_transient(&self) -> bool;
    /// One line for the log.
    fn cause(&self) -> String;
}

/// Runs `attempt` until it succeeds, fails for good, or the budget is spent; returns the
/// last result. Each retry is logged at debug level with the operation, key, attempt and
/// cause.
pub async fn retrying<T, E, F, Fut>(
    budget: &RetryBudget,
    operation: &'static str,
    key: &str,
    mut attempt: F,
) -> Result<T, E>
where
    E: Attempt,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut tried = 1;
    loop {
        match attempt().await {
            Err(e) if e.is_transient() && tried < budget.attempts => {
                let delay = budget.delay_after(tried);
                tracing::debug!(
                    operation,
                    key,
                    attempt = tried,
                    of = budget.attempts,
                    cause = %e.cause(),
                    retry_in_ms = delay.as_millis() as u64,
                    "{operation} failed, retrying"
                );
                tokio::time::sleep(delay).await;
                tried += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky(bool);

    impl Attempt for Flaky {
        fn is_transient(&self) -> bool {
            self.0
        }
        fn cause(&self) -> String {
            "flaky".into()
        }
    }

    fn quick(attempts: u32) -> RetryBudget {
        RetryBudget {
            attempts,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn transient_failures_are_retried_within_the_budget() {
        let mut calls = 0;
        let result: Result<u32, Flaky> = run(retrying(&quick(5), "Op", "k", || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err(Flaky(true)) } else { Ok(n) } }
        }));
        assert_eq!(result.ok(), Some(3));

        let mut calls = 0;
        let result: Result<(), Flaky> = run(retrying(&quick(4), "Op", "k", || {
            calls += 1;
            async { Err(Flaky(true)) }
        }));
        assert!(result.is_err());
        assert_eq!(calls, 4, "the budget is every attempt, the first included");
    }

    #[test]
    fn lasting_failures_are_not_retried() {
        let mut calls = 0;
        let result: Result<(), Flaky> = run(retrying(&quick(5), "Op", "k", || {
            calls += 1;
            async { Err(Flaky(false)) }
        }));
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }

    #[test]
    fn delays_double_up_to_the_cap_with_jitter() {
        let budget = RetryBudget::default();
        for (attempt, full) in [(1, 200), (2, 400), (3, 800), (6, 5000), (30, 5000)] {
            let d = budget.delay_after(attempt).as_millis() as u64;
            assert!((full / 2..=full).contains(&d), "attempt {attempt}: {d} ms");
        }
    }
}
