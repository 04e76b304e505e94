//! The webhook sender against a real HTTP receiver on loopback that checks every signature and
//! fails some requests on purpose.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use lpdrop_emulator::webhooks::{self, LedgerLine};
use lpdrop_emulator::{Dataset, EmulatorConfig, WebhookConfig, WebhookFaults, WebhookReport};
use lpdrop_liveperson::webhook::signature::{self, Algorithm, Encoding};
use lpdrop_liveperson::webhook::{ACCOUNT_HEADER, CLIENT_HEADER};
use serde_json::Value;

const SECRET: &str = "rl9hacst6kqilbofup64n11ga3";
const CLIENT: &str = "81fad476-88af-4d08-bc0e-20bc69439ed4";
const ACCOUNT: &str = "12345678";

/// What the receiver answers to its `n`-th request (0-based), `elapsed` after it started.
type Policy = Box<dyn Fn(usize, Duration) -> StatusCode + Send + Sync>;

struct Receiver {
    started: Instant,
    policy: Policy,
    log: Mutex<Vec<Delivery>>,
}

struct Delivery {
    body: Bytes,
    status: StatusCode,
    signed: bool,
    headers_ok: bool,
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed =
        header(signature::HEADER).is_some_and(|h| signature::verify(SECRET, &body, h).is_ok());
    let headers_ok = header(ACCOUNT_HEADER) == Some(ACCOUNT)
        && header(CLIENT_HEADER) == Some(CLIENT)
        && header("content-type") == Some("application/json");
    let mut log = r.log.lock().unwrap();
    let status = if signed {
        (r.policy)(log.len(), r.started.elapsed())
    } else {
        StatusCode::UNAUTHORIZED
    };
    log.push(Delivery {
        body,
        status,
        signed,
        headers_ok,
    });
    status
}

async fn receiver(policy: Policy) -> (SocketAddr, Arc<Receiver>) {
    let state = Arc::new(Receiver {
        started: Instant::now(),
        policy,
        log: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/hooks/{*rest}", axum::routing::post(hook))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, state)
}

/// Fails about one request in five, with 500 or 503.
fn flaky() -> Policy {
    Box::new(|n, _| match n % 10 {
        3 => StatusCode::INTERNAL_SERVER_ERROR,
        7 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    })
}

fn dataset() -> Dataset {
    Dataset::new(&EmulatorConfig::default())
}

fn config(addr: SocketAddr, name: &str, conversations: u64) -> WebhookConfig {
    let mut c = WebhookConfig::new(
        format!("http://{addr}/hooks/lp?installation=test"),
        SECRET,
        CLIENT,
        ACCOUNT,
    );
    c.conversations = Some(conversations);
    c.first_index = 1_000;
    c.concurrency = 8;
    c.initial_backoff = Duration::from_millis(20);
    c.max_backoff = Duration::from_millis(400);
    c.ledger = Some(ledger_path(name));
    c
}

fn ledger_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "lpdrop-emulator-webhooks-{}-{name}.jsonl",
        std::process::id()
    ))
}

fn read_ledger(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let _ = std::fs::remove_file(path);
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The ledger lines a listener could derive from one body, read as a listener would.
fn lines_of(body: &[u8]) -> Vec<Value> {
    let v: Value = serde_json::from_slice(body).unwrap();
    let mut out = Vec::new();
    for c in v["body"]["changes"].as_array().unwrap() {
        if v["type"] == webhooks::CONVERSATION_TYPE {
            out.push(serde_json::json!({
                "table": "webhook_conversations",
                "conversation_id": c["result"]["convId"],
                "meta_data_last_update_ts": c["result"]["conversationDetails"]["metaDataLastUpdateTs"],
            }));
            continue;
        }
        // The MAIN dialog's id is the conversation id when conversationId is left out.
        let conversation = c.get("conversationId").unwrap_or(&c["dialogId"]);
        let event = &c["event"];
        match event["type"].as_str().unwrap() {
            "ContentEvent" | "RichContentEvent" => out.push(serde_json::json!({
                "table": "webhook_messages", "conversation_id": conversation,
                "dialog_id": c["dialogId"], "seq": c["sequence"],
            })),
            "AcceptStatusEvent" => {
                for seq in event["sequenceList"].as_array().unwrap() {
                    out.push(serde_json::json!({
                        "table": "webhook_message_statuses", "conversation_id": conversation,
                        "dialog_id": c["dialogId"], "seq": seq,
                        "participant_id": c["originatorId"], "status": event["status"],
                    }));
                }
            }
            _ => {}
        }
    }
    out
}

fn conversation_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    let c = &v["body"]["changes"][0];
    let id = c["result"]["convId"]
        .as_str()
        .or_else(|| c["conversationId"].as_str())
        .or_else(|| c["dialogId"].as_str());
    id.unwrap().to_string()
}

