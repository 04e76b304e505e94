//! The HTTP client: Domain API discovery, OAuth 1.0a signing, retries, and paging a window of
//! Messaging Interactions search results to its end.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::oauth1::{self, ApiKey, Nonce};
use crate::page::parse_envelope;
use crate::window::Window;

/// LivePerson's public Domain API.
pub const DEFAULT_DOMAIN: &str = "https://api.liveperson.net";
/// Largest page the search accepts.
pub const MAX_PAGE_SIZE: u32 = 100;
/// `offset + limit` past which an Elasticsearch-backed search may refuse to page; windows with
/// more hits are split instead of paged deeper (API doc §3.5).
pub const DEFAULT_MAX_HITS_PER_WINDOW: u64 = 10_000;

/// Every node the MI search can return, so that nothing is left out of a drop (API doc §3.4:
/// sending the list means listing the defaults too).
pub const CONTENT_TO_RETRIEVE: &[&str] = &[
    "campaign",
    "messageRecords",
    "agentParticipants",
    "agentParticipantsLeave",
    "agentParticipantsActive",
    "consumerParticipants",
    "transfers",
    "interactions",
    "messageScores",
    "messageStatuses",
    "conversationSurveys",
    "coBrowseSessions",
    "summary",
    "sdes",
    "unAuthSdes",
    "monitoring",
    "dialogs",
    "responseTime",
    "skillChanges",
    "intents",
    "uniqueIntents",
    "latestAgentSurvey",
    "previouslySubmittedAgentSurveys",
];

/// What went wrong talking to LivePerson. Messages name the request, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid LivePerson domain {url:?}: {reason}")]
    Config { url: String, reason: String },
    #[error("{request}: HTTP {status}: {body}")]
    Status {
        request: String,
        status: u16,
        body: String,
    },
    #[error("{request}: {message}")]
    Transport { request: String, message: String },
    #[error("{request}: {reason}")]
    Response { request: String, reason: String },
    #[error("{request}: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        request: String,
        attempts: u32,
        last: String,
    },
}

impl Error {
    /// 429, 5xx, connection problems and unreadable bodies may succeed on another try.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            Error::Transport { .. } | Error::Response { .. } => true,
            Error::Config { .. } | Error::RetriesExhausted { .. } => false,
        }
    }
}

/// How failed requests are retried (vendor guidance, API doc §6).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First wait after a 429; doubles per attempt (LivePerson: at least 1 s).
    pub throttle_delay: Duration,
    /// Wait after a 5xx or connection error, times the attempt number (LivePerson: 5, 10, 15 s).
    pub server_error_delay: Duration,
    /// No single wait is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            throttle_delay: Duration::from_secs(1),
            server_error_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32, error: &Error, retry_after: Option<Duration>) -> Duration {
        let base = match error {
            Error::Status { status: 429, .. } => {
                self.throttle_delay * 2u32.saturating_pow(attempt.saturating_sub(1))
            }
            _ => self.server_error_delay * attempt,
        };
        // Jitter (up to +25%) keeps concurrent requests from retrying in lockstep.
        let unit = (uuid::Uuid::new_v4().as_u128() & 0xffff) as f64 / 65535.0;
        let jitter = base.mul_f64(0.25 * unit);
        (base + jitter)
            .max(retry_after.unwrap_or_default())
            .min(self.max_delay)
    }
}

/// Everything the client needs to reach one account.
#[derive(Clone)]
pub struct ClientConfig {
    /// Domain API base URL (`LP_DOMAIN`); its scheme is used for every service host.
    pub domain: String,
    pub account_id: String,
    pub api_key: ApiKey,
    /// The required `source` query parameter (at most 20 characters).
    pub source: String,
    pub page_size: u32,
    /// Page requests in flight at once.
    pub concurrency: usize,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub max_hits_per_window: u64,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("domain", &self.domain)
            .field("account_id", &self.account_id)
            .field("api_key", &self.api_key)
            .field("source", &self.source)
            .field("page_size", &self.page_size)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    pub fn new(domain: impl Into<String>, account_id: impl Into<String>, api_key: ApiKey) -> Self {
        ClientConfig {
            domain: domain.into(),
            account_id: account_id.into(),
            api_key,
            source: "lpdrop".into(),
            page_size: MAX_PAGE_SIZE,
            concurrency: 4,
            request_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            max_hits_per_window: DEFAULT_MAX_HITS_PER_WINDOW,
        }
    }
}

