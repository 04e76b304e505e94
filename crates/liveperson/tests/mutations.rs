//! Hostile input: the vendor's example records, mutated, through the pipeline's own path.
//!
//! Each case is a search page with a mutated record between two untouched ones (or a mutated
//! page envelope), run the way `crates/cli/pipeline.rs` runs a page: `parse_page` through
//! `parse_repairing` (a page that does not parse is rejected whole; one that fails only for
//! invalid UTF-8 is parsed from its repaired text), `decode_record` on every record (a record
//! that does not decode, or held invalid UTF-8, is quarantined with its reason), every kept
//! record into the tables, and a batch of every table. Engagement History (chat) pages go through `parse_chat_page`,
//! `decode_chat_record` and `ChatTables` the same way.
//!
//! Whatever the mutation, there must be no panic and no hang (inputs are bounded: at most a
//! few MB), every record must be kept or quarantined with a non-empty reason, kept plus
//! quarantined must be the page's record count when the page parses, and the untouched
//! records beside the mutated one must be kept.
//!
//! The mutations are drawn by a fixed-seed generator, so a run is reproducible; set
//! `LPDROP_MUTATIONS` (random cases per source, default 1000) and `LPDROP_MUTATION_SEED` for
//! a longer or different run, e.g.
//! `LPDROP_MUTATIONS=20000 cargo test --release -p lpdrop-liveperson --test mutations -- --nocapture`.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::cell::OnceCell;

use lpdrop_liveperson::page::{
    RepairedBody, decode_chat_record, decode_record, decode_repaired, parse_chat_page,
    parse_envelope, parse_page, parse_repairing,
};
use lpdrop_tables::{ChatTables, Lineage, MessagingTables, TableBuffer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A case taking longer than this (debug build) counts as a hang.
const CASE_LIMIT: Duration = Duration::from_secs(10);

const MARKER: &str = "__lpdrop_mutation_marker__";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/liveperson-docs")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---- A small deterministic generator (SplitMix64) ---------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- The two sources --------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Api {
    Messaging,
    Chat,
}

impl Api {
    fn records_key(self) -> &'static str {
        match self {
            Api::Messaging => "conversationHistoryRecords",
            Api::Chat => "interactionHistoryRecords",
        }
    }

    fn fixtures(self) -> &'static [&'static str] {
        match self {
            Api::Messaging => &[
                "msghist-search-example.json",
                "msghist-search-example-sdes.json",
            ],
            Api::Chat => &[
                "enghist-search-example.json",
                "enghist-search-example-richcontent.json",
                "enghist-search-example-paging-sdes.json",
            ],
        }
    }

    /// Every record of the vendor's example pages, as values.
    fn base_records(self) -> Vec<Value> {
        let mut out = Vec::new();
        for name in self.fixtures() {
            let page: Value = serde_json::from_slice(&fixture(name)).unwrap();
            let records = page[self.records_key()].as_array().unwrap();
            out.extend(records.iter().cloned());
        }
        assert!(!out.is_empty());
        out
    }

    /// A page of these record texts, written out byte for byte.
    fn page(self, records: &[&[u8]]) -> Vec<u8> {
        let mut body = format!(
            r#"{{"_metadata":{{"count":{},"shardsStatusResult":{{"partialResult":false}}}},"{}":["#,
            records.len(),
            self.records_key()
        )
        .into_bytes();
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(r);
        }
        body.extend_from_slice(b"]}");
        body
    }
}

// ---- The pipeline's path ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The page itself did not parse (the pipeline fails the page with this reason).
    Rejected(String),
    /// Each record kept (`Ok`) or quarantined with its reason.
    Parsed(Vec<Result<(), String>>),
}

fn lineage() -> Lineage {
    Lineage {
        account_id: "1".into(),
        drop_id: "mutations".into(),
        extracted_at_ms: 0,
    }
}

/// Finishes a batch of every table; returns the rows of the root table (the first).
fn finish(buffers: &mut [TableBuffer]) -> usize {
    let lineage = lineage();
    let mut root = None;
    for b in buffers {
        let rows = b.rows();
        assert_eq!(b.finish_batch(&lineage).num_rows(), rows);
        root.get_or_insert(rows);
    }
    root.unwrap_or(0)
}

