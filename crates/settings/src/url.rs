//! URLs shown to people and the rule for plain http: one redactor, one loopback check.

/// Query parameters whose values are secrets wherever they appear (Postgres accepts
/// `password` and `sslpassword`; SAS tokens carry `sig`).
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token", "sig", "key"]
        .iter()
        .any(|s| name.contains(s))
}

const MASK: &str = "***";

/// A URL fit for messages, logs and `config check`: the password of its user info and the
/// values of secret query parameters replaced by `***`. Text that is not a URL is returned
/// as it is (a SQLite path, a bucket name).
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return redact_unparsed(text);
    };
    if url.cannot_be_a_base() {
        return text.to_string();
    }
    let mut changed = false;
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
        changed = true;
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if pairs.iter().any(|(k, _)| is_secret_param(k)) {
            let mut query = url.query_pairs_mut();
            query.clear();
            for (k, v) in &pairs {
                query.append_pair(k, if is_secret_param(k) { MASK } else { v });
            }
            drop(query);
            changed = true;
        }
    }
    if !changed {
        return text.to_string();
    }
    // The url crate percent-encodes `*`-free masks as they are; keep `***` readable.
    url.to_string().replace("%2A%2A%2A", MASK)
}

/// For text the URL parser refuses (a malformed URL in an error message): mask everything
/// between `://` and the last `@` after the first `:`, and every secret query value, by hand.
fn redact_unparsed(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let (authority_and_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}://");
    match authority_and_path.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                out.push_str(&format!("{user}:{MASK}@{host}"));
            } else {
                out.push_str(&format!("{userinfo}@{host}"));
            }
        }
        None => out.push_str(authority_and_path),
    }
    if let Some(query) = query {
        let parts: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if is_secret_param(k) => format!("{k}={MASK}"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&parts.join("&"));
    }
    out
}

/// True for `localhost` and loopback addresses (`127.0.0.0/8`, `::1`), with or without the
/// brackets of an IPv6 literal.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// True when `text` is a URL whose host is loopback.
pub fn is_loopback_url(text: &str) -> bool {
    url::Url::parse(text)
        .ok()
        .and_then(|u| u.host_str().map(is_loopback_host))
        .unwrap_or(false)
}

/// Checks an endpoint: https, or plain http to a loopback host only (an emulator or a test
/// server). `what` names the setting in the error.
pub fn require_tls_unless_loopback(text: &str, what: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("{what}: {} is not a URL ({e})", redact_url(text)))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if url.host_str().is_some_and(is_loopback_host) => Ok(url),
        "http" => Err(format!(
            "{what}: {} must use https (plain http is allowed only on loopback)",
            redact_url(text)
        )),
        other => Err(format!(
            "{what}: {} has scheme {other:?}; use https (or http on loopback)",
            redact_url(text)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_wherever_the_url_carries_them() {
        for (text, want) in [
            (
                "postgres://u:pw@db.example.com/q",
                "postgres://u:***@db.example.com/q",
            ),
            (
                "postgres://u@db.example.com/q?password=pw&sslmode=require",
                "postgres://u@db.example.com/q?password=***&sslmode=require",
            ),
            (
                "postgres://db.example.com/q?sslpassword=pw",
                "postgres://db.example.com/q?sslpassword=***",
            ),
            (
                "https://acct.blob.core.windows.net/c?sv=2022&sig=abc%2Fdef",
                "https://acct.blob.core.windows.net/c?sv=2022&sig=***",
            ),
            ("./lpdrop.db", "./lpdrop.db"),
            ("postgres://u@db/q", "postgres://u@db/q"),
        ] {
            let shown = redact_url(text);
            assert_eq!(shown, want, "{text}");
            assert!(!shown.contains("pw") || !text.contains("pw@") && !text.contains("=pw"));
        }
    }

    #[test]
    fn malformed_urls_are_masked_too() {
        let shown = redact_url("postgres://u:pw@[bad/q?password=pw2");
        assert!(!shown.contains("pw@") && !shown.contains("pw2"), "{shown}");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for ok in [
            "https://api.liveperson.net",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9000",
        ] {
            assert!(require_tls_unless_loopback(ok, "x").is_ok(), "{ok}");
        }
        for bad in ["http://example.com", "http://10.0.0.1", "ftp://127.0.0.1"] {
            assert!(require_tls_unless_loopback(bad, "x").is_err(), "{bad}");
        }
        assert!(is_loopback_host("127.0.0.2") && is_loopback_host("[::1]"));
        assert!(!is_loopback_host("localhost.example.com"));
    }
}
