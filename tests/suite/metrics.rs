//! `lpdrop worker --metrics-addr`: a long-running worker on a SQLite queue, scraped over HTTP
//! while it takes hourly jobs from a running emulator. The counters start at zero on an empty
//! queue and must move as the jobs run: API requests by status (with throttled retries),
//! jobs by outcome, rows and bytes per table (equal to what the drops' manifests say), the
//! histograms, the queue gauges; `/healthz` and `/readyz` answer 200 throughout, and the
//! worker exits cleanly on SIGTERM.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use lpdrop_testkit::cli::{Spawned, committed_drops, run};

use crate::with_queue;

const PER_DAY: u32 = 2000;
const JOBS: u64 = 4;
/// Only to keep a broken run from hanging: nothing is timed.
const DEADLINE: Duration = Duration::from_secs(300);

/// A plain HTTP/1.1 GET: status, lower-cased head, body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("the metrics port accepts");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// One sample of the text exposition format.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape of `/metrics`, parsed.
#[derive(Debug)]
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    fn take(addr: SocketAddr) -> Scrape {
        let (status, head, text) = http_get(addr, "/metrics");
        assert_eq!(status, 200, "{head}\n{text}");
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(parse_sample)
            .collect();
        Scrape { text, samples }
    }

    /// The sum of the samples named `name` whose labels include `with`.
    fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.matching(name, with).iter().map(|s| s.value).sum()
    }

    fn matching(&self, name: &str, with: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && with
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The values of label `label` among the samples named `name`.
    fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .matching(name, &[])
            .into_iter()
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// `name{a="x",b="y\"z"} 1.5`
fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("value of {line:?}")),
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Sample {
            name: series.to_string(),
            labels: BTreeMap::new(),
            value,
        };
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.strip_suffix('}').expect("labels end with }").chars();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "{line:?}");
        let mut value = String::new();
        loop {
            match chars.next().expect("a closed label value") {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("{line:?}"),
                },
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        match chars.next() {
            Some(',') | None => {}
            Some(c) => panic!("{c:?} after a label value in {line:?}"),
        }
    }
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}

/// Rows and bytes per table over the manifests of every committed drop.
fn manifest_totals(out: &Path) -> BTreeMap<String, (u64, u64)> {
    let mut totals: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for drop in committed_drops(out) {
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(drop.join("manifest.json")).unwrap()).unwrap();
        for table in manifest["tables"].as_array().unwrap() {
            let t = totals
                .entry(table["name"].as_str().unwrap().to_string())
                .or_default();
            t.0 += table["rows"].as_u64().unwrap();
            for file in table["files"].as_array().unwrap() {
                t.1 += file["bytes"].as_u64().unwrap();
            }
        }
    }
    totals
}

/// Histograms are whole: cumulative buckets never go down, and `+Inf` equals `_count`.
fn check_histogram(scrape: &Scrape, name: &str) {
    let counts = scrape.matching(&format!("{name}_count"), &[]);
    assert!(!counts.is_empty(), "{name} has series:\n{}", scrape.text);
    for count in counts {
        let with: Vec<(&str, &str)> = count
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let buckets = scrape.matching(&format!("{name}_bucket"), &with);
        assert!(buckets.len() >= 2, "{name}{with:?}: buckets");
        assert!(
            buckets.windows(2).all(|w| w[0].value <= w[1].value),
            "{name}{with:?}: cumulative buckets"
        );
        let inf = buckets.last().unwrap();
        assert_eq!(inf.labels["le"], "+Inf");
        assert_eq!(inf.value, count.value, "{name}{with:?}: +Inf == _count");
        assert_eq!(scrape.matching(&format!("{name}_sum"), &with).len(), 1);
    }
}

