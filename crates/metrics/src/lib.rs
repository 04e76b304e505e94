//! Process-wide Prometheus metrics for lpdrop, and (feature `server`) the worker's HTTP
//! endpoints `/metrics`, `/healthz` and `/readyz`.
//!
//! A metric is a `static` definition (name, help, label names, and buckets for a histogram);
//! its values live in a [`Registry`], by default the process-wide one ([`global`]). Updates
//! take one short lock on a map keyed by metric and label values: fine at the rates lpdrop
//! updates them (an HTTP attempt, a job, a queue poll). [`Registry::render`] writes the
//! Prometheus text exposition format 0.0.4.
//!
//! Every lpdrop metric is defined here, so that names, help and label sets are in one place.
//! Names start with `lpdrop_` and carry their unit (`_seconds`, `_bytes`, `_total`). Label
//! values are short fixed words (an API, a status code, a table): never a URL, an account or
//! anything secret.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use server::{HealthState, serve};

/// The content type of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

// ---- lpdrop's metrics ----------------------------------------------------------------------

/// Buckets for one HTTP request: 5 ms to 1 min.
pub const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets for publishing a drop: 50 ms to 10 min.
pub const UPLOAD_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Buckets for a whole job: 0.5 s to 2 h.
pub const JOB_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

/// 1, labelled with the version of the running binary.
pub static BUILD_INFO: Gauge = Gauge::new(
    "lpdrop_build_info",
    "Always 1; the version label is the running lpdrop's version.",
    &["version"],
);
/// HTTP attempts to LivePerson; `status` is the HTTP status, or `error` when no answer came.
pub static API_REQUESTS: Counter = Counter::new(
    "lpdrop_api_requests_total",
    "HTTP requests (every attempt) to the LivePerson APIs, by API and HTTP status (\"error\": no answer, a connection or timeout error).",
    &["api", "status"],
);
/// Attempts that are tried again, by reason.
pub static API_RETRIES: Counter = Counter::new(
    "lpdrop_api_retries_total",
    "LivePerson API requests tried again, by API and reason (throttled, server_error, transport, bad_answer, auth_renewal).",
    &["api", "reason"],
);
/// Time of one HTTP attempt, from sending to the whole answer.
pub static API_REQUEST_DURATION: Histogram = Histogram::new(
    "lpdrop_api_request_duration_seconds",
    "Duration of one HTTP request to the LivePerson APIs, from sending to the end of the answer.",
    &["api"],
    REQUEST_BUCKETS,
);
/// Jobs this worker process ended, by outcome.
pub static JOBS_TOTAL: Counter = Counter::new(
    "lpdrop_jobs_total",
    "Job attempts this worker ended, by outcome (uploaded, already_committed, failed, dead, handed_back, lost, cancelled, queue_error).",
    &["outcome"],
);
/// Jobs in the queue by state (every worker's, read from the queue).
pub static JOBS: Gauge = Gauge::new(
    "lpdrop_jobs",
    "Jobs in the queue by state, as last read from the queue.",
    &["state"],
);
/// How long the job waiting longest for a worker has been due.
pub static QUEUE_LAG: Gauge = Gauge::new(
    "lpdrop_queue_lag_seconds",
    "How long the oldest due job (queued, failed past its backoff, or with an expired lease) has waited for a worker; 0 when none is waiting.",
    &[],
);
/// Jobs running in this worker process.
pub static RUNNING_JOBS: Gauge = Gauge::new(
    "lpdrop_worker_running_jobs",
    "Jobs running in this worker process.",
    &[],
);
/// Rows in committed drops, by table.
pub static ROWS_WRITTEN: Counter = Counter::new(
    "lpdrop_rows_written_total",
    "Rows written into drops this process committed, by table.",
    &["table"],
);
/// Parquet bytes in committed drops, by table.
pub static BYTES_WRITTEN: Counter = Counter::new(
    "lpdrop_bytes_written_total",
    "Parquet bytes written into drops this process committed, by table.",
    &["table"],
);
/// The commit of a drop: the parquet files finished and uploaded, then manifest and marker.
pub static UPLOAD_DURATION: Histogram = Histogram::new(
    "lpdrop_upload_duration_seconds",
    "Duration of a drop's commit: its parquet files finished and uploaded, then manifest.json and upload.complete.",
    &[],
    UPLOAD_BUCKETS,
);
/// A job attempt from lease to its end, by outcome.
pub static JOB_DURATION: Histogram = Histogram::new(
    "lpdrop_job_duration_seconds",
    "Duration of a job attempt in this worker, from its lease to its end, by outcome.",
    &["outcome"],
    JOB_BUCKETS,
);

