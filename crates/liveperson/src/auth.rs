//! How a client proves who it is (API notes §2): an API key (OAuth 1.0a), a user's login
//! (bearer token, kept alive before its session TTL runs out), OAuth 2.0 client credentials
//! (a Sentinel access token, cached until shortly before it expires), or a bearer token
//! obtained elsewhere.
//!
//! Secrets never leave this module in readable form: `Debug` redacts them, and the client's
//! errors name the request and the user or client id, never a password, secret or token.

use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use tokio::time::{Duration, Instant};

use crate::oauth1::ApiKey;

/// The credentials a [`crate::Client`] uses.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// An API key: every request carries an OAuth 1.0a HMAC-SHA1 signature over its query
    /// (§2.1). The recommended method for a batch worker.
    OAuth1(ApiKey),
    /// A user's login (§2.2): `POST https://{agentVep}/api/account/{id}/login?v=1.3` gives a
    /// bearer token. The session is refreshed (`POST .../refresh` with the `csrf` and the
    /// session cookie) before its TTL runs out, and logged in again if it was refused.
    Login { username: String, password: String },
    /// OAuth 2.0 client credentials (§2.3): `POST https://{sentinel}/sentinel/api/account/{id}
    /// /app/token?v=1.0` gives an access token (a JWT), cached until shortly before it expires.
    ClientCredentials {
        client_id: String,
        client_secret: String,
    },
    /// A bearer token obtained elsewhere, sent as it is and never renewed.
    Bearer(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::OAuth1(key) => f.debug_tuple("OAuth1").field(key).finish(),
            Auth::Login { username, .. } => f
                .debug_struct("Login")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Auth::ClientCredentials { client_id, .. } => f
                .debug_struct("ClientCredentials")
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
            Auth::Bearer(_) => f.debug_tuple("Bearer").field(&"<redacted>").finish(),
        }
    }
}

impl Auth {
    /// True when requests carry a token that can be renewed after a 401.
    pub(crate) fn renewable(&self) -> bool {
        matches!(self, Auth::Login { .. } | Auth::ClientCredentials { .. })
    }
}

/// A live token and when to renew it.
pub(crate) enum Session {
    Login {
        bearer: String,
        csrf: String,
        /// `Session_id=...` from the login answer's `Set-Cookie`, sent back on refresh.
        cookie: Option<String>,
        ttl: Duration,
        /// Refresh the session after this instant...
        refresh_at: Instant,
        /// ...and log in again after this one (the server will have dropped it).
        expires_at: Instant,
    },
    Sentinel {
        token: String,
        renew_at: Instant,
    },
}

impl Session {
    pub(crate) fn token(&self) -> &str {
        match self {
            Session::Login { bearer, .. } => bearer,
            Session::Sentinel { token, .. } => token,
        }
    }
}

/// When a login session of `ttl` should be refreshed: well before it lapses, and at least
/// every five minutes (LivePerson advises refreshing every 3–5 minutes).
pub(crate) fn refresh_interval(ttl: Duration) -> Duration {
    (ttl * 3 / 4).min(Duration::from_secs(300))
}

/// When a token living `lifetime` should be replaced: a tenth of its life (at most a minute)
/// before it expires.
pub(crate) fn renew_after(lifetime: Duration) -> Duration {
    lifetime.saturating_sub((lifetime / 10).min(Duration::from_secs(60)))
}

/// The parts of the login answer the client needs (§2.2).
#[derive(Deserialize)]
pub(crate) struct LoginAnswer {
    pub bearer: Option<String>,
    pub csrf: Option<String>,
    /// Milliseconds, as a string (`"28800000"`) or a number.
    #[serde(rename = "sessionTTl", alias = "sessionTTL", default)]
    pub session_ttl: crate::lenient::Int,
}

/// The token endpoint's answer (§2.3).
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: crate::lenient::Int,
}

#[derive(Deserialize)]
struct Claims {
    exp: Option<i64>,
    iat: Option<i64>,
}

/// The lifetime of a JWT from its own claims (`exp - iat`), so that the client's and the
/// server's clocks need not agree. `None` when the token is not a readable JWT.
pub(crate) fn jwt_lifetime(token: &str) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    let (exp, iat) = (claims.exp?, claims.iat?);
    (exp > iat).then(|| Duration::from_secs((exp - iat) as u64))
}

/// The `Session_id` cookie (name matched case-insensitively) from `Set-Cookie` values.
pub(crate) fn session_cookie<'a>(set_cookies: impl Iterator<Item = &'a str>) -> Option<String> {
    set_cookies.into_iter().find_map(|c| {
        let pair = c.split(';').next()?.trim();
        let (name, _) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("session_id")
            .then(|| pair.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_every_secret() {
        let shown = format!(
            "{:?} {:?} {:?}",
            Auth::Login {
                username: "agent.one".into(),
                password: "pa55word".into()
            },
            Auth::ClientCredentials {
                client_id: "my-app".into(),
                client_secret: "cl1ent-secret".into()
            },
            Auth::Bearer("tok3n".into())
        );
        assert!(shown.contains("agent.one") && shown.contains("my-app"));
        for secret in ["pa55word", "cl1ent-secret", "tok3n"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn jwt_lifetime_from_claims() {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.sig",
            enc(r#"{"alg":"RS256"}"#),
            enc(r#"{"iss":"Sentinel","iat":1000,"exp":4600}"#)
        );
        assert_eq!(jwt_lifetime(&token), Some(Duration::from_secs(3600)));
        assert_eq!(jwt_lifetime("not-a-jwt"), None);
    }

    #[test]
    fn renewal_times() {
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(
            renew_after(Duration::from_secs(2)),
            Duration::from_millis(1800)
        );
        assert_eq!(
            refresh_interval(Duration::from_secs(8 * 3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_interval(Duration::from_secs(2)),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn finds_the_session_cookie() {
        let headers = ["lang=en; Path=/", "Session_id=abc123; Path=/; HttpOnly"];
        assert_eq!(
            session_cookie(headers.into_iter()),
            Some("Session_id=abc123".into())
        );
        assert_eq!(session_cookie(["x=1"].into_iter()), None);
    }
}