/// The checks every run must pass; returns the successful deliveries' bodies in arrival
/// order.
fn check_run(
    receiver: &Receiver,
    report: &WebhookReport,
    ledger: &[Value],
    first: u64,
    n: u64,
) -> Vec<Bytes> {
    let log = receiver.log.lock().unwrap();
    assert!(!log.is_empty());
    assert!(log.iter().all(|d| d.signed), "a body did not verify");
    assert!(log.iter().all(|d| d.headers_ok), "account or client header");
    // A dropped connection may or may not have reached the handler.
    assert!(report.deliveries_attempted as usize >= log.len());
    assert_eq!(report.conversations, n);
    assert_eq!(report.expired, 0);

    // The ledger is the whole ground truth: every line of every notification, once.
    let d = dataset();
    let mut expected = BTreeSet::new();
    let mut notifications = 0u64;
    for index in first..first + n {
        for note in webhooks::notifications(&d, index) {
            notifications += 1;
            for line in note.ledger {
                expected.insert(serde_json::to_string(&line).unwrap());
            }
        }
    }
    let written: Vec<String> = ledger.iter().map(|l| l.to_string()).collect();
    let written_set: BTreeSet<String> = written.iter().cloned().collect();
    assert_eq!(written.len(), written_set.len(), "a ledger line twice");
    let as_values = |set: &BTreeSet<String>| -> BTreeSet<String> {
        set.iter()
            .map(|s| serde_json::from_str::<Value>(s).unwrap().to_string())
            .collect()
    };
    assert_eq!(written_set, as_values(&expected));
    assert_eq!(report.notifications_acked, notifications);

    // Everything in the ledger was delivered (answered 200) at least once.
    let ok: Vec<Bytes> = log
        .iter()
        .filter(|d| d.status == StatusCode::OK)
        .map(|d| d.body.clone())
        .collect();
    let delivered: BTreeSet<String> = ok
        .iter()
        .flat_map(|b| lines_of(b))
        .map(|l| l.to_string())
        .collect();
    let missing: Vec<&String> = written_set.difference(&delivered).collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");

    // Within a conversation, sequences and update times never go back. A redelivery comes
    // right after the first copy and is skipped: a two-change body would seem to go back.
    let mut latest: HashMap<String, (i64, i64, &[u8])> = HashMap::new();
    for body in &ok {
        let v: Value = serde_json::from_slice(body).unwrap();
        let (seq, ts, previous) = latest.entry(conversation_of(body)).or_insert((-1, -1, &[]));
        if *previous == body.as_ref() {
            continue;
        }
        *previous = body.as_ref();
        for c in v["body"]["changes"].as_array().unwrap() {
            if let Some(s) = c["sequence"].as_i64() {
                assert!(s >= *seq, "sequence {s} after {seq}");
                *seq = s;
            }
            if let Some(t) = c["result"]["conversationDetails"]["metaDataLastUpdateTs"].as_i64() {
                assert!(t >= *ts, "update {t} after {ts}");
                *ts = t;
            }
        }
    }
    assert_eq!(latest.len() as u64, n);
    ok
}