/// Committed drops registered in the Glue Data Catalog, by outcome.
pub static CATALOG_REGISTRATIONS: Counter = Counter::new(
    "lpdrop_catalog_registrations_total",
    "Committed drops this process registered in the Glue Data Catalog, by outcome (registered, pending: committed, registration to be completed by `lpdrop catalog sync`).",
    &["outcome"],
);
/// Drops whose catalog registration is pending, from the queue.
pub static CATALOG_PENDING: Gauge = Gauge::new(
    "lpdrop_catalog_registration_pending",
    "Uploaded jobs whose drop's Glue catalog registration is pending, as last read from the queue.",
    &[],
);

/// Buckets for acknowledging a webhook: 1 ms to 5 s (LivePerson gives up at 5 s, and
/// disables endpoints slower than 2.5 s).
pub const ACK_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Webhook notifications answered by `lpdrop listen`, by outcome.
pub static WEBHOOK_NOTIFICATIONS: Counter = Counter::new(
    "lpdrop_webhook_notifications_total",
    "Webhook notifications answered by lpdrop listen, by outcome: accepted, quarantined (signed but not a documented notification; kept), or the reason it was refused (signature_missing, signature_malformed, signature_mismatch, other_account, other_client, too_large, body_unreadable, spool_unavailable, shutting_down).",
    &["outcome"],
);
/// Events (changes) of accepted notifications, by type.
pub static WEBHOOK_EVENTS: Counter = Counter::new(
    "lpdrop_webhook_events_total",
    "Events (changes) in the webhook notifications lpdrop listen accepted, by type (ContentEvent, RichContentEvent, AcceptStatusEvent, ChatStateEvent, ExConversationChange, unreadable).",
    &["type"],
);
/// Time from a webhook request's arrival to its answer.
pub static WEBHOOK_ACK_DURATION: Histogram = Histogram::new(
    "lpdrop_webhook_ack_duration_seconds",
    "Time lpdrop listen took to answer a webhook request (a 200 waits until the notification is durable in the spool).",
    &[],
    ACK_BUCKETS,
);
/// Notifications acknowledged and not yet in a committed drop.
pub static WEBHOOK_SPOOL_DEPTH: Gauge = Gauge::new(
    "lpdrop_webhook_spool_depth",
    "Notifications acknowledged by lpdrop listen and not yet published in a committed drop.",
    &[],
);
/// Drops published by `lpdrop listen`, by outcome.
pub static WEBHOOK_DROPS: Counter = Counter::new(
    "lpdrop_webhook_drops_total",
    "Spool rolls of lpdrop listen, by outcome: committed (a drop), empty (only redeliveries: no drop), failed (tried again).",
    &["outcome"],
);

/// Notifications left out by `--skill`, by reason.
pub static WEBHOOK_FILTERED: Counter = Counter::new(
    "lpdrop_webhook_filtered_total",
    "Webhook notifications lpdrop listen --skill left out, by reason: other_skill (their conversation closed without reaching a kept skill), skill_unknown (held longer than --skill-hold without their skill becoming known).",
    &["reason"],
);