#[test]
fn a_running_worker_serves_metrics_that_move_and_health_that_holds() {
    // The first two data requests are throttled (429): two retries to count.
    let bin = crate::bin();
    let emulator = lpdrop_testkit::EmulatorProcess::start(
        bin,
        &["--per-day", &PER_DAY.to_string(), "--faults", "429=first:2"],
    );
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("lpdrop.db").display().to_string();
    let out = dir.path().join("out");

    // A long-running worker (no --once) on an empty queue; port 0: it prints where it listens.
    let mut worker = Spawned::new({
        let mut cmd = with_queue(&queue, &emulator.url);
        cmd.args([
            "worker",
            "--metrics-addr",
            "127.0.0.1:0",
            "--poll",
            "1s",
            "--concurrency",
            "2",
            "--lease",
            "30s",
        ]);
        cmd
    });
    let line = worker.wait_for("metrics on http://", DEADLINE);
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));

    // Ready once the queue has answered; live throughout.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, _, body) = http_get(addr, "/readyz");
        if status == 200 {
            assert_eq!(body, "ready\n");
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "never ready: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _, body) = http_get(addr, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Before any job: every metric is listed, the counters are at zero.
    let before = Scrape::take(addr);
    for name in [
        "lpdrop_api_requests_total",
        "lpdrop_api_retries_total",
        "lpdrop_api_request_duration_seconds",
        "lpdrop_jobs_total",
        "lpdrop_jobs",
        "lpdrop_queue_lag_seconds",
        "lpdrop_worker_running_jobs",
        "lpdrop_rows_written_total",
        "lpdrop_bytes_written_total",
        "lpdrop_upload_duration_seconds",
        "lpdrop_job_duration_seconds",
        "lpdrop_build_info",
    ] {
        assert!(
            before.text.contains(&format!("\n# TYPE {name} ")),
            "{name} is listed:\n{}",
            before.text
        );
    }
    assert_eq!(
        before.sum(
            "lpdrop_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(before.sum("lpdrop_api_requests_total", &[]), 0.0);
    assert_eq!(before.sum("lpdrop_jobs_total", &[]), 0.0);
    assert_eq!(before.sum("lpdrop_upload_duration_seconds_count", &[]), 0.0);
    assert_eq!(before.matching("lpdrop_queue_lag_seconds", &[]).len(), 1);
    assert_eq!(before.sum("lpdrop_worker_running_jobs", &[]), 0.0);

    // Four hourly jobs, enqueued while the worker waits.
    let added = run(with_queue(&queue, &emulator.url)
        .args([
            "jobs",
            "add",
            "--from",
            "2026-03-01T00:00:00Z",
            "--to",
            "2026-03-01T04:00:00Z",
            "--split",
            "1h",
            "--out",
        ])
        .arg(&out));
    assert!(added.status.success());
    assert!(String::from_utf8_lossy(&added.stdout).contains("Enqueued 4 jobs"));

    // Scrape while the worker runs them: counters only go up, and health holds.
    let deadline = Instant::now() + DEADLINE;
    let mut last = before;
    let mut scrapes = 0;
    let during = loop {
        let now = Scrape::take(addr);
        scrapes += 1;
        for (name, with) in [
            ("lpdrop_api_requests_total", &[][..]),
            ("lpdrop_jobs_total", &[][..]),
            ("lpdrop_rows_written_total", &[][..]),
            ("lpdrop_api_request_duration_seconds_count", &[][..]),
        ] {
            assert!(
                now.sum(name, with) >= last.sum(name, with),
                "{name} went down"
            );
        }
        assert_eq!(http_get(addr, "/healthz").0, 200);
        let (status, _, body) = http_get(addr, "/readyz");
        assert_eq!(status, 200, "ready while running jobs: {body}");
        let uploaded = now.sum("lpdrop_jobs_total", &[("outcome", "uploaded")]);
        assert!(uploaded <= JOBS as f64);
        // Done once every job is uploaded and the queue gauges have caught up.
        if uploaded == JOBS as f64
            && now.sum("lpdrop_jobs", &[("state", "uploaded")]) == JOBS as f64
        {
            break now;
        }
        last = now;
        assert!(
            Instant::now() < deadline,
            "the jobs did not finish:\n{}",
            last.text
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("{scrapes} scrapes while the jobs ran");
    let m = &during;

    // API requests: answered 200, the two throttled ones counted as 429 and retried.
    assert!(m.sum("lpdrop_api_requests_total", &[("status", "200")]) > 0.0);
    assert!(
        m.sum(
            "lpdrop_api_requests_total",
            &[("api", "msg_hist"), ("status", "200")]
        ) >= JOBS as f64
    );
    assert!(m.sum("lpdrop_api_requests_total", &[("api", "domain")]) >= 1.0);
    assert_eq!(
        m.sum("lpdrop_api_requests_total", &[("status", "429")]),
        2.0
    );
    assert_eq!(
        m.sum("lpdrop_api_retries_total", &[("reason", "throttled")]),
        2.0
    );
    assert_eq!(m.sum("lpdrop_api_retries_total", &[]), 2.0);
    // Labels are short fixed words: no URL, account or secret.
    for api in m.label_values("lpdrop_api_requests_total", "api") {
        assert!(
            ["domain", "msg_hist", "msg_hist_by_id"].contains(&api.as_str()),
            "api label {api:?}"
        );
        // Every attempt is timed.
        assert_eq!(
            m.sum(
                "lpdrop_api_request_duration_seconds_count",
                &[("api", &api)]
            ),
            m.sum("lpdrop_api_requests_total", &[("api", &api)]),
            "{api}: one duration per request"
        );
    }
    for sample in &m.samples {
        for value in sample.labels.values() {
            for secret in ["12345678", "emulator", "127.0.0.1", "http"] {
                assert!(!value.contains(secret), "{sample:?}");
            }
        }
    }

    // Jobs: all uploaded by this attempt, nothing else.
    assert_eq!(m.sum("lpdrop_jobs_total", &[]), JOBS as f64);
    assert_eq!(
        m.sum(
            "lpdrop_job_duration_seconds_count",
            &[("outcome", "uploaded")]
        ),
        JOBS as f64
    );
    assert_eq!(
        m.sum("lpdrop_upload_duration_seconds_count", &[]),
        JOBS as f64
    );
    assert!(m.sum("lpdrop_upload_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(m.sum("lpdrop_jobs", &[("state", "queued")]), 0.0);
    assert_eq!(m.sum("lpdrop_jobs", &[]), JOBS as f64);
    assert_eq!(m.matching("lpdrop_queue_lag_seconds", &[]).len(), 1);
    assert!(m.sum("lpdrop_queue_lag_seconds", &[]) >= 0.0);
    for name in [
        "lpdrop_api_request_duration_seconds",
        "lpdrop_upload_duration_seconds",
        "lpdrop_job_duration_seconds",
    ] {
        check_histogram(m, name);
    }

    // Rows and bytes per table: exactly what the committed drops' manifests hold.
    let totals = manifest_totals(&out);
    assert_eq!(committed_drops(&out).len() as u64, JOBS);
    let conversations = totals["conversations"];
    assert!(conversations.0 > 0);
    assert_eq!(
        m.sum("lpdrop_rows_written_total", &[("table", "conversations")]),
        conversations.0 as f64
    );
    for (table, (rows, bytes)) in &totals {
        assert_eq!(
            m.sum("lpdrop_rows_written_total", &[("table", table)]),
            *rows as f64,
            "{table} rows"
        );
        assert_eq!(
            m.sum("lpdrop_bytes_written_total", &[("table", table)]),
            *bytes as f64,
            "{table} bytes"
        );
    }
    assert_eq!(
        m.label_values("lpdrop_rows_written_total", "table").len(),
        totals.len()
    );

    // Once idle again nothing runs; SIGTERM stops the worker cleanly.
    let deadline = Instant::now() + DEADLINE;
    while Scrape::take(addr).sum("lpdrop_worker_running_jobs", &[]) != 0.0 {
        assert!(Instant::now() < deadline, "jobs still running");
        std::thread::sleep(Duration::from_millis(100));
    }
    worker.signal("TERM");
    let (status, lines) = worker.wait(DEADLINE);
    assert!(
        status.success(),
        "the worker exits 0 on SIGTERM: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("SIGTERM: taking no new jobs")),
        "{lines:#?}"
    );
}