/// A record's outcome as the pipeline decides it ([`decode_repaired`]): refused when it held
/// invalid UTF-8 (with all its bytes), else as `decode` says.
fn decode_checked<T>(
    raw: &RawValue,
    repaired: &OnceCell<RepairedBody>,
    decode: impl Fn(&RawValue) -> Result<T, String>,
) -> Result<T, String> {
    decode_repaired(raw, repaired, decode).map_err(|refused| {
        assert_eq!(refused.record.len(), raw.get().len(), "the whole record");
        refused.reason
    })
}

fn run_page(api: Api, body: &[u8]) -> Outcome {
    let repaired = OnceCell::new();
    match api {
        Api::Messaging => {
            let page = match parse_repairing(body, &repaired, parse_page) {
                Ok(p) => p,
                Err(reason) => return Outcome::Rejected(reason),
            };
            // The client checks pages with the envelope parser: it must agree on the count.
            let envelope = parse_envelope(body).expect("the envelope of a readable page");
            assert_eq!(envelope.record_count(), page.records.len());
            let mut tables = MessagingTables::new();
            let results: Vec<Result<(), String>> = page
                .records
                .iter()
                .map(|raw| decode_checked(raw, &repaired, decode_record).map(|c| tables.append(&c)))
                .collect();
            let kept = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(finish(tables.buffers_mut()), kept, "conversations rows");
            Outcome::Parsed(results)
        }
        Api::Chat => {
            let page = match parse_repairing(body, &repaired, parse_chat_page) {
                Ok(p) => p,
                Err(reason) => return Outcome::Rejected(reason),
            };
            let mut tables = ChatTables::new();
            let results: Vec<Result<(), String>> = page
                .records
                .iter()
                .map(|raw| {
                    decode_checked(raw, &repaired, decode_chat_record).map(|c| tables.append(&c))
                })
                .collect();
            let kept = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(finish(tables.buffers_mut()), kept, "chats rows");
            Outcome::Parsed(results)
        }
    }
}

