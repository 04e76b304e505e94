//! A fault-injecting HTTP/1.1 reverse proxy for S3 tests.
//!
//! [`FaultProxy::start`] listens on `127.0.0.1:0` and forwards every request to an upstream S3
//! endpoint (moto) over plain HTTP/1.1. Requests that match a [`Rule`] fail, with the rule's
//! probability, in one of the ways a real S3 endpoint or network fails ([`Fault`]): a
//! `500 InternalError` or `503 SlowDown` with S3's XML error body, a connection reset before the
//! request reaches S3, or a reset *after* S3 has executed the request, so the write happened but
//! its answer is lost (the case a retry can trip over).
//!
//! The proxy runs its own Tokio runtime on a background thread, so both synchronous tests and
//! tests that drive a child process (the real `lpdrop` binary, via `AWS_ENDPOINT_URL`) can use
//! it. It is stopped when dropped.
//!
//! Decisions are deterministic: whether the `n`-th request matched by rule `r` fails, and how,
//! is a pure function of `(seed, r, n)`. With concurrent requests (parallel part uploads) the
//! order in which requests reach a rule can vary, so the same seed gives the same fault
//! pattern over the sequence of matched requests, not necessarily over the same objects.
//!
//! HTTP handling is deliberately small and complete for what S3 clients send: requests and
//! responses are framed by `Content-Length`, `Transfer-Encoding: chunked` (chunk framing and
//! trailers forwarded byte for byte) or, for responses only, by the end of the connection.
//! `aws-chunked` is a content encoding inside that framing, so it passes through untouched.
//! Connections are kept alive as the client and upstream ask. `Expect: 100-continue` is
//! answered by the proxy itself (it needs the whole request before deciding on a fault) and
//! not forwarded. Addressing is path-style (`/bucket/key`), which is what the SDK uses with a
//! custom endpoint and `force_path_style`. Bodies are buffered in memory: fine for test
//! objects and parts of a few MiB.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The S3 operations a rule can target. Everything else always passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    /// `PUT /bucket/key` (no sub-resource other than the SDK's `x-id=PutObject`).
    PutObject,
    /// `PUT /bucket/key?partNumber=N&uploadId=U`.
    UploadPart,
    /// `POST /bucket/key?uploadId=U`.
    CompleteMultipartUpload,
    /// Azure Put Block: `PUT /account/container/blob?comp=block&blockid=B`.
    PutBlock,
    /// Azure Put Block List: `PUT /account/container/blob?comp=blocklist`.
    PutBlockList,
    /// An AWS Glue request (`X-Amz-Target: AWSGlue.<Operation>`); a rule's `key_contains`
    /// matches the operation, e.g. `BatchCreatePartition`.
    Glue,
    /// Anything else (listing, HEAD, GET, CreateMultipartUpload, abort, ...).
    Other,
}

impl RequestKind {
    /// The kinds a rule may target, for reports.
    pub const FAULTABLE: [RequestKind; 3] = [
        RequestKind::PutObject,
        RequestKind::UploadPart,
        RequestKind::CompleteMultipartUpload,
    ];
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestKind::PutObject => "PutObject",
            RequestKind::UploadPart => "UploadPart",
            RequestKind::CompleteMultipartUpload => "CompleteMultipartUpload",
            RequestKind::PutBlock => "PutBlock",
            RequestKind::PutBlockList => "PutBlockList",
            RequestKind::Glue => "Glue",
            RequestKind::Other => "other",
        })
    }
}

/// What goes wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// `500 InternalError` with S3's XML error body; the request never reaches upstream.
    InternalError,
    /// `503 SlowDown` with S3's XML error body; the request never reaches upstream.
    SlowDown,
    /// The whole request is read, then the connection is reset (RST) without an answer; the
    /// request never reaches upstream.
    Reset,
    /// The request is forwarded and upstream answers (so a write has happened), then the
    /// client's connection is reset and the answer is lost.
    ResetAfterForward,
    /// Glue's `AccessDeniedException` (HTTP 400, JSON body), as a role without the Glue
    /// permissions gets; the request never reaches upstream. Not in [`Fault::ALL`] (S3's).
    AccessDenied,
}