/// Every metric above, so that [`describe_all`] can list each from the first scrape.
pub fn all() -> Vec<&'static Desc> {
    vec![
        &BUILD_INFO.0,
        &API_REQUESTS.0,
        &API_RETRIES.0,
        &API_REQUEST_DURATION.0,
        &JOBS_TOTAL.0,
        &JOBS.0,
        &QUEUE_LAG.0,
        &RUNNING_JOBS.0,
        &ROWS_WRITTEN.0,
        &BYTES_WRITTEN.0,
        &UPLOAD_DURATION.0,
        &JOB_DURATION.0,
        &CATALOG_REGISTRATIONS.0,
        &CATALOG_PENDING.0,
        &WEBHOOK_NOTIFICATIONS.0,
        &WEBHOOK_EVENTS.0,
        &WEBHOOK_ACK_DURATION.0,
        &WEBHOOK_SPOOL_DEPTH.0,
        &WEBHOOK_DROPS.0,
        &WEBHOOK_FILTERED.0,
    ]
}

/// Registers every lpdrop metric in the global registry (help and type from the first
/// scrape; metrics without labels start at 0).
pub fn describe_all() {
    for desc in all() {
        global().describe(desc);
    }
}

// ---- Definitions ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// What defines a metric: name, help, type, label names, and a histogram's bucket bounds.
#[derive(Debug, Clone, Copy)]
pub struct Desc {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    /// Upper bounds, ascending, without `+Inf` (histograms only).
    pub buckets: &'static [f64],
}

/// Only goes up. Label values are given in the order of the label names.
#[derive(Debug)]
pub struct Counter(pub Desc);

/// Goes up and down, or is set.
#[derive(Debug)]
pub struct Gauge(pub Desc);

/// Counts observations into cumulative buckets, with their sum and count.
#[derive(Debug)]
pub struct Histogram(pub Desc);

impl Counter {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Counter {
        Counter(Desc {
            name,
            help,
            kind: Kind::Counter,
            labels,
            buckets: &[],
        })
    }

    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1.0);
    }

    /// Adds `v` (negative or NaN values are ignored: a counter never goes down).
    pub fn add(&self, labels: &[&str], v: f64) {
        self.add_in(global(), labels, v);
    }

    pub fn add_in(&self, registry: &Registry, labels: &[&str], v: f64) {
        if v >= 0.0 {
            registry.update(&self.0, labels, |s| s.add(v));
        }
    }

    /// The current value (0 when never touched).
    pub fn get(&self, labels: &[&str]) -> f64 {
        global().value(&self.0, labels).unwrap_or(0.0)
    }
}

impl Gauge {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Gauge {
        Gauge(Desc {
            name,
            help,
            kind: Kind::Gauge,
            labels,
            buckets: &[],
        })
    }

    pub fn set(&self, labels: &[&str], v: f64) {
        self.set_in(global(), labels, v);
    }

    pub fn set_in(&self, registry: &Registry, labels: &[&str], v: f64) {
        registry.update(&self.0, labels, |s| s.set(v));
    }

    pub fn add(&self, labels: &[&str], v: f64) {
        self.add_in(global(), labels, v);
    }

    pub fn add_in(&self, registry: &Registry, labels: &[&str], v: f64) {
        registry.update(&self.0, labels, |s| s.add(v));
    }

    /// The current value (0 when never set).
    pub fn get(&self, labels: &[&str]) -> f64 {
        global().value(&self.0, labels).unwrap_or(0.0)
    }
}

impl Histogram {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Histogram {
        Histogram(Desc {
            name,
            help,
            kind: Kind::Histogram,
            labels,
            buckets,
        })
    }

    /// Counts `v` (NaN is ignored).
    pub fn observe(&self, labels: &[&str], v: f64) {
        self.observe_in(global(), labels, v);
    }

    pub fn observe_in(&self, registry: &Registry, labels: &[&str], v: f64) {
        if !v.is_nan() {
            let buckets = self.0.buckets;
            registry.update(&self.0, labels, |s| s.observe(buckets, v));
        }
    }

    /// How many observations (0 when none).
    pub fn count(&self, labels: &[&str]) -> u64 {
        global().histogram_count(&self.0, labels).unwrap_or(0)
    }
}

// ---- The registry --------------------------------------------------------------------------

/// The values of a set of metrics.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

#[derive(Debug)]
struct Family {
    desc: Desc,
    series: BTreeMap<Vec<String>, Series>,
}

