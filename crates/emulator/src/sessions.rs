//! Login sessions (bearer tokens of the Login Service, §2.2) and Sentinel access tokens
//! (OAuth 2.0 client credentials, §2.3) the emulator has handed out, and their expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use tokio::time::Instant;

use crate::rng::{key, mix};

#[derive(Debug)]
struct Login {
    bearer: String,
    csrf: String,
    expires: Instant,
}

#[derive(Debug)]
pub(crate) struct Sessions {
    seed: u64,
    counter: AtomicU64,
    /// Session id (the `Session_id` cookie) → session.
    logins: Mutex<HashMap<String, Login>>,
    /// Access token → expiry.
    tokens: Mutex<HashMap<String, Instant>>,
}

/// What a new login gives the client.
pub(crate) struct NewLogin {
    pub bearer: String,
    pub csrf: String,
    pub session_id: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sessions {
    pub(crate) fn new(seed: u64) -> Self {
        Sessions {
            seed: mix(seed ^ 0x5E55_1045),
            counter: AtomicU64::new(0),
            logins: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// `words` 64-bit words of hex, unique per call.
    fn secret(&self, words: u64) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        (0..words)
            .map(|w| format!("{:016x}", key(self.seed, n, 0xB0 + w)))
            .collect()
    }

    pub(crate) fn login(&self, ttl: Duration) -> NewLogin {
        let new = NewLogin {
            bearer: self.secret(4),
            csrf: self.secret(4),
            session_id: self.secret(2),
        };
        lock(&self.logins).insert(
            new.session_id.clone(),
            Login {
                bearer: new.bearer.clone(),
                csrf: new.csrf.clone(),
                expires: Instant::now() + ttl,
            },
        );
        new
    }

    /// Extends the session `session_id` by `ttl` if `csrf` is its CSRF token.
    pub(crate) fn refresh(
        &self,
        session_id: &str,
        csrf: &str,
        ttl: Duration,
    ) -> Result<(), &'static str> {
        let mut logins = lock(&self.logins);
        let login = logins
            .get_mut(session_id)
            .filter(|l| l.expires > Instant::now())
            .ok_or("no such login session (missing, unknown or expired Session_id cookie)")?;
        if login.csrf != csrf {
            return Err(
                "CSRF token invalid! The CSRF token on request does not match the CSRF token on the session",
            );
        }
        login.expires = Instant::now() + ttl;
        Ok(())
    }

    pub(crate) fn logout(&self, session_id: &str) -> bool {
        lock(&self.logins).remove(session_id).is_some()
    }

    /// A Sentinel access token: a JWT whose claims say who it is for and when it expires.
    pub(crate) fn issue_token(&self, account: &str, client_id: &str, ttl: Duration) -> String {
        let now = chrono::Utc::now().timestamp();
        let enc = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let jti = self.secret(2);
        let token = format!(
            "{}.{}.{}",
            enc(json!({"alg": "RS256", "typ": "JWT", "kid": "emulator"})),
            enc(
                json!({"aud": account, "azp": client_id, "scope": "users.read msghist.read enghist.read",
                       "iss": "Sentinel", "iat": now, "exp": now + ttl.as_secs().max(1) as i64,
                       "jti": jti})
            ),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.secret(4)),
        );
        lock(&self.tokens).insert(token.clone(), Instant::now() + ttl);
        token
    }

    /// Accepts a live login bearer or Sentinel token.
    pub(crate) fn check_bearer(&self, token: &str) -> Result<(), &'static str> {
        let now = Instant::now();
        if let Some(expires) = lock(&self.tokens).get(token) {
            return if *expires > now {
                Ok(())
            } else {
                Err("the access token has expired")
            };
        }
        match lock(&self.logins).values().find(|l| l.bearer == token) {
            Some(l) if l.expires > now => Ok(()),
            Some(_) => Err("the login session has expired"),
            None => Err("unknown bearer token"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_refresh_and_expire() {
        let s = Sessions::new(1);
        let a = s.login(Duration::from_millis(80));
        assert!(s.check_bearer(&a.bearer).is_ok());
        assert!(s.check_bearer("nope").is_err());
        assert!(
            s.refresh(&a.session_id, "wrong", Duration::from_millis(80))
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.refresh(&a.session_id, &a.csrf, Duration::from_millis(80))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(s.check_bearer(&a.bearer).is_ok(), "refreshed in time");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(s.check_bearer(&a.bearer).is_err());
        let t = s.issue_token("1", "app", Duration::from_secs(60));
        assert_eq!(t.split('.').count(), 3);
        assert!(s.check_bearer(&t).is_ok());
        assert!(s.logout(&a.session_id));
    }
}