#[tokio::test]
async fn flaky_receiver_gets_every_notification_signed_and_in_order() {
    let (addr, receiver) = receiver(flaky()).await;
    let config = config(addr, "flaky", 40);
    let path = config.ledger.clone().unwrap();
    let report = webhooks::send(dataset(), config).await.unwrap();
    let ledger = read_ledger(&path);
    let ok = check_run(&receiver, &report, &ledger, 1_000, 40);
    assert!(report.retries > 0, "{report:?}");
    assert_eq!(
        report.deliveries_attempted as usize,
        receiver.log.lock().unwrap().len()
    );
    assert_eq!(report.duplicates_sent, 0);
    assert_eq!(report.dropped_connections, 0);
    // Nothing is redelivered without a fault: each acknowledged body arrived once with 200.
    assert_eq!(ok.len() as u64, report.notifications_acked);
    // Conversations interleave: some conversation's deliveries are not all in one run.
    let order: Vec<String> = ok.iter().map(|b| conversation_of(b)).collect();
    let runs = order.windows(2).filter(|w| w[0] != w[1]).count() + 1;
    assert!(runs > 40, "only {runs} runs of one conversation");
}

#[tokio::test]
async fn faults_cause_duplicates_and_redeliveries_but_no_loss() {
    let (addr, receiver) = receiver(flaky()).await;
    let mut config = config(addr, "faults", 30);
    config.faults = "duplicate=0.1,delay=0.05:10ms,reorder=0.2,drop=0.05,seed=7"
        .parse::<WebhookFaults>()
        .unwrap();
    let path = config.ledger.clone().unwrap();
    let report = webhooks::send(dataset(), config).await.unwrap();
    let ledger = read_ledger(&path);
    let ok = check_run(&receiver, &report, &ledger, 1_000, 30);
    assert!(report.duplicates_sent > 0, "{report:?}");
    assert!(report.dropped_connections > 0, "{report:?}");
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    for body in &ok {
        *seen.entry(body.as_ref()).or_default() += 1;
    }
    let twice = seen.values().filter(|n| **n > 1).count();
    assert!(twice > 0, "no body arrived twice");
}

#[tokio::test]
async fn a_receiver_down_for_a_second_gets_everything_afterwards() {
    let (addr, receiver) = receiver(Box::new(|_, elapsed| {
        if elapsed < Duration::from_secs(1) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    }))
    .await;
    let mut config = config(addr, "down", 20);
    config.initial_backoff = Duration::from_millis(50);
    config.max_backoff = Duration::from_secs(1);
    // The other signature variant: the receiver accepts every algorithm and encoding.
    config.algorithm = Algorithm::Sha256;
    config.encoding = Encoding::Hex;
    let path = config.ledger.clone().unwrap();
    let started = Instant::now();
    let report = webhooks::send(dataset(), config).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(8));
    let ledger = read_ledger(&path);
    check_run(&receiver, &report, &ledger, 1_000, 20);
    assert!(report.retries >= 8, "{report:?}");
    let log = receiver.log.lock().unwrap();
    assert!(log[0].status == StatusCode::SERVICE_UNAVAILABLE);
    let header = signature::sign(SECRET, &log[0].body, Algorithm::Sha256, Encoding::Hex);
    assert!(header.starts_with("sha256="));
}

#[tokio::test]
async fn notifications_expire_once_the_retention_runs_out() {
    let (addr, receiver) = receiver(Box::new(|_, _| StatusCode::INTERNAL_SERVER_ERROR)).await;
    let mut config = config(addr, "expire", 2);
    // Attempts at 0, 10 and 30 ms; the next would come after 70 ms, past the retention.
    config.retention = Duration::from_millis(60);
    config.initial_backoff = Duration::from_millis(10);
    let path = config.ledger.clone().unwrap();
    let report = webhooks::send(dataset(), config).await.unwrap();
    let d = dataset();
    let total: u64 = (1_000..1_002)
        .map(|i| webhooks::notifications(&d, i).len() as u64)
        .sum();
    assert_eq!(report.expired, total);
    assert_eq!(report.notifications_acked, 0);
    assert_eq!(report.conversations, 2);
    // Exactly three per notification on an idle machine; a slow one may fit fewer in.
    let attempts = report.deliveries_attempted;
    assert!(
        (2 * total..=3 * total).contains(&attempts),
        "{attempts} for {total}"
    );
    assert_eq!(report.retries, attempts - total);
    assert_eq!(receiver.log.lock().unwrap().len() as u64, attempts);
    assert!(read_ledger(&path).is_empty());
}