#[derive(Debug, Clone, PartialEq)]
enum Series {
    Value(f64),
    /// Per-bucket (not cumulative) counts; one more than the bounds, for `+Inf`.
    Histogram {
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

impl Series {
    fn new(desc: &Desc) -> Series {
        match desc.kind {
            Kind::Histogram => Series::Histogram {
                counts: vec![0; desc.buckets.len() + 1],
                sum: 0.0,
                count: 0,
            },
            _ => Series::Value(0.0),
        }
    }

    fn add(&mut self, v: f64) {
        if let Series::Value(x) = self {
            *x += v;
        }
    }

    fn set(&mut self, v: f64) {
        if let Series::Value(x) = self {
            *x = v;
        }
    }

    fn observe(&mut self, bounds: &[f64], v: f64) {
        if let Series::Histogram { counts, sum, count } = self {
            let i = bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len());
            counts[i] += 1;
            *sum += v;
            *count += 1;
        }
    }
}

static GLOBAL: Registry = Registry::new();

/// The process-wide registry, which the metric methods without `_in` update.
pub fn global() -> &'static Registry {
    &GLOBAL
}

impl Registry {
    pub const fn new() -> Registry {
        Registry {
            families: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Family>> {
        // A panic elsewhere while holding the lock leaves the numbers usable.
        self.families
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lists `desc` even before it has a value: help and type lines, and a zero sample when
    /// it has no labels.
    pub fn describe(&self, desc: &Desc) {
        let mut families = self.lock();
        let family = families.entry(desc.name).or_insert_with(|| Family {
            desc: *desc,
            series: BTreeMap::new(),
        });
        if desc.labels.is_empty() {
            family
                .series
                .entry(Vec::new())
                .or_insert_with(|| Series::new(desc));
        }
    }

    fn update(&self, desc: &Desc, labels: &[&str], f: impl FnOnce(&mut Series)) {
        debug_assert_eq!(
            labels.len(),
            desc.labels.len(),
            "{}: label values {labels:?} for label names {:?}",
            desc.name,
            desc.labels
        );
        let mut families = self.lock();
        let family = families.entry(desc.name).or_insert_with(|| Family {
            desc: *desc,
            series: BTreeMap::new(),
        });
        debug_assert_eq!(family.desc.kind, desc.kind, "{} has two types", desc.name);
        let key: Vec<String> = labels.iter().map(|v| v.to_string()).collect();
        f(family
            .series
            .entry(key)
            .or_insert_with(|| Series::new(desc)));
    }

    fn with_series<T>(
        &self,
        desc: &Desc,
        labels: &[&str],
        f: impl FnOnce(&Series) -> Option<T>,
    ) -> Option<T> {
        let families = self.lock();
        let key: Vec<String> = labels.iter().map(|v| v.to_string()).collect();
        families.get(desc.name)?.series.get(&key).and_then(f)
    }

    /// A counter's or gauge's value, if it has one.
    pub fn value(&self, desc: &Desc, labels: &[&str]) -> Option<f64> {
        self.with_series(desc, labels, |s| match s {
            Series::Value(v) => Some(*v),
            Series::Histogram { .. } => None,
        })
    }

    /// A histogram's number of observations, if it has any series.
    pub fn histogram_count(&self, desc: &Desc, labels: &[&str]) -> Option<u64> {
        self.with_series(desc, labels, |s| match s {
            Series::Histogram { count, .. } => Some(*count),
            Series::Value(_) => None,
        })
    }

    /// Every metric in the Prometheus text exposition format 0.0.4, sorted by name and then
    /// by label values.
    pub fn render(&self) -> String {
        let families = self.lock();
        let mut out = String::with_capacity(4096);
        for (name, family) in families.iter() {
            let desc = &family.desc;
            out.push_str("# HELP ");
            out.push_str(name);
            out.push(' ');
            escape_help(desc.help, &mut out);
            out.push('\n');
            let _ = writeln!(out, "# TYPE {name} {}", desc.kind.as_str());
            for (values, series) in &family.series {
                match series {
                    Series::Value(v) => {
                        sample(&mut out, name, "", desc.labels, values, None, *v);
                    }
                    Series::Histogram { counts, sum, count } => {
                        let mut cumulative = 0u64;
                        for (i, n) in counts.iter().enumerate() {
                            cumulative += n;
                            let le = match desc.buckets.get(i) {
                                Some(b) => fmt_f64(*b),
                                None => "+Inf".to_string(),
                            };
                            sample(
                                &mut out,
                                name,
                                "_bucket",
                                desc.labels,
                                values,
                                Some(&le),
                                cumulative as f64,
                            );
                        }
                        sample(&mut out, name, "_sum", desc.labels, values, None, *sum);
                        sample(
                            &mut out,
                            name,
                            "_count",
                            desc.labels,
                            values,
                            None,
                            *count as f64,
                        );
                    }
                }
            }
        }
        out
    }
}

/// Renders the global registry.
pub fn render() -> String {
    global().render()
}

/// One sample line: `name{labels} value`.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    label_names: &[&str],
    values: &[String],
    le: Option<&str>,
    v: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    let pairs = label_names
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .chain(le.map(|le| ("le", le)));
    let mut first = true;
    for (label, value) in pairs {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(label);
        out.push_str("=\"");
        escape_label_value(value, out);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    out.push_str(&fmt_f64(v));
    out.push('\n');
}

/// Label values escape backslash, double quote and line feed.
fn escape_label_value(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text escapes backslash and line feed.
fn escape_help(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value as Prometheus reads it: `+Inf`, `-Inf`, `NaN`, or a plain decimal.
fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static REQUESTS: Counter = Counter::new("t_requests_total", "Requests.", &["api", "status"]);
    static TEMP: Gauge = Gauge::new("t_temperature", "A gauge\nwith \\ two lines.", &[]);
    static LATENCY: Histogram = Histogram::new(
        "t_latency_seconds",
        "Latency.",
        &["api"],
        &[0.125, 0.5, 1.0],
    );

    #[test]
    fn counters_and_gauges_render_with_help_type_and_labels() {
        let r = Registry::new();
        REQUESTS.add_in(&r, &["msg_hist", "200"], 1.0);
        REQUESTS.add_in(&r, &["msg_hist", "200"], 2.0);
        REQUESTS.add_in(&r, &["domain", "error"], 1.0);
        REQUESTS.add_in(&r, &["domain", "error"], -5.0); // ignored: counters only go up
        TEMP.set_in(&r, &[], 21.5);
        TEMP.add_in(&r, &[], -1.0);
        assert_eq!(
            r.render(),
            "# HELP t_requests_total Requests.\n\
             # TYPE t_requests_total counter\n\
             t_requests_total{api=\"domain\",status=\"error\"} 1\n\
             t_requests_total{api=\"msg_hist\",status=\"200\"} 3\n\
             # HELP t_temperature A gauge\\nwith \\\\ two lines.\n\
             # TYPE t_temperature gauge\n\
             t_temperature 20.5\n"
        );
        assert_eq!(r.value(&REQUESTS.0, &["msg_hist", "200"]), Some(3.0));
        assert_eq!(r.value(&REQUESTS.0, &["msg_hist", "500"]), None);
    }

    #[test]
    fn label_values_are_escaped() {
        let r = Registry::new();
        REQUESTS.add_in(&r, &["a\"b\\c\nd", "é ok"], 1.0);
        assert!(
            r.render()
                .contains("t_requests_total{api=\"a\\\"b\\\\c\\nd\",status=\"é ok\"} 1\n"),
            "{}",
            r.render()
        );
    }

    #[test]
    fn histograms_have_cumulative_buckets_inf_sum_and_count() {
        let r = Registry::new();
        for v in [0.0625, 0.125, 0.25, 0.75, 2.0, 5.0, f64::NAN] {
            LATENCY.observe_in(&r, &["eng_hist"], v);
        }
        LATENCY.observe_in(&r, &["domain"], 0.25);
        assert_eq!(
            r.render(),
            "# HELP t_latency_seconds Latency.\n\
             # TYPE t_latency_seconds histogram\n\
             t_latency_seconds_bucket{api=\"domain\",le=\"0.125\"} 0\n\
             t_latency_seconds_bucket{api=\"domain\",le=\"0.5\"} 1\n\
             t_latency_seconds_bucket{api=\"domain\",le=\"1\"} 1\n\
             t_latency_seconds_bucket{api=\"domain\",le=\"+Inf\"} 1\n\
             t_latency_seconds_sum{api=\"domain\"} 0.25\n\
             t_latency_seconds_count{api=\"domain\"} 1\n\
             t_latency_seconds_bucket{api=\"eng_hist\",le=\"0.125\"} 2\n\
             t_latency_seconds_bucket{api=\"eng_hist\",le=\"0.5\"} 3\n\
             t_latency_seconds_bucket{api=\"eng_hist\",le=\"1\"} 4\n\
             t_latency_seconds_bucket{api=\"eng_hist\",le=\"+Inf\"} 6\n\
             t_latency_seconds_sum{api=\"eng_hist\"} 8.1875\n\
             t_latency_seconds_count{api=\"eng_hist\"} 6\n"
        );
        assert_eq!(r.histogram_count(&LATENCY.0, &["eng_hist"]), Some(6));
    }

    #[test]
    fn described_metrics_show_before_any_value() {
        static PLAIN: Histogram = Histogram::new("t_plain_seconds", "Plain.", &[], &[1.0]);
        let r = Registry::new();
        r.describe(&REQUESTS.0);
        r.describe(&PLAIN.0);
        r.describe(&TEMP.0);
        assert_eq!(
            r.render(),
            "# HELP t_plain_seconds Plain.\n\
             # TYPE t_plain_seconds histogram\n\
             t_plain_seconds_bucket{le=\"1\"} 0\n\
             t_plain_seconds_bucket{le=\"+Inf\"} 0\n\
             t_plain_seconds_sum 0\n\
             t_plain_seconds_count 0\n\
             # HELP t_requests_total Requests.\n\
             # TYPE t_requests_total counter\n\
             # HELP t_temperature A gauge\\nwith \\\\ two lines.\n\
             # TYPE t_temperature gauge\n\
             t_temperature 0\n"
        );
    }

    #[test]
    fn special_values_render_as_prometheus_reads_them() {
        assert_eq!(fmt_f64(f64::INFINITY), "+Inf");
        assert_eq!(fmt_f64(f64::NEG_INFINITY), "-Inf");
        assert_eq!(fmt_f64(f64::NAN), "NaN");
        assert_eq!(fmt_f64(0.005), "0.005");
        assert_eq!(fmt_f64(1234567.0), "1234567");
        assert_eq!(fmt_f64(-2.5), "-2.5");
    }

    /// Names follow the Prometheus rules and lpdrop's: the `lpdrop_` prefix, a unit, `_total`
    /// on counters only; buckets ascend; no label is called `le`.
    #[test]
    fn lpdrop_metric_names_follow_the_conventions() {
        let valid = |s: &str, first: fn(char) -> bool| {
            let mut chars = s.chars();
            chars.next().is_some_and(first) && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let mut names = std::collections::BTreeSet::new();
        for d in all() {
            assert!(names.insert(d.name), "{} twice", d.name);
            assert!(d.name.starts_with("lpdrop_"), "{}", d.name);
            assert!(valid(d.name, |c| c.is_ascii_alphabetic() || c == '_'));
            assert_eq!(
                d.kind == Kind::Counter,
                d.name.ends_with("_total"),
                "{}",
                d.name
            );
            if d.kind == Kind::Histogram {
                assert!(d.name.ends_with("_seconds"), "{}", d.name);
                assert!(d.buckets.windows(2).all(|w| w[0] < w[1]), "{}", d.name);
            }
            assert!(!d.help.is_empty());
            for l in d.labels {
                assert!(valid(l, |c| c.is_ascii_alphabetic() || c == '_'), "{l}");
                assert!(*l != "le" && !l.starts_with("__"), "{}: {l}", d.name);
            }
        }
    }
}
