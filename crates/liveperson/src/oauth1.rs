//! OAuth 1.0a request signing with HMAC-SHA1 (RFC 5849), the way LivePerson API keys work.
//!
//! LivePerson signs the protocol parameters plus every query-string parameter; the JSON body is
//! never signed (it is not form-encoded) and no `oauth_body_hash` is sent.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;

/// RFC 3986 unreserved characters stay as they are; everything else is escaped.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes per RFC 3986 (space becomes `%20`, never `+`).
pub fn pct(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// The four values of a LivePerson API key. `Debug` never shows the secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKey {
    pub app_key: String,
    pub app_secret: String,
    pub access_token: String,
    pub access_token_secret: String,
}

/// `APP_KEY:APP_SECRET:ACCESS_TOKEN:TOKEN_SECRET`, the four values in one setting (the
/// emulator's `--api-key`). The error never repeats the text: it holds secrets.
impl std::str::FromStr for ApiKey {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split(':').collect();
        let [app_key, app_secret, access_token, access_token_secret] = parts[..] else {
            return Err(format!(
                "an API key is APP_KEY:APP_SECRET:ACCESS_TOKEN:TOKEN_SECRET (4 parts, not {})",
                parts.len()
            ));
        };
        Ok(ApiKey {
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            access_token: access_token.into(),
            access_token_secret: access_token_secret.into(),
        })
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("app_key", &self.app_key)
            .field("app_secret", &"<redacted>")
            .field("access_token", &"<redacted>")
            .field("access_token_secret", &"<redacted>")
            .finish()
    }
}

/// The per-request values that make a signature unique.
#[derive(Debug, Clone)]
pub struct Nonce {
    pub nonce: String,
    pub timestamp: i64,
}

impl Nonce {
    /// A fresh random nonce and the current Unix time in seconds.
    pub fn fresh() -> Self {
        Nonce {
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            timestamp: chrono::Utc::now().timestamp(),
        }
    }
}

/// The signature base string (RFC 5849 §3.4.1).
///
/// `base_url` is scheme, host, optional non-default port and path, without the query;
/// `params` are all query parameters plus the `oauth_*` protocol parameters (not the signature).
pub fn base_string(method: &str, base_url: &str, params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params.iter().map(|(k, v)| (pct(k), pct(v))).collect();
    encoded.sort();
    let normalised = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        pct(&normalise_base_url(base_url)),
        pct(&normalised)
    )
}

/// Lower-cases scheme and host and drops a default port, as the base string requires.
fn normalise_base_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    if !default_port.is_empty() && authority.ends_with(default_port) {
        authority.truncate(authority.len() - default_port.len());
    }
    format!("{scheme}://{authority}{path}")
}