#[tokio::test]
async fn the_rate_spaces_the_sends_out() {
    let (addr, _receiver) = receiver(Box::new(|_, _| StatusCode::CREATED)).await;
    let mut config = config(addr, "rate", 2);
    config.rate = Some(200.0);
    config.ledger = None;
    let d = dataset();
    let events: usize = (1_000..1_002)
        .flat_map(|i| webhooks::notifications(&d, i))
        .map(|n| n.changes)
        .sum();
    let started = Instant::now();
    let report = webhooks::send(dataset(), config).await.unwrap();
    let least = Duration::from_secs_f64((events - 2) as f64 / 200.0);
    assert!(
        started.elapsed() >= least,
        "{:?} < {least:?}",
        started.elapsed()
    );
    // 201 is a success too.
    assert_eq!(report.events_sent as usize, events);
}

#[tokio::test]
async fn a_streaming_sender_stops_on_request() {
    let (addr, receiver) = receiver(Box::new(|_, _| StatusCode::OK)).await;
    let mut config = config(addr, "stream", 0);
    config.conversations = None;
    let path = config.ledger.clone().unwrap();
    let sender = lpdrop_emulator::WebhookSender::start(dataset(), config).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sender.is_finished());
    let report = sender.stop().await;
    assert!(report.notifications_acked > 0);
    let ledger = read_ledger(&path);
    assert!(!ledger.is_empty());
    assert!(receiver.log.lock().unwrap().len() as u64 >= report.notifications_acked);
}

#[test]
fn ledger_lines_have_the_documented_shape() {
    let line = LedgerLine::Status {
        conversation_id: "c".into(),
        dialog_id: "d".into(),
        seq: 3,
        participant_id: "p".into(),
        status: "READ".into(),
    };
    assert_eq!(
        serde_json::to_value(&line).unwrap(),
        serde_json::json!({"table": "webhook_message_statuses", "conversation_id": "c",
                           "dialog_id": "d", "seq": 3, "participant_id": "p", "status": "READ"})
    );
}

/// Every key path of a JSON value (array elements merged), such as `body.changes[].event.type`.
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let path = format!("{prefix}.{k}");
                out.insert(path.clone());
                key_paths(child, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/liveperson-docs")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Our bodies use no key the vendor's examples do not, and the examples' keys of each event
/// kind all appear (`message` aside: a hosted file's fields are from the Send API docs).
#[test]
fn payload_keys_are_the_vendors() {
    let vendor_files = [
        "webhook-contentevent-example.json",
        "webhooks/conversation-open-with-dialogs.json",
        "webhooks/signed-conversation-close.json",
        "webhooks/agent-read-seq1.json",
        "webhooks/agent-typing-composing.json",
        "webhooks/agent-text-seq2.json",
        "webhooks/signed-chatstate-pause.json",
    ];
    let mut vendor = BTreeSet::new();
    for f in vendor_files {
        key_paths(&fixture(f), "", &mut vendor);
    }
    let d = dataset();
    let mut ours = BTreeSet::new();
    for index in 0..300 {
        for n in webhooks::notifications(&d, index) {
            key_paths(&serde_json::from_slice(&n.body).unwrap(), "", &mut ours);
        }
    }
    let documented_elsewhere = |p: &str| {
        // RichContentEvent.content (a structured-content card) and a hosted file's message.
        p.starts_with(".body.changes[].event.content")
            || p.starts_with(".body.changes[].event.message.")
    };
    let unknown: Vec<&String> = ours
        .iter()
        .filter(|p| !vendor.contains(*p) && !documented_elsewhere(p))
        .collect();
    assert!(
        unknown.is_empty(),
        "keys the vendor never sends: {unknown:?}"
    );
    let missing: Vec<&String> = vendor.difference(&ours).collect();
    assert!(missing.is_empty(), "vendor keys never sent: {missing:?}");
}