impl Fault {
    pub const ALL: [Fault; 4] = [
        Fault::InternalError,
        Fault::SlowDown,
        Fault::Reset,
        Fault::ResetAfterForward,
    ];
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fault::InternalError => "500 InternalError",
            Fault::SlowDown => "503 SlowDown",
            Fault::Reset => "reset",
            Fault::ResetAfterForward => "reset after forwarding",
            Fault::AccessDenied => "400 AccessDeniedException",
        })
    }
}

/// Requests of `kind` (and, optionally, whose path contains `key_contains`) fail with
/// `probability`, with one of `faults` chosen evenly. The first matching rule that still has
/// faults to give ([`Rule::at_most`]) decides, so rules can be chained: the first attempt fails
/// one way, the following ones another.
#[derive(Debug, Clone)]
pub struct Rule {
    pub kind: RequestKind,
    pub probability: f64,
    pub faults: Vec<Fault>,
    pub key_contains: Option<String>,
    /// Stop injecting after this many faults (e.g. `1`: fail the first attempt, let the
    /// client's retry through).
    pub max_faults: Option<u64>,
}

impl Rule {
    pub fn new(kind: RequestKind, probability: f64, faults: &[Fault]) -> Rule {
        Rule {
            kind,
            probability,
            faults: faults.to_vec(),
            key_contains: None,
            max_faults: None,
        }
    }

    /// At most `n` faults from this rule; later matching requests pass through.
    pub fn at_most(mut self, n: u64) -> Rule {
        self.max_faults = Some(n);
        self
    }

    /// Only requests whose (still percent-encoded) path contains `part`.
    pub fn key_contains(mut self, part: &str) -> Rule {
        self.key_contains = Some(part.to_string());
        self
    }

    fn matches(&self, kind: RequestKind, path: &str) -> bool {
        self.kind == kind
            && self
                .key_contains
                .as_deref()
                .is_none_or(|part| path.contains(part))
    }
}

/// One injected fault, for reports and for tying a failure to the request that caused it.
#[derive(Debug, Clone)]
pub struct Injection {
    /// The proxy-wide sequence number of the request (0-based, in arrival order).
    pub request: u64,
    pub kind: RequestKind,
    pub fault: Fault,
    pub method: String,
    /// Path and query as the client sent them.
    pub target: String,
    /// With [`Fault::ResetAfterForward`]: the status upstream answered (the client never saw it).
    pub upstream_status: Option<u16>,
}

/// Counts since the proxy started.
#[derive(Debug, Clone, Default)]
pub struct FaultStats {
    /// Every request read from a client, faulted or not.
    pub requests: u64,
    pub requests_by_kind: BTreeMap<RequestKind, u64>,
    pub faults: BTreeMap<(RequestKind, Fault), u64>,
    /// Requests the proxy itself could not forward (upstream unreachable or malformed
    /// answers); answered `502`. Non-zero means the test measured the proxy, not lpdrop.
    pub proxy_errors: u64,
}

impl FaultStats {
    pub fn requests_of(&self, kind: RequestKind) -> u64 {
        self.requests_by_kind.get(&kind).copied().unwrap_or(0)
    }

    pub fn faults_of(&self, kind: RequestKind) -> u64 {
        self.faults
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn faults_of_type(&self, fault: Fault) -> u64 {
        self.faults
            .iter()
            .filter(|((_, f), _)| *f == fault)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Adds another proxy's counts (tests that start one proxy per run report the sum).
    pub fn add(&mut self, other: &FaultStats) {
        self.requests += other.requests;
        for (k, n) in &other.requests_by_kind {
            *self.requests_by_kind.entry(*k).or_default() += n;
        }
        for (k, n) in &other.faults {
            *self.faults.entry(*k).or_default() += n;
        }
        self.proxy_errors += other.proxy_errors;
    }
}

impl fmt::Display for FaultStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests, {} faults injected",
            self.requests,
            self.total_faults()
        )?;
        for kind in RequestKind::FAULTABLE {
            write!(
                f,
                "; {kind}: {} requests, {} faults (",
                self.requests_of(kind),
                self.faults_of(kind)
            )?;
            let by_fault: Vec<String> = Fault::ALL
                .iter()
                .map(|fault| {
                    let n = self.faults.get(&(kind, *fault)).copied().unwrap_or(0);
                    format!("{fault}: {n}")
                })
                .collect();
            write!(f, "{})", by_fault.join(", "))?;
        }
        if self.proxy_errors > 0 {
            write!(f, "; {} proxy errors", self.proxy_errors)?;
        }
        Ok(())
    }
}

