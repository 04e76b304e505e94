//! The account-wide request budget every request of a [`crate::Client`] (and of its clones)
//! draws from: a cap on requests in flight, a token bucket for requests per second, and a
//! pause that a throttled answer carrying `Retry-After` imposes on everyone.
//!
//! The bucket hands out *reservations*: a caller takes a token even when none is left (the
//! count goes negative) and sleeps until its token would have been there. Waiters are thus
//! served in arrival order at exactly the configured rate, and a late wake-up of one waiter
//! never shifts the schedule of the next.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Limiter {
    permits: Arc<Semaphore>,
    bucket: Option<Mutex<Bucket>>,
    paused_until: Mutex<Option<Instant>>,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens per second.
    rate: f64,
    /// Most tokens the bucket holds (the largest burst after idling).
    burst: f64,
    /// Tokens now; negative while callers wait for reserved tokens.
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Takes one token and returns how long the caller must wait for it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Limiter {
    /// `concurrency` requests in flight at most; `rate` requests per second (none: unlimited)
    /// with bursts of up to `burst` requests.
    pub(crate) fn new(concurrency: usize, rate: Option<f64>, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Limiter {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            bucket: rate.map(|rate| {
                Mutex::new(Bucket {
                    rate,
                    burst,
                    tokens: burst,
                    last: Instant::now(),
                })
            }),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits for a free slot, the end of any pause, and a token; the slot is held until the
    /// returned permit is dropped (when the answer has been read).
    pub(crate) async fn acquire(&self) -> OwnedSemaphorePermit {
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
        if let Some(bucket) = &self.bucket {
            let wait = lock(bucket).reserve(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        permit
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_spaces_reservations_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket {
            rate: 10.0,
            burst: 2.0,
            tokens: 2.0,
            last: t0,
        };
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

    #[tokio::test]
    async fn concurrency_is_capped() {
        let l = Arc::new(Limiter::new(2, None, 1));
        let a = l.acquire().await;
        let _b = l.acquire().await;
        let l2 = Arc::clone(&l);
        let third = tokio::spawn(async move { l2.acquire().await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!third.is_finished(), "a third request waits for a slot");
        drop(a);
        let permit = tokio::time::timeout(Duration::from_secs(2), third)
            .await
            .expect("a freed slot lets it through")
            .unwrap();
        drop(permit);
    }

    #[tokio::test]
    async fn a_pause_holds_everyone_back() {
        let l = Limiter::new(4, None, 1);
        l.pause_for(Duration::from_millis(60));
        let t = Instant::now();
        drop(l.acquire().await);
        assert!(t.elapsed() >= Duration::from_millis(55));
    }
}