/// Scheme and authority of the Domain API, checked: https, or plain http on loopback only.
#[derive(Debug, Clone)]
struct Origin {
    scheme: &'static str,
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host:port` (or `[v6]:port`) and returns the host part.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            authority
        }
    })
}

/// A service authority must be a bare `host[:port]`: no scheme, path, user info or spaces.
fn valid_authority(a: &str) -> bool {
    !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

impl Origin {
    fn parse(domain: &str) -> Result<(Origin, String), Error> {
        let bad = |reason: &str| Error::Config {
            url: domain.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = domain
            .split_once("://")
            .ok_or_else(|| bad("expected http(s)://host[:port]"))?;
        let authority = rest.trim_end_matches('/');
        if !valid_authority(authority) {
            return Err(bad("expected http(s)://host[:port] with no path"));
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => "https",
            "http" if is_loopback_host(host_of(authority)) => "http",
            "http" => return Err(bad("plain http is allowed only on loopback; use https")),
            _ => return Err(bad("the scheme must be https (or http on loopback)")),
        };
        Ok((Origin { scheme }, authority.to_string()))
    }

    /// The base URL of a service host returned by the Domain API, under the same TLS rule.
    fn service_url(&self, authority: &str) -> Result<String, Error> {
        if !valid_authority(authority) {
            return Err(Error::Config {
                url: authority.to_string(),
                reason: "the Domain API returned a host that is not a bare host[:port]".into(),
            });
        }
        if self.scheme == "http" && !is_loopback_host(host_of(authority)) {
            return Err(Error::Config {
                url: authority.to_string(),
                reason: "plain http is allowed only on loopback; use an https domain".into(),
            });
        }
        Ok(format!("{}://{}", self.scheme, authority))
    }
}

/// Filters of a Messaging Interactions search beyond the time window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilters {
    pub skill_ids: Vec<i64>,
    pub status: Vec<String>,
}

/// One raw search page and the sub-window it answers.
#[derive(Debug, Clone)]
pub struct FetchedPage {
    pub window: Window,
    pub offset: u64,
    pub body: Bytes,
}

#[derive(Debug, Deserialize)]
struct DomainAnswer {
    #[serde(rename = "baseURI")]
    base_uri: String,
}

/// A connected client for one account: service hosts resolved, HTTP pool ready.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    msg_hist: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("msg_hist", &self.msg_hist)
            .finish()
    }
}

impl Client {
    /// Validates the domain and resolves the `msgHist` host through the Domain API.
    pub async fn connect(config: ClientConfig) -> Result<Client, Error> {
        if config.source.is_empty() || config.source.len() > 20 {
            return Err(Error::Config {
                url: config.domain.clone(),
                reason: format!(
                    "the source parameter must be 1 to 20 characters, got {:?}",
                    config.source
                ),
            });
        }
        let (origin, authority) = Origin::parse(&config.domain)?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("lpdrop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config {
                url: config.domain.clone(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        let domain_base = format!("{}://{}", origin.scheme, authority);
        let host = resolve_service(&http, &config, &domain_base, "msgHist").await?;
        let msg_hist = origin.service_url(&host)?;
        Ok(Client {
            http,
            config,
            msg_hist,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Base URL of the Messaging Interactions host, e.g. `https://va.msghist.liveperson.net`.
    pub fn msg_hist_url(&self) -> &str {
        &self.msg_hist
    }