// ---- Mutations --------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                prefix.push(Step::Key(k.clone()));
                paths(x, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(x, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

fn path_text(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() { "<record>".into() } else { s }
}

/// The record text with the node at `path` replaced by `bytes`, written raw (so they may be
/// invalid JSON or invalid UTF-8).
fn splice(record: &Value, path: &[Step], bytes: &[u8]) -> Vec<u8> {
    let mut v = record.clone();
    *node_mut(&mut v, path) = Value::String(MARKER.into());
    let text = serde_json::to_vec(&v).unwrap();
    let needle = format!("\"{MARKER}\"");
    let at = text
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap();
    let mut out = text[..at].to_vec();
    out.extend_from_slice(bytes);
    out.extend_from_slice(&text[at + needle.len()..]);
    out
}

/// Values of every JSON type, and LivePerson's placeholders.
fn replacement(rng: &mut Rng) -> (&'static str, Value) {
    let choices: [(&str, Value); 24] = [
        ("type: string", Value::from("x")),
        ("type: numeric string", Value::from("123")),
        ("type: float string", Value::from("11.7")),
        ("type: bool string", Value::from("true")),
        ("type: integer", Value::from(42)),
        ("type: float", Value::from(1.5)),
        ("type: large float", Value::from(1e308)),
        ("type: negative", Value::from(-7)),
        ("type: u64 max", Value::from(u64::MAX)),
        ("type: i64 min", Value::from(i64::MIN)),
        ("type: bool", Value::from(true)),
        ("type: false", Value::from(false)),
        ("type: empty array", Value::Array(vec![])),
        ("type: array", serde_json::json!([1, "a", null, {"b": 2}])),
        ("type: empty object", serde_json::json!({})),
        ("type: object", serde_json::json!({"a": 1, "string": "x"})),
        ("type: null", Value::Null),
        ("placeholder: -1", Value::from(-1)),
        ("placeholder: 0", Value::from(0)),
        ("placeholder: \"\"", Value::from("")),
        ("placeholder: \"null\"", Value::from("null")),
        ("placeholder: \"undefined\"", Value::from("undefined")),
        ("placeholder: \"-1\"", Value::from("-1")),
        ("placeholder: \" \"", Value::from(" ")),
    ];
    let (name, value) = rng.pick(&choices);
    (name, value.clone())
}

/// Raw tokens spliced in place of a value: invalid JSON, out-of-range numbers, bad strings.
const TOKENS: &[(&str, &[u8])] = &[
    ("token: NaN", b"NaN"),
    ("token: Infinity", b"Infinity"),
    ("token: -Infinity", b"-Infinity"),
    ("token: undefined", b"undefined"),
    ("number: 1e400", b"1e400"),
    ("number: -1e400", b"-1e400"),
    ("number: 1e-400", b"1e-400"),
    ("number: i64 min - 1", b"-9223372036854775809"),
    ("number: i64 max + 1", b"9223372036854775808"),
    ("number: u64 max + 1", b"18446744073709551616"),
    (
        "number: 40 digits",
        b"1234567890123456789012345678901234567890",
    ),
    ("number: -0", b"-0"),
    ("number: 5e-324", b"5e-324"),
    ("number: leading zero", b"0123"),
    ("number: string 1e400", b"\"1e400\""),
    ("number: string NaN", b"\"NaN\""),
    ("number: string inf", b"\"inf\""),
    ("number: string u64 max + 1", b"\"18446744073709551616\""),
    ("utf8: invalid byte", b"\"a\xffb\""),
    ("utf8: overlong", b"\"\xc0\xaf\""),
    ("utf8: encoded surrogate", b"\"\xed\xa0\x80\""),
    ("utf8: truncated sequence", b"\"\xe2\x82\""),
    ("utf8: lone continuation", b"\"\x80\""),
    ("escape: lone surrogate", b"\"\\ud800\""),
    ("escape: reversed surrogates", b"\"\\udc00\\ud800\""),
    ("escape: nul", b"\"a\\u0000b\""),
    ("escape: invalid", b"\"\\x41\""),
    ("string: raw control character", b"\"a\x01b\""),
    ("string: unterminated", b"\"abc"),
    ("json: trailing comma", b"{\"a\":1,}"),
    ("json: single quotes", b"'x'"),
    ("json: bare word", b"abc"),
    ("json: empty", b""),
];

/// A few MB of one string: ASCII, multi-byte, escapes, or digits.
fn huge_string(rng: &mut Rng) -> (&'static str, Vec<u8>) {
    let mb = 1 + rng.below(5);
    let n = mb << 20;
    let (name, unit): (&str, &[u8]) = *rng.pick(&[
        ("huge: ascii string", b"x".as_slice()),
        ("huge: multi-byte string", "é✈".as_bytes()),
        ("huge: escaped string", br"\n\u00e9".as_slice()),
        ("huge: digit string", b"9".as_slice()),
    ]);
    let mut out = Vec::with_capacity(n + 2);
    out.push(b'"');
    while out.len() < n {
        out.extend_from_slice(unit);
    }
    out.push(b'"');
    (name, out)
}

/// `depth` levels of arrays, objects or both, around a scalar.
fn deep(kind: usize, depth: usize) -> (&'static str, Vec<u8>) {
    let (name, open, close): (&str, &[u8], &[u8]) = match kind % 3 {
        0 => ("deep: arrays", b"[", b"]"),
        1 => ("deep: objects", b"{\"a\":", b"}"),
        _ => ("deep: arrays and objects", b"[{\"a\":", b"}]"),
    };
    let mut out = Vec::with_capacity(depth * (open.len() + close.len()) + 1);
    for _ in 0..depth {
        out.extend_from_slice(open);
    }
    out.push(b'1');
    for _ in 0..depth {
        out.extend_from_slice(close);
    }
    (name, out)
}

/// One mutated record: its category, where, and its bytes.
struct Mutant {
    category: &'static str,
    detail: String,
    bytes: Vec<u8>,
}

fn mutate(rng: &mut Rng, record: &Value, all_paths: &[Vec<Step>]) -> Mutant {
    let path = rng.pick(all_paths);
    let at = path_text(path);
    // Weights: most cases are cheap tree and token edits; a few are MB-sized.
    let (category, bytes) = match rng.below(100) {
        0..=24 => {
            // Remove the field (or array element) at `path`; the root cannot be removed, so
            // it loses a random top-level field instead.
            let mut v = record.clone();
            let (parent, last) = match path.split_last() {
                Some((last, parent)) => (parent.to_vec(), last.clone()),
                None => {
                    let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                    (Vec::new(), Step::Key(rng.pick(&keys).clone()))
                }
            };
            match (node_mut(&mut v, &parent), last) {
                (Value::Object(m), Step::Key(k)) => {
                    m.remove(&k);
                }
                (Value::Array(a), Step::Index(i)) => {
                    a.remove(i);
                }
                _ => unreachable!("a path step matches its parent"),
            }
            ("remove field", serde_json::to_vec(&v).unwrap())
        }
        25..=59 => {
            let (category, value) = replacement(rng);
            let mut v = record.clone();
            *node_mut(&mut v, path) = value;
            (category, serde_json::to_vec(&v).unwrap())
        }
        60..=64 => {
            let mut v = record.clone();
            let node = node_mut(&mut v, path);
            *node = if rng.below(2) == 0 {
                Value::Array(vec![node.take()])
            } else {
                serde_json::json!({ "value": node.take() })
            };
            ("wrap in array or object", serde_json::to_vec(&v).unwrap())
        }
        65..=69 => {
            // A key repeated in its object (serde refuses duplicate fields it knows).
            let node = path.iter().fold(record, |v, step| match step {
                Step::Key(k) => &v[k.as_str()],
                Step::Index(i) => &v[*i],
            });
            let Value::Object(m) = node else {
                return mutate(rng, record, all_paths);
            };
            let Some((k, x)) = m.iter().next() else {
                return mutate(rng, record, all_paths);
            };
            let text = serde_json::to_string(node).unwrap();
            let dup = format!(
                "{{{}:{},{}",
                serde_json::to_string(k).unwrap(),
                serde_json::to_string(x).unwrap(),
                &text[1..]
            );
            ("duplicate key", splice(record, path, dup.as_bytes()))
        }
        70..=93 => {
            let (category, token) = *rng.pick(TOKENS);
            (category, splice(record, path, token))
        }
        94..=95 => {
            let (category, text) = huge_string(rng);
            (category, splice(record, path, &text))
        }
        96..=98 => {
            let kind = rng.below(3);
            let (category, text) = deep(kind, 10_000);
            (category, splice(record, path, &text))
        }
        _ => {
            // Cut the record short: the page around it no longer parses.
            let mut text = serde_json::to_vec(record).unwrap();
            let cut = rng.below(text.len());
            text.truncate(cut);
            ("truncated record", text)
        }
    };
    Mutant {
        category,
        detail: at,
        bytes,
    }
}

// ---- Running cases ----------------------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct Tally {
    kept: usize,
    quarantined: usize,
    rejected: usize,
}

#[derive(Default)]
struct Report {
    cases: usize,
    records: usize,
    /// Pages with one mutated record beside untouched ones: what became of that record.
    record_cases: Tally,
    /// Pages whose envelope or bytes were mutated: what became of their records.
    page_cases: Tally,
    mutated_pages: usize,
    by_category: BTreeMap<String, Tally>,
    failures: Vec<String>,
    slowest: (Duration, String),
}

impl Report {
    /// Runs one page; the record at `mutated` (if any) may go anywhere, every other record
    /// must be kept. `expected_records` is the page's record count when it parses.
    fn check(
        &mut self,
        api: Api,
        category: &str,
        detail: &str,
        body: &[u8],
        mutated: Option<usize>,
        expected_records: Option<usize>,
    ) {
        self.cases += 1;
        let name = format!("{api:?} {category} at {detail} ({} bytes)", body.len());
        let started = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| run_page(api, body)));
        let elapsed = started.elapsed();
        if elapsed > self.slowest.0 {
            self.slowest = (elapsed, name.clone());
        }
        if elapsed > CASE_LIMIT {
            self.failures.push(format!("{name}: took {elapsed:?}"));
        }
        let mut tally = Tally::default();
        match outcome {
            Err(_) => self.failures.push(format!("{name}: panicked")),
            Ok(Outcome::Rejected(reason)) => {
                tally.rejected += 1;
                if reason.trim().is_empty() {
                    self.failures
                        .push(format!("{name}: page rejected without a reason"));
                }
            }
            Ok(Outcome::Parsed(results)) => {
                self.records += results.len();
                if let Some(n) = expected_records
                    && results.len() != n
                {
                    self.failures
                        .push(format!("{name}: {} records, expected {n}", results.len()));
                }
                for (i, r) in results.iter().enumerate() {
                    match r {
                        Ok(()) if Some(i) == mutated => tally.kept += 1,
                        Err(reason) if Some(i) == mutated => {
                            tally.quarantined += 1;
                            if reason.trim().is_empty() {
                                self.failures
                                    .push(format!("{name}: empty quarantine reason"));
                            }
                        }
                        Ok(()) => {}
                        Err(reason) => self.failures.push(format!(
                            "{name}: untouched record {i} quarantined: {reason}"
                        )),
                    }
                }
                if mutated.is_none() {
                    // A page-level mutation: count the page's own records.
                    tally.kept += results.iter().filter(|r| r.is_ok()).count();
                    tally.quarantined += results.iter().filter(|r| r.is_err()).count();
                }
            }
        }
        let totals = if mutated.is_some() {
            &mut self.record_cases
        } else {
            self.mutated_pages += 1;
            &mut self.page_cases
        };
        for t in [
            totals,
            self.by_category
                .entry(format!("{api:?} {category}"))
                .or_default(),
        ] {
            t.kept += tally.kept;
            t.quarantined += tally.quarantined;
            t.rejected += tally.rejected;
        }
    }

    fn print(&self, title: &str) {
        let (r, p) = (self.record_cases, self.page_cases);
        println!(
            "{title}: {} pages run, {} records decoded in them; slowest page {:?} ({})\n  \
             pages with a mutated record: {} (that record kept {}, quarantined {}; \
             page rejected {})\n  \
             mutated pages: {} (their records kept {}, quarantined {}; page rejected {})",
            self.cases,
            self.records,
            self.slowest.0,
            self.slowest.1,
            r.kept + r.quarantined + r.rejected,
            r.kept,
            r.quarantined,
            r.rejected,
            self.mutated_pages,
            p.kept,
            p.quarantined,
            p.rejected,
        );
        for (category, t) in &self.by_category {
            println!(
                "  {category:<48} kept {:>4}  quarantined {:>4}  page rejected {:>4}",
                t.kept, t.quarantined, t.rejected
            );
        }
    }

    fn assert_clean(&self) {
        assert!(
            self.failures.is_empty(),
            "{} failures, first ones:\n{}",
            self.failures.len(),
            self.failures
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Random record mutations, each between two untouched records of the same source.
fn record_mutations(api: Api, seed: u64, count: u64) -> Report {
    let mut rng = Rng(seed);
    let records = api.base_records();
    let texts: Vec<Vec<u8>> = records
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();
    let mut report = Report::default();
    // Unmutated, every example record is kept: otherwise the checks below prove nothing.
    let all: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    report.check(
        api,
        "unmutated",
        "page",
        &api.page(&all),
        None,
        Some(all.len()),
    );
    let all_paths: Vec<Vec<Vec<Step>>> = records
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            paths(r, &mut Vec::new(), &mut out);
            out
        })
        .collect();
    for _ in 0..count {
        let which = rng.below(records.len());
        let mutant = mutate(&mut rng, &records[which], &all_paths[which]);
        let before = &texts[(which + 1) % texts.len()];
        let after = &texts[(which + texts.len() - 1) % texts.len()];
        let body = api.page(&[before, &mutant.bytes, after]);
        report.check(
            api,
            mutant.category,
            &mutant.detail,
            &body,
            Some(1),
            (mutant.category != "truncated record").then_some(3),
        );
    }
    report
}