/// The proxy. Stops (and drops every connection) when dropped.
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://host:port`, e.g. [`crate::Moto::url`]).
    pub fn start(upstream: &str, seed: u64, rules: Vec<Rule>) -> FaultProxy {
        let authority = upstream
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the fault proxy forwards to http:// only, not {upstream}"))
            .trim_end_matches('/');
        let upstream: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(authority)
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve the upstream {authority}"));
        for rule in &rules {
            assert!(
                (0.0..=1.0).contains(&rule.probability) && !rule.faults.is_empty(),
                "a rule needs a probability in [0, 1] and at least one fault: {rule:?}"
            );
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        // Tokio's listener takes a non-blocking std listener.
        listener.set_nonblocking(true).expect("non-blocking");
        let shared = Arc::new(Shared {
            seed,
            rules,
            upstream,
            state: Mutex::new(State {
                matched: Vec::new(),
                injected: Vec::new(),
                stats: FaultStats::default(),
                log: Vec::new(),
            }),
        });
        let (tx, rx) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fault proxy runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        _ = accept_loop(listener, serving) => {}
                        _ = rx => {}
                    }
                });
                // Connection tasks only do socket I/O: no need to wait for them.
                runtime.shutdown_background();
            })
            .expect("spawn the fault proxy thread");
        FaultProxy {
            url,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:port`, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn stats(&self) -> FaultStats {
        self.shared.lock().stats.clone()
    }

    /// Every injected fault so far, in order.
    pub fn injections(&self) -> Vec<Injection> {
        self.shared.lock().log.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Shared {
    seed: u64,
    rules: Vec<Rule>,
    upstream: SocketAddr,
    state: Mutex<State>,
}

struct State {
    /// Requests matched so far, per rule: the `n` of the decision.
    matched: Vec<u64>,
    /// Faults injected so far, per rule (for [`Rule::max_faults`]).
    injected: Vec<u64>,
    stats: FaultStats,
    log: Vec<Injection>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking connection task must not hide the counts from the test.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the request and decides its fate. Returns its sequence number too.
    fn decide(&self, kind: RequestKind, path: &str) -> (u64, Option<Fault>) {
        let mut state = self.lock();
        let seq = state.stats.requests;
        state.stats.requests += 1;
        *state.stats.requests_by_kind.entry(kind).or_default() += 1;
        if state.matched.len() < self.rules.len() {
            state.matched.resize(self.rules.len(), 0);
            state.injected.resize(self.rules.len(), 0);
        }
        let spent = |r: usize| {
            self.rules[r]
                .max_faults
                .is_some_and(|max| state.injected[r] >= max)
        };
        let matching = |r: &usize| self.rules[*r].matches(kind, path);
        let Some(r) = (0..self.rules.len())
            .filter(matching)
            .find(|&r| !spent(r))
            .or_else(|| (0..self.rules.len()).find(matching))
        else {
            return (seq, None);
        };
        let n = state.matched[r];
        state.matched[r] += 1;
        let rule = &self.rules[r];
        let h = mix(self.seed ^ mix(((r as u64) << 32) ^ mix(n)));
        // The top 53 bits as a uniform number in [0, 1).
        let unit = (h >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= rule.probability || rule.max_faults.is_some_and(|max| state.injected[r] >= max) {
            return (seq, None);
        }
        state.injected[r] += 1;
        let fault = rule.faults[(mix(h) % rule.faults.len() as u64) as usize];
        (seq, Some(fault))
    }

    fn record(&self, injection: Injection) {
        let mut state = self.lock();
        *state
            .stats
            .faults
            .entry((injection.kind, injection.fault))
            .or_default() += 1;
        state.log.push(injection);
    }

    fn proxy_error(&self) {
        self.lock().stats.proxy_errors += 1;
    }
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash, enough for test decisions.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_client(stream, shared.clone()));
            }
            // Out of file descriptors and the like: keep serving the connections we have.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

/// Largest request or response head accepted (S3 heads are a few KiB).
const MAX_HEAD: usize = 64 << 10;

/// A parsed message head, keeping the raw header lines so they are forwarded unchanged.
struct Head {
    /// Request: method, target, version. Response: version, status, reason.
    start: [String; 3],
    /// Raw lines (with their `\r\n`), after the start line and before the empty line.
    lines: Vec<Vec<u8>>,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header (Connection, Transfer-Encoding, ...) lists `token`.
    fn lists(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn chunked(&self) -> bool {
        // Chunked must be the last transfer coding when present (RFC 9112 §6.1).
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
            .flat_map(|(_, v)| v.split(','))
            .last()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
    }

    fn content_length(&self) -> io::Result<Option<u64>> {
        self.header("content-length")
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| bad(format!("bad Content-Length {v:?}")))
            })
            .transpose()
    }

    /// Whether the connection ends after this message (RFC 9112 §9.3).
    fn closes(&self, version: &str) -> bool {
        self.lists("connection", "close")
            || (version.eq_ignore_ascii_case("HTTP/1.0") && !self.lists("connection", "keep-alive"))
    }
}

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads one line (up to `\n`) into `out`, bounded by what remains of [`MAX_HEAD`].
async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    out: &mut Vec<u8>,
    budget: &mut usize,
) -> io::Result<usize> {
    let n = (&mut *r)
        .take(*budget as u64 + 1)
        .read_until(b'\n', out)
        .await?;
    if n > *budget {
        return Err(bad("message head too large".into()));
    }
    *budget -= n;
    Ok(n)
}

/// Reads a message head. `Ok(None)` on a clean end of stream before its first byte.
async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<Head>> {
    let mut budget = MAX_HEAD;
    let mut line = Vec::new();
    // Robustness (RFC 9112 §2.2): ignore empty lines before a request line.
    loop {
        line.clear();
        if read_line(r, &mut line, &mut budget).await? == 0 {
            return Ok(None);
        }
        if line != b"\r\n" && line != b"\n" {
            break;
        }
    }
    let text = std::str::from_utf8(&line).map_err(|_| bad("non-UTF-8 start line".into()))?;
    let mut parts = text.trim_end().splitn(3, ' ');
    let start = [
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    ];
    if start[1].is_empty() {
        return Err(bad(format!("bad start line {text:?}")));
    }
    let mut lines = Vec::new();
    let mut headers = Vec::new();
    loop {
        let mut line = Vec::new();
        if read_line(r, &mut line, &mut budget).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {text:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
        lines.push(line);
    }
    Ok(Some(Head {
        start,
        lines,
        headers,
    }))
}

/// Reads a body framed by `head` into `out`, byte for byte (chunk framing and trailers
/// included). `until_eof`: no framing, the body ends with the connection (responses only).
async fn read_body<R: AsyncBufRead + Unpin>(
    r: &mut R,
    head: &Head,
    until_eof: bool,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    if head.chunked() {
        loop {
            let mut budget = MAX_HEAD;
            let start = out.len();
            if read_line(r, out, &mut budget).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let size_line = String::from_utf8_lossy(&out[start..]).to_string();
            let size_text = size_line.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| bad(format!("bad chunk size line {size_line:?}")))?;
            if size == 0 {
                // Trailer fields, then the empty line.
                loop {
                    let start = out.len();
                    if read_line(r, out, &mut budget).await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    if out[start..] == *b"\r\n" || out[start..] == *b"\n" {
                        return Ok(());
                    }
                }
            }
            // The chunk's data and its CRLF.
            read_exact_into(r, size + 2, out).await?;
        }
    } else if let Some(n) = head.content_length()? {
        read_exact_into(r, n, out).await
    } else if until_eof {
        r.read_to_end(out).await.map(|_| ())
    } else {
        Ok(())
    }
}

async fn read_exact_into<R: AsyncRead + Unpin>(
    r: &mut R,
    n: u64,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let got = (&mut *r).take(n).read_to_end(out).await?;
    if (got as u64) < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// A request read in full from the client.
struct Request {
    head: Head,
    body: Vec<u8>,
}

impl Request {
    fn method(&self) -> &str {
        &self.head.start[0]
    }

    fn target(&self) -> &str {
        &self.head.start[1]
    }

    /// Path and query, also from an absolute-form target.
    fn path_and_query(&self) -> (&str, &str) {
        let mut t = self.target();
        if let Some(rest) = t.strip_prefix("http://").or(t.strip_prefix("https://")) {
            t = rest.find('/').map_or("/", |i| &rest[i..]);
        }
        t.split_once('?').unwrap_or((t, ""))
    }

    /// What a rule's `key_contains` looks at: the Glue operation, or the path.
    fn match_text(&self) -> &str {
        match self.head.header("x-amz-target") {
            Some(t) if t.starts_with("AWSGlue.") => t,
            _ => self.path_and_query().0,
        }
    }

    fn kind(&self) -> RequestKind {
        if self
            .head
            .header("x-amz-target")
            .is_some_and(|t| t.starts_with("AWSGlue."))
        {
            return RequestKind::Glue;
        }
        let (path, query) = self.path_and_query();
        // Path-style: /bucket/key. No key means a bucket-level operation.
        let has_key = path
            .trim_start_matches('/')
            .split_once('/')
            .is_some_and(|(_, key)| !key.is_empty());
        if !has_key {
            return RequestKind::Other;
        }
        let params: Vec<(&str, &str)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        let has = |name: &str| params.iter().any(|(n, _)| *n == name);
        let comp = params.iter().find(|(n, _)| *n == "comp").map(|(_, v)| *v);
        match self.method() {
            "PUT" if comp == Some("block") => RequestKind::PutBlock,
            "PUT" if comp == Some("blocklist") => RequestKind::PutBlockList,
            "PUT" if has("uploadId") && has("partNumber") => RequestKind::UploadPart,
            // A plain object write: no sub-resource (`?tagging`, `?acl`, ...); the SDK tags
            // its requests with `x-id=<operation>`, which also tells CopyObject apart.
            "PUT"
                if params
                    .iter()
                    .all(|(n, v)| *n == "x-id" && *v == "PutObject") =>
            {
                RequestKind::PutObject
            }
            "POST" if has("uploadId") => RequestKind::CompleteMultipartUpload,
            _ => RequestKind::Other,
        }
    }

    /// The bytes sent upstream: the head without `Expect` (the proxy answered it), and the
    /// body exactly as received.
    fn upstream_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 1024);
        out.extend_from_slice(self.head.start.join(" ").as_bytes());
        out.extend_from_slice(b"\r\n");
        for (line, (name, _)) in self.head.lines.iter().zip(&self.head.headers) {
            if !name.eq_ignore_ascii_case("expect") {
                out.extend_from_slice(line);
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads the next request from a client, answering `Expect: 100-continue` first.
async fn read_request(client: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let Some(head) = read_head(client).await? else {
        return Ok(None);
    };
    let has_body = head.chunked() || head.content_length()?.is_some_and(|n| n > 0);
    if has_body && head.lists("expect", "100-continue") {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        client.flush().await?;
    }
    let mut body = Vec::new();
    read_body(client, &head, false, &mut body).await?;
    Ok(Some(Request { head, body }))
}

/// A response read in full from upstream.
struct Response {
    status: u16,
    bytes: Vec<u8>,
    closes: bool,
}

async fn read_response(
    upstream: &mut BufReader<TcpStream>,
    method: &str,
) -> io::Result<Option<Response>> {
    loop {
        let Some(head) = read_head(upstream).await? else {
            return Ok(None);
        };
        let status: u16 = head.start[1]
            .parse()
            .map_err(|_| bad(format!("bad status {:?}", head.start[1])))?;
        // Interim answers (the proxy never forwards `Expect`, but be safe): skip them.
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let no_body = method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304;
        let until_eof = !no_body && !head.chunked() && head.content_length()?.is_none();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(head.start.join(" ").as_bytes());
        bytes.extend_from_slice(b"\r\n");
        for line in &head.lines {
            bytes.extend_from_slice(line);
        }
        bytes.extend_from_slice(b"\r\n");
        if !no_body {
            read_body(upstream, &head, until_eof, &mut bytes).await?;
        }
        return Ok(Some(Response {
            status,
            closes: until_eof || head.closes(&head.start[0]),
            bytes,
        }));
    }
}

/// Sends `req` upstream on the client's upstream connection (opened on first use, kept alive
/// as upstream allows) and reads the answer.
async fn forward(
    upstream: &mut Option<BufReader<TcpStream>>,
    to: SocketAddr,
    req: &Request,
) -> io::Result<Response> {
    let bytes = req.upstream_bytes();
    // A kept-alive connection upstream closed while idle fails before any answer: then, and
    // only then, send again on a fresh connection.
    for _ in 0..2 {
        let (mut conn, reused) = match upstream.take() {
            Some(conn) => (conn, true),
            None => {
                let stream = TcpStream::connect(to).await?;
                stream.set_nodelay(true)?;
                (BufReader::new(stream), false)
            }
        };
        let answer = async {
            conn.write_all(&bytes).await?;
            conn.flush().await?;
            read_response(&mut conn, req.method()).await
        }
        .await;
        match answer {
            Ok(Some(response)) => {
                if !response.closes {
                    *upstream = Some(conn);
                }
                return Ok(response);
            }
            Ok(None) if reused => {}
            Err(e) if reused && e.kind() == io::ErrorKind::BrokenPipe => {}
            Ok(None) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) => return Err(e),
        }
    }
    Err(io::ErrorKind::UnexpectedEof.into())
}

/// An S3-style error answer, kept alive like S3's.
fn s3_error(status: u16, reason: &str, code: &str, message: &str, request: u64) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>FAULTPROXY{request:08}</RequestId>\
         <HostId>fault-proxy</HostId></Error>"
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n\
         Content-Length: {}\r\nx-amz-request-id: FAULTPROXY{request:08}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Closes the client's connection with a TCP reset rather than an orderly FIN.
fn reset(client: BufReader<TcpStream>) {
    let stream = client.into_inner();
    // SO_LINGER 0 makes close() send RST. It would block only if the socket still had unsent
    // data to linger over, and a zero timeout does not linger at all.
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn serve_client(client: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let mut client = BufReader::new(client);
    let mut upstream: Option<BufReader<TcpStream>> = None;
    loop {
        // A client that goes away or sends garbage just ends its connection.
        let Ok(Some(req)) = read_request(&mut client).await else {
            return;
        };
        let client_closes = req.head.closes(&req.head.start[2]);
        let kind = req.kind();
        let (seq, fault) = shared.decide(kind, req.match_text());
        let injection = |fault, upstream_status| Injection {
            request: seq,
            kind,
            fault,
            method: req.method().to_string(),
            target: req.target().to_string(),
            upstream_status,
        };
        let answer = match fault {
            Some(Fault::Reset) => {
                shared.record(injection(Fault::Reset, None));
                reset(client);
                return;
            }
            Some(Fault::ResetAfterForward) => {
                let status = forward(&mut upstream, shared.upstream, &req)
                    .await
                    .ok()
                    .map(|r| r.status);
                shared.record(injection(Fault::ResetAfterForward, status));
                reset(client);
                return;
            }
            Some(fault @ Fault::InternalError) => {
                shared.record(injection(fault, None));
                s3_error(
                    500,
                    "Internal Server Error",
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                    seq,
                )
            }
            Some(fault @ Fault::SlowDown) => {
                shared.record(injection(fault, None));
                s3_error(
                    503,
                    "Slow Down",
                    "SlowDown",
                    "Please reduce your request rate.",
                    seq,
                )
            }
            Some(fault @ Fault::AccessDenied) => {
                shared.record(injection(fault, None));
                let body = format!(
                    "{{\"__type\":\"AccessDeniedException\",\"Message\":\"User: \
                     arn:aws:sts::123456789012:assumed-role/lpdrop/test is not authorized to \
                     perform: {} (fault proxy request {seq})\"}}",
                    req.match_text().replace("AWSGlue.", "glue:")
                );
                format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     x-amzn-ErrorType: AccessDeniedException\r\n\
                     Content-Length: {}\r\nx-amzn-RequestId: FAULTPROXY{seq:08}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
            None => match forward(&mut upstream, shared.upstream, &req).await {
                Ok(response) => {
                    let closes = response.closes;
                    if client.write_all(&response.bytes).await.is_err()
                        || client.flush().await.is_err()
                        || closes
                        || client_closes
                    {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    shared.proxy_error();
                    let body = format!("fault proxy: upstream failed: {e}");
                    let _ = client
                        .write_all(
                            format!(
                                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n\
                                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                    let _ = client.flush().await;
                    return;
                }
            },
        };
        if client.write_all(&answer).await.is_err()
            || client.flush().await.is_err()
            || client_closes
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, target: &str) -> Request {
        Request {
            head: Head {
                start: [method.into(), target.into(), "HTTP/1.1".into()],
                lines: Vec::new(),
                headers: Vec::new(),
            },
            body: Vec::new(),
        }
    }

    #[test]
    fn requests_are_classified_like_s3_operations() {
        let cases = [
            (
                "PUT",
                "/b/k/part-00000.parquet?x-id=PutObject",
                RequestKind::PutObject,
            ),
            ("PUT", "/b/k", RequestKind::PutObject),
            (
                "PUT",
                "/b/k?partNumber=2&uploadId=abc&x-id=UploadPart",
                RequestKind::UploadPart,
            ),
            (
                "POST",
                "/b/k?uploadId=abc&x-id=CompleteMultipartUpload",
                RequestKind::CompleteMultipartUpload,
            ),
            (
                "POST",
                "/b/k?uploads&x-id=CreateMultipartUpload",
                RequestKind::Other,
            ),
            ("PUT", "/b", RequestKind::Other),
            ("PUT", "/b/", RequestKind::Other),
            ("PUT", "/b/k?tagging", RequestKind::Other),
            ("PUT", "/b/k?x-id=CopyObject", RequestKind::Other),
            ("DELETE", "/b/k?uploadId=abc", RequestKind::Other),
            ("GET", "/b?list-type=2&prefix=x", RequestKind::Other),
        ];
        for (method, target, kind) in cases {
            assert_eq!(request(method, target).kind(), kind, "{method} {target}");
        }
    }

    #[test]
    fn decisions_are_a_function_of_the_seed_and_rate() {
        let decide_with = |seed: u64, rule: Rule| {
            let shared = Shared {
                seed,
                rules: vec![rule],
                upstream: SocketAddr::from(([127, 0, 0, 1], 9)),
                state: Mutex::new(State {
                    matched: Vec::new(),
                    injected: Vec::new(),
                    stats: FaultStats::default(),
                    log: Vec::new(),
                }),
            };
            (0..2000)
                .map(|_| shared.decide(RequestKind::PutObject, "/b/k").1)
                .collect::<Vec<_>>()
        };
        let decide_all = |seed: u64, p: f64| {
            decide_with(seed, Rule::new(RequestKind::PutObject, p, &Fault::ALL))
        };
        assert_eq!(decide_all(7, 0.2), decide_all(7, 0.2));
        assert_ne!(decide_all(7, 0.2), decide_all(8, 0.2));
        let faults = decide_all(7, 0.2).iter().filter(|f| f.is_some()).count();
        assert!((300..500).contains(&faults), "about 20% of 2000: {faults}");
        for fault in Fault::ALL {
            assert!(
                decide_all(7, 0.2).contains(&Some(fault)),
                "{fault} is chosen"
            );
        }
        assert!(decide_all(7, 0.0).iter().all(Option::is_none));
        assert!(decide_all(7, 1.0).iter().all(Option::is_some));
        let first_only = decide_with(
            7,
            Rule::new(RequestKind::PutObject, 1.0, &[Fault::Reset]).at_most(1),
        );
        assert_eq!(first_only[0], Some(Fault::Reset));
        assert!(first_only[1..].iter().all(Option::is_none));
        let other_keys = decide_with(
            7,
            Rule::new(RequestKind::PutObject, 1.0, &[Fault::Reset]).key_contains("upload.complete"),
        );
        assert!(
            other_keys.iter().all(Option::is_none),
            "/b/k does not match"
        );
    }

    /// A tiny upstream that answers every request with its own body (echo), keep-alive.
    async fn echo_upstream() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut s = BufReader::new(s);
                    while let Ok(Some(req)) = read_request(&mut s).await {
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                            req.body.len()
                        );
                        s.write_all(reply.as_bytes()).await.unwrap();
                        s.write_all(&req.body).await.unwrap();
                        s.flush().await.unwrap();
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(conn: &mut BufReader<TcpStream>, request: &[u8]) -> io::Result<Vec<u8>> {
        conn.write_all(request).await?;
        conn.flush().await?;
        let response = read_response(conn, "PUT")
            .await?
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        Ok(response.bytes)
    }

    #[test]
    fn forwards_framed_bodies_on_kept_alive_connections_and_injects_faults() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let upstream = rt.block_on(echo_upstream());
        let proxy = FaultProxy::start(
            &format!("http://{upstream}"),
            1,
            vec![
                Rule::new(RequestKind::PutObject, 1.0, &[Fault::SlowDown]).key_contains("slow"),
                Rule::new(RequestKind::PutObject, 1.0, &[Fault::Reset]).key_contains("reset"),
            ],
        );
        let addr: SocketAddr = proxy
            .url()
            .strip_prefix("http://")
            .unwrap()
            .parse()
            .unwrap();
        rt.block_on(async {
            let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
            let fixed = b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
            let answer = roundtrip(&mut conn, fixed).await.unwrap();
            assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
            assert!(answer.ends_with(b"\r\n\r\nhello"));
            // Same connection: chunked with an extension and a trailer, forwarded verbatim.
            let chunked = b"PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                            3;ext=1\r\nabc\r\n0\r\nx-amz-checksum-crc32: AAAAAA==\r\n\r\n";
            let answer = roundtrip(&mut conn, chunked).await.unwrap();
            assert!(answer.ends_with(b"3;ext=1\r\nabc\r\n0\r\nx-amz-checksum-crc32: AAAAAA==\r\n\r\n"));
            // Expect: 100-continue is answered by the proxy before the body is sent.
            conn.write_all(b"PUT /b/k HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
                .await
                .unwrap();
            let mut line = Vec::new();
            conn.read_until(b'\n', &mut line).await.unwrap();
            assert_eq!(line, b"HTTP/1.1 100 Continue\r\n");
            line.clear();
            conn.read_until(b'\n', &mut line).await.unwrap();
            let answer = roundtrip(&mut conn, b"ok").await.unwrap();
            assert!(answer.ends_with(b"\r\n\r\nok"));
            let slow = b"PUT /b/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx";
            let answer = String::from_utf8(roundtrip(&mut conn, slow).await.unwrap()).unwrap();
            assert!(answer.starts_with("HTTP/1.1 503 Slow Down\r\n"), "{answer}");
            assert!(answer.contains("<Code>SlowDown</Code>"));
            // Still alive after an injected error; then a reset ends the connection.
            let reset = b"PUT /b/reset HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx";
            assert!(roundtrip(&mut conn, reset).await.is_err());
        });
        let stats = proxy.stats();
        assert_eq!(stats.requests, 5);
        assert_eq!(stats.faults_of(RequestKind::PutObject), 2);
        assert_eq!(stats.faults_of_type(Fault::Reset), 1);
        assert_eq!(proxy.injections()[0].target, "/b/slow");
        assert_eq!(stats.proxy_errors, 0);
    }
}