    /// Fetches one search page, retrying what may succeed on another try.
    pub async fn search_page(
        &self,
        window: Window,
        filters: &SearchFilters,
        offset: u64,
    ) -> Result<Bytes, Error> {
        let url = format!(
            "{}/messaging_history/api/account/{}/conversations/search",
            self.msg_hist, self.config.account_id
        );
        let query: Vec<(String, String)> = vec![
            ("offset".into(), offset.to_string()),
            ("limit".into(), self.config.page_size.to_string()),
            ("sort".into(), "start:asc".into()),
            ("v".into(), "2".into()),
            ("source".into(), self.config.source.clone()),
        ];
        let mut body = json!({
            // Bounds are inclusive on the API side: ask up to the last millisecond of the window.
            "start": {"from": window.from_ms(), "to": window.to_ms() - 1},
            "contentToRetrieve": CONTENT_TO_RETRIEVE,
        });
        if !filters.skill_ids.is_empty() {
            body["skillIds"] = json!(filters.skill_ids);
        }
        if !filters.status.is_empty() {
            body["status"] = json!(filters.status);
        }
        let body = body.to_string();
        // The query is encoded exactly as it is signed (RFC 3986), so the two cannot disagree.
        let full_url = format!("{url}?{}", encode_query(&query));
        let what = format!("MI search {window} offset {offset}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let header = oauth1::authorization_header(
                &self.config.api_key,
                "POST",
                &url,
                &query,
                &Nonce::fresh(),
            );
            let sent = self
                .http
                .post(&full_url)
                .header("Authorization", header)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body(body.clone())
                .send()
                .await;
            let (error, retry_after) = match sent {
                Err(e) => (transport_error(&what, e), None),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry_after(&resp);
                    match resp.bytes().await {
                        Err(e) => (transport_error(&what, e), retry_after),
                        Ok(bytes) if status == 200 || status == 204 => match check_page(&bytes) {
                            Ok(()) => return Ok(bytes),
                            Err(reason) => (
                                Error::Response {
                                    request: what.clone(),
                                    reason,
                                },
                                None,
                            ),
                        },
                        Ok(bytes) => (
                            Error::Status {
                                request: what.clone(),
                                status,
                                body: snippet(&bytes),
                            },
                            retry_after,
                        ),
                    }
                }
            };
            if !error.is_retryable() {
                return Err(error);
            }
            if attempt >= self.config.retry.max_attempts {
                return Err(Error::RetriesExhausted {
                    request: what,
                    attempts: attempt,
                    last: error.to_string(),
                });
            }
            tokio::time::sleep(self.config.retry.delay(attempt, &error, retry_after)).await;
        }
    }

    /// Fetches every page of `window` and sends them to `out` in order of sub-window and offset.
    ///
    /// The window is cut into sub-windows of at most `max_span_ms`; a sub-window with more hits
    /// than `max_hits_per_window` is halved until it fits, so paging never goes too deep.
    pub async fn fetch_window(
        &self,
        window: Window,
        filters: &SearchFilters,
        max_span_ms: i64,
        out: mpsc::Sender<FetchedPage>,
    ) -> Result<FetchStats, Error> {
        let mut stats = FetchStats::default();
        let mut todo: Vec<Window> = window.split(max_span_ms);
        todo.reverse();
        while let Some(sub) = todo.pop() {
            let first = self.search_page(sub, filters, 0).await?;
            let count = parse_envelope(&first)
                .ok()
                .and_then(|e| e.metadata.count)
                .unwrap_or(0);
            if count > self.config.max_hits_per_window
                && let Some((a, b)) = sub.halve()
            {
                todo.push(b);
                todo.push(a);
                continue;
            }
            stats.windows += 1;
            stats.reported_hits += count;
            stats.pages += 1;
            if out
                .send(FetchedPage {
                    window: sub,
                    offset: 0,
                    body: first,
                })
                .await
                .is_err()
            {
                return Ok(stats); // the consumer stopped; it reports its own error
            }
            let page = u64::from(self.config.page_size);
            let offsets: Vec<u64> = (1..count.div_ceil(page)).map(|i| i * page).collect();
            let mut pages = stream::iter(offsets)
                .map(|offset| async move {
                    self.search_page(sub, filters, offset)
                        .await
                        .map(|body| FetchedPage {
                            window: sub,
                            offset,
                            body,
                        })
                })
                .buffered(self.config.concurrency.max(1));
            while let Some(page) = pages.try_next().await? {
                stats.pages += 1;
                if out.send(page).await.is_err() {
                    return Ok(stats);
                }
            }
        }
        Ok(stats)
    }
}