/// HMAC-SHA1 of the base string with `pct(consumer_secret)&pct(token_secret)`, base64-encoded.
pub fn sign(base_string: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!("{}&{}", pct(consumer_secret), pct(token_secret));
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(base_string.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The protocol parameters of one request, without the signature.
fn protocol_params(key: &ApiKey, nonce: &Nonce) -> Vec<(String, String)> {
    vec![
        ("oauth_consumer_key".into(), key.app_key.clone()),
        ("oauth_nonce".into(), nonce.nonce.clone()),
        ("oauth_signature_method".into(), "HMAC-SHA1".into()),
        ("oauth_timestamp".into(), nonce.timestamp.to_string()),
        ("oauth_token".into(), key.access_token.clone()),
        ("oauth_version".into(), "1.0".into()),
    ]
}

/// The `Authorization` header value for a request.
///
/// `query` holds the decoded query parameters exactly as they will be sent.
pub fn authorization_header(
    key: &ApiKey,
    method: &str,
    base_url: &str,
    query: &[(String, String)],
    nonce: &Nonce,
) -> String {
    let oauth = protocol_params(key, nonce);
    let mut all = oauth.clone();
    all.extend_from_slice(query);
    let signature = sign(
        &base_string(method, base_url, &all),
        &key.app_secret,
        &key.access_token_secret,
    );
    let mut parts: Vec<String> = oauth
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", pct(k), pct(v)))
        .collect();
    parts.push(format!("oauth_signature=\"{}\"", pct(&signature)));
    format!("OAuth {}", parts.join(", "))
}

/// Parses an `Authorization: OAuth k="v", ...` header into decoded pairs.
///
/// Returns `None` when the header is not an OAuth header or a pair is malformed.
pub fn parse_authorization_header(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim().strip_prefix("OAuth ")?;
    let mut out = Vec::new();
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=')?;
        let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        out.push((decode(k.trim())?, decode(v)?));
    }
    Some(out)
}

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing or malformed OAuth Authorization header")]
    Malformed,
    #[error("missing OAuth parameter {0}")]
    Missing(&'static str),
    #[error("unsupported signature method {0}")]
    Method(String),
    #[error("unknown consumer key or token")]
    UnknownKey,
    #[error("signature does not match")]
    BadSignature,
}

/// Checks a request's OAuth 1.0a signature against a known key (the server side).
pub fn verify(
    key: &ApiKey,
    header: &str,
    method: &str,
    base_url: &str,
    query: &[(String, String)],
) -> Result<(), VerifyError> {
    let pairs = parse_authorization_header(header).ok_or(VerifyError::Malformed)?;
    let get = |name: &'static str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or(VerifyError::Missing(name))
    };
    let method_name = get("oauth_signature_method")?;
    if method_name != "HMAC-SHA1" {
        return Err(VerifyError::Method(method_name));
    }
    if get("oauth_consumer_key")? != key.app_key || get("oauth_token")? != key.access_token {
        return Err(VerifyError::UnknownKey);
    }
    let given = get("oauth_signature")?;
    let mut all: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| k != "oauth_signature" && k != "realm")
        .collect();
    all.extend_from_slice(query);
    let expected = sign(
        &base_string(method, base_url, &all),
        &key.app_secret,
        &key.access_token_secret,
    );
    if expected == given {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// The worked example of RFC 5849 §3.4.1 / §3.4.2 (the "photos" request, HMAC-SHA1).
    #[test]
    fn rfc5849_example_signature() {
        let params = pairs(&[
            ("b5", "=%3D"),
            ("a3", "a"),
            ("c@", ""),
            ("a2", "r b"),
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
            ("c2", ""),
            ("a3", "2 q"),
        ]);
        let base = base_string("post", "HTTP://Example.com:80/request", &params);
        assert_eq!(
            base,
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
             %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_\
             key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m\
             ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk\
             9d7dh3k39sjv7"
        );
    }

    /// The widely published Twitter example (consumer and token secrets known).
    #[test]
    fn twitter_example_signature() {
        let params = pairs(&[
            (
                "status",
                "Hello Ladies + Gentlemen, a signed OAuth request!",
            ),
            ("include_entities", "true"),
            ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
            ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            (
                "oauth_token",
                "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            ),
            ("oauth_version", "1.0"),
        ]);
        let base = base_string(
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            &params,
        );
        let sig = sign(
            &base,
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        );
        assert_eq!(sig, "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
    }

    fn key() -> ApiKey {
        ApiKey {
            app_key: "app".into(),
            app_secret: "s3cret".into(),
            access_token: "tok".into(),
            access_token_secret: "tok-s3cret".into(),
        }
    }

    #[test]
    fn header_round_trips_through_verify() {
        let query = pairs(&[("offset", "0"), ("limit", "100"), ("source", "LP drop+ü")]);
        let url = "http://127.0.0.1:8080/messaging_history/api/account/1/conversations/search";
        let header = authorization_header(&key(), "POST", url, &query, &Nonce::fresh());
        assert!(header.starts_with("OAuth "));
        assert_eq!(verify(&key(), &header, "POST", url, &query), Ok(()));
        // A changed query parameter breaks the signature: the query is signed.
        let tampered = pairs(&[("offset", "100"), ("limit", "100"), ("source", "LP drop+ü")]);
        assert_eq!(
            verify(&key(), &header, "POST", url, &tampered),
            Err(VerifyError::BadSignature)
        );
        let mut other = key();
        other.app_secret = "different".into();
        assert_eq!(
            verify(&other, &header, "POST", url, &query),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let shown = format!("{:?}", key());
        assert!(!shown.contains("s3cret") && !shown.contains("\"tok\""));
        assert!(shown.contains("<redacted>"));
    }
}