/// Mutations of the page around intact records: the envelope, the record list, the bytes.
fn page_mutations(api: Api, report: &mut Report) {
    let records = api.base_records();
    let texts: Vec<Vec<u8>> = records
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();
    let all: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let good = api.page(&all);
    let n = all.len();
    let key = api.records_key();

    // Non-object records beside good ones: each is quarantined, the good ones kept.
    for (what, odd) in [
        ("record: null", "null"),
        ("record: number", "5"),
        ("record: string", "\"x\""),
        ("record: array", "[1,{}]"),
        ("record: empty object", "{}"),
        ("record: info null", "{\"info\":null}"),
        ("record: info string", "{\"info\":\"x\"}"),
    ] {
        let body = api.page(&[all[0], odd.as_bytes(), all[n - 1]]);
        report.check(api, what, "records[1]", &body, Some(1), Some(3));
    }

    // The envelope: records list and metadata of other types. The records, where there are
    // any, are kept; the page may be rejected (its envelope is not lenient) but must not
    // panic.
    let bodies: Vec<(&str, String)> = vec![
        ("records: null", format!(r#"{{"{key}":null}}"#)),
        ("records: object", format!(r#"{{"{key}":{{"a":1}}}}"#)),
        ("records: string", format!(r#"{{"{key}":"x"}}"#)),
        ("records: empty", format!(r#"{{"{key}":[]}}"#)),
        ("records: missing", r#"{"_metadata":{"count":0}}"#.into()),
        ("envelope: array", "[]".into()),
        ("envelope: null", "null".into()),
        ("envelope: number", "5".into()),
    ];
    for (what, body) in bodies {
        report.check(api, what, "page", body.as_bytes(), None, None);
    }
    let record_list = &good[good.iter().position(|&b| b == b'[').unwrap()..good.len() - 1];
    let list = String::from_utf8(record_list.to_vec()).unwrap();
    for (what, metadata) in [
        ("metadata: count string", r#"{"count":"3"}"#),
        ("metadata: count -1", r#"{"count":-1}"#),
        ("metadata: count 1e400", r#"{"count":1e400}"#),
        ("metadata: count huge", r#"{"count":18446744073709551616}"#),
        ("metadata: null", "null"),
        ("metadata: array", "[]"),
        (
            "metadata: partialResult string",
            r#"{"shardsStatusResult":{"partialResult":"true"}}"#,
        ),
        (
            "metadata: unknown keys",
            r#"{"next":{"href":"x"},"x":[1,{}]}"#,
        ),
    ] {
        let body = format!(r#"{{"_metadata":{metadata},"{key}":{list}}}"#);
        report.check(api, what, "_metadata", body.as_bytes(), None, Some(n));
    }

    // Bytes around the page.
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&good);
    let mut spaced = b" \n\t".to_vec();
    spaced.extend_from_slice(&good);
    spaced.extend_from_slice(b"\r\n ");
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"{}");
    let mut nul = good.clone();
    nul.push(0);
    for (what, body, records) in [
        ("bytes: byte order mark", bom, None),
        ("bytes: surrounding whitespace", spaced, Some(n)),
        ("bytes: trailing value", trailing, None),
        ("bytes: trailing NUL", nul, None),
        ("bytes: empty body", Vec::new(), Some(0)),
        ("bytes: whitespace body", b" \n ".to_vec(), Some(0)),
    ] {
        report.check(api, what, "page", &body, None, records);
    }
    // Cut at every 97th byte: rejected (or, cut to nothing, an empty page), never a panic.
    for cut in (0..good.len()).step_by(97) {
        report.check(
            api,
            "bytes: truncated page",
            &format!("byte {cut}"),
            &good[..cut],
            None,
            None,
        );
    }
    // Very wide lists: 100,000 empty elements of a child list in one record.
    let mut wide = records[0].clone();
    let (field, path) = match api {
        Api::Messaging => ("messageRecords", vec!["messageRecords"]),
        Api::Chat => ("transcript.lines", vec!["transcript", "lines"]),
    };
    let node = path.iter().fold(&mut wide, |v, k| &mut v[*k]);
    *node = Value::String(MARKER.into());
    let text = serde_json::to_string(&wide).unwrap();
    let many = format!("[{}{{}}]", "{},".repeat(99_999));
    let text = text.replace(&format!("\"{MARKER}\""), &many);
    let body = api.page(&[all[n - 1], text.as_bytes(), all[0]]);
    report.check(
        api,
        "wide: 100,000 child elements",
        field,
        &body,
        Some(1),
        Some(3),
    );
    // Nesting far deeper than serde_json's recursion limit, at the top of the page and as a
    // whole record.
    for (depth, kind) in [(10_000, 0), (10_000, 1), (100_000, 2)] {
        let (what, text) = deep(kind, depth);
        let body = api.page(&[all[0], &text, all[n - 1]]);
        report.check(
            api,
            what,
            &format!("records[1], {depth} levels"),
            &body,
            Some(1),
            Some(3),
        );
        let mut body = br#"{"_metadata":"#.to_vec();
        body.extend_from_slice(&text);
        body.extend_from_slice(format!(r#","{key}":{list}}}"#).as_bytes());
        report.check(
            api,
            what,
            &format!("_metadata, {depth} levels"),
            &body,
            None,
            None,
        );
    }
}

fn run(api: Api) {
    let seed = env_number("LPDROP_MUTATION_SEED", 0x1d_d20f);
    let count = env_number("LPDROP_MUTATIONS", 1000);
    let started = Instant::now();
    let mut report = record_mutations(api, seed ^ api as u64, count);
    page_mutations(api, &mut report);
    report.print(&format!(
        "{api:?} (seed {seed:#x}, {:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    report.assert_clean();
}

#[test]
fn mutated_messaging_records_are_kept_or_quarantined_never_a_panic() {
    run(Api::Messaging);
}

#[test]
fn mutated_chat_records_are_kept_or_quarantined_never_a_panic() {
    run(Api::Chat);
}

/// Specific hostile values, with the outcome each must have.
#[test]
fn hostile_values_have_the_documented_outcome() {
    let records = Api::Messaging.base_records();
    let record = &records[0];
    let good = serde_json::to_vec(&records[1]).unwrap();
    let at = |path: &[&str], bytes: &[u8]| -> Outcome {
        let path: Vec<Step> = path.iter().map(|k| Step::Key(k.to_string())).collect();
        let mutated = splice(record, &path, bytes);
        run_page(
            Api::Messaging,
            &Api::Messaging.page(&[&good, &mutated, &good]),
        )
    };
    let quarantined = |outcome: Outcome, needle: &str| match outcome {
        Outcome::Parsed(r) => {
            assert!(r[0].is_ok() && r[2].is_ok(), "{r:?}");
            let reason = r[1].clone().unwrap_err();
            assert!(reason.contains(needle), "{reason}");
        }
        other => panic!("expected a quarantined record, got {other:?}"),
    };
    let kept = |outcome: Outcome| assert_eq!(outcome, Outcome::Parsed(vec![Ok(()); 3]));
    let rejected = |outcome: Outcome| {
        assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
    };

    // Out-of-range numbers: the record, not the page, is refused, and the reason names the
    // field.
    quarantined(at(&["info", "startTimeL"], b"1e400"), "info.startTimeL");
    quarantined(at(&["info", "mcs"], b"-9223372036854775809"), "info.mcs");
    quarantined(at(&["info", "mcs"], b"18446744073709551616"), "info.mcs");
    quarantined(at(&["info", "csatRate"], b"\"NaN\""), "info.csatRate");
    // Placeholders are "no value": fine for a plain field, a missing key for the id.
    kept(at(&["info", "mcs"], b"-1"));
    kept(at(&["info", "latestSkillId"], b"\"\""));
    kept(at(&["info", "endTimeL"], b"\"null\""));
    quarantined(
        at(&["info", "conversationId"], b"\"null\""),
        "conversationId",
    );
    quarantined(at(&["info", "conversationId"], b"\"\""), "conversationId");
    quarantined(at(&["info", "startTimeL"], b"-1"), "startTimeL");
    // Nesting deeper than serde_json's recursion limit (128): refused cleanly where the value
    // is read, skipped where it is not.
    let (_, nested) = deep(0, 10_000);
    quarantined(at(&["info", "device"], &nested), "info.device");
    quarantined(at(&["sdes"], &nested), "sdes");
    kept(at(&["notAField"], &nested));
    // Not JSON at all: the page cannot be read, so it is rejected whole (the pipeline fails it
    // with the reason; nothing is written).
    rejected(at(&["info", "csatRate"], b"NaN"));
    rejected(at(&["info", "mcs"], b"Infinity"));
    // Invalid UTF-8 inside one record quarantines that record only, even inside a field the
    // decoder never reads, and the reason names the bad byte; the records beside it are kept.
    // The client's envelope check (`parse_envelope`) accepts the page.
    quarantined(
        at(&["info", "device"], b"\"\xff\""),
        "invalid UTF-8: byte 0xFF at offset",
    );
    quarantined(at(&["notAField"], b"\"a\xc0\xafb\""), "(2 bad bytes in it)");
    quarantined(
        at(&["info", "mcs"], b"\"\xe2\x82\""),
        "invalid UTF-8: byte 0xE2",
    );
    let mutated = splice(
        record,
        &[Step::Key("info".into()), Step::Key("device".into())],
        b"\"\xff\"",
    );
    assert!(parse_envelope(&Api::Messaging.page(&[&good, &mutated, &good])).is_ok());
    // Invalid UTF-8 outside any record (in the envelope) is repaired too; the page is read.
    let mut page = Api::Messaging.page(&[&good, &good]);
    let at_start = page.iter().position(|&b| b == b'{').unwrap();
    page.splice(
        at_start + 1..at_start + 1,
        b"\"x\":\"\xff\",".iter().copied(),
    );
    assert_eq!(
        run_page(Api::Messaging, &page),
        Outcome::Parsed(vec![Ok(()); 2])
    );
    // A lone surrogate escape is valid JSON text but not a string: quarantined.
    quarantined(at(&["info", "device"], b"\"\\ud800\""), "info.device");
}