/// Counts from fetching one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub windows: u64,
    pub pages: u64,
    pub reported_hits: u64,
}

async fn resolve_service(
    http: &reqwest::Client,
    config: &ClientConfig,
    domain_base: &str,
    service: &str,
) -> Result<String, Error> {
    let url = format!(
        "{domain_base}/api/account/{}/service/{service}/baseURI.json",
        config.account_id
    );
    let what = format!(
        "Domain API lookup of {service} for account {}",
        config.account_id
    );
    let resp = http
        .get(format!("{url}?version=1.0"))
        .send()
        .await
        .map_err(|e| transport_error(&what, e))?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| transport_error(&what, e))?;
    if status != 200 {
        return Err(Error::Status {
            request: what,
            status,
            body: snippet(&bytes),
        });
    }
    let answer: DomainAnswer = serde_json::from_slice(&bytes).map_err(|e| Error::Response {
        request: what.clone(),
        reason: format!("unexpected answer ({e}): {}", snippet(&bytes)),
    })?;
    Ok(answer.base_uri)
}

/// A 200 whose body is cut short or reports failed shards is worth another try.
fn check_page(body: &[u8]) -> Result<(), String> {
    let envelope = parse_envelope(body)?;
    if envelope.metadata.is_partial() {
        return Err("the page reports partial shard results".into());
    }
    Ok(())
}

fn encode_query(query: &[(String, String)]) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{}={}", oauth1::pct(k), oauth1::pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn transport_error(what: &str, e: reqwest::Error) -> Error {
    // reqwest's message includes the URL, which holds no secrets (they travel in a header).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::Transport {
        request: what.to_string(),
        message,
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let value = resp.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The first few hundred characters of a body, for error messages.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(Origin::parse("http://127.0.0.1:8080").is_ok());
        assert!(Origin::parse("http://localhost:8080/").is_ok());
        assert!(Origin::parse("http://[::1]:8080").is_ok());
        assert!(Origin::parse("https://api.liveperson.net").is_ok());
        let err = Origin::parse("http://api.liveperson.net").unwrap_err();
        assert!(err.to_string().contains("only on loopback"), "{err}");
        assert!(Origin::parse("http://10.0.0.1:80").is_err());
        assert!(Origin::parse("ftp://127.0.0.1").is_err());
        assert!(Origin::parse("https://host/path").is_err());
        assert!(Origin::parse("api.liveperson.net").is_err());
    }

    #[test]
    fn service_hosts_follow_the_domain_scheme_and_rule() {
        let (https, _) = Origin::parse("https://api.liveperson.net").unwrap();
        assert_eq!(
            https.service_url("va.msghist.liveperson.net").unwrap(),
            "https://va.msghist.liveperson.net"
        );
        let (http, _) = Origin::parse("http://127.0.0.1:9").unwrap();
        assert_eq!(
            http.service_url("127.0.0.1:4000").unwrap(),
            "http://127.0.0.1:4000"
        );
        // An http domain must not lead the client to a non-loopback host in the clear.
        assert!(http.service_url("va.msghist.liveperson.net").is_err());
        assert!(https.service_url("evil.com/x?y").is_err());
    }

    #[test]
    fn retry_delays_grow_and_respect_the_cap() {
        let p = RetryPolicy::default();
        let throttled = Error::Status {
            request: String::new(),
            status: 429,
            body: String::new(),
        };
        let d1 = p.delay(1, &throttled, None);
        let d3 = p.delay(3, &throttled, None);
        assert!(d1 >= Duration::from_secs(1) && d1 <= Duration::from_millis(1250));
        assert!(d3 >= Duration::from_secs(4));
        assert!(p.delay(20, &throttled, None) <= p.max_delay);
        assert!(p.delay(1, &throttled, Some(Duration::from_secs(7))) >= Duration::from_secs(7));
        let server = Error::Status {
            request: String::new(),
            status: 503,
            body: String::new(),
        };
        assert!(p.delay(2, &server, None) >= Duration::from_secs(10));
        let bad_request = Error::Status {
            request: String::new(),
            status: 400,
            body: String::new(),
        };
        assert!(!bad_request.is_retryable() && throttled.is_retryable() && server.is_retryable());
    }
}
