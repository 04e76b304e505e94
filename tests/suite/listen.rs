//! `lpdrop listen` end to end: the vendor's notifications through the real endpoint, and the
//! emulator's webhook sender (duplicates, reordering, dropped connections) against listeners
//! killed mid-stream, every drop read back and compared with what was sent.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use lpdrop_liveperson::webhook::signature::{Algorithm, Encoding, sign};
use lpdrop_testkit::cli::{Spawned, committed_drops, output_text, run};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::lpdrop;

pub(crate) const SECRET: &str = "rl9hacst6kqilbofup64n11ga3";
const ACCOUNT: &str = "42257269";
pub(crate) const CLIENT: &str = "81fad476-88af-4d08-bc0e-20bc69439ed4";

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/liveperson-docs/webhooks")
}

/// `lpdrop listen` on `addr` into `out`, with `spool`; waits for it to listen.
pub(crate) fn listen(
    addr: &str,
    out: &Path,
    spool: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Spawned, SocketAddr) {
    let mut cmd = lpdrop();
    cmd.args(["listen", "--addr", addr, "--out"])
        .arg(out)
        .arg("--spool")
        .arg(spool)
        .args(extra)
        .env("LP_ACCOUNT_ID", ACCOUNT)
        .env("LP_WEBHOOK_CLIENT_ID", CLIENT)
        .env("LP_WEBHOOK_CLIENT_SECRET", SECRET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Spawned::new(cmd);
    let line = child.wait_for("Listening for LivePerson webhooks", Duration::from_secs(30));
    let url = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://").or(w.strip_prefix("https://")))
        .expect("the listening line names its address");
    (child, url.parse().expect("an address"))
}

/// One HTTP/1.1 request; the status code.
pub(crate) fn post(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> u16 {
    let mut s = TcpStream::connect(addr).expect("the listener accepts connections");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A refused body may be answered before it is all sent: the write may then fail.
    let _ = s.write_all(body);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

pub(crate) fn signed(body: &[u8]) -> String {
    sign(SECRET, body, Algorithm::Sha1, Encoding::Base64)
}

/// Every row of `column`s of `table` over every committed drop under `out`, as text.
pub(crate) fn rows(out: &Path, table: &str, columns: &[&str]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for drop in committed_drops(out) {
        let dir = drop.join("parquet").join(table);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for file in entries {
            let file = std::fs::File::open(file.unwrap().path()).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                for i in 0..batch.num_rows() {
                    let row = columns
                        .iter()
                        .map(|c| {
                            let a = batch.column_by_name(c).unwrap_or_else(|| panic!("{c}"));
                            if a.is_null(i) {
                                "NULL".to_string()
                            } else if let Some(s) = a.as_string_opt::<i32>() {
                                s.value(i).to_string()
                            } else if let Some(n) = a.as_primitive_opt::<Int64Type>() {
                                n.value(i).to_string()
                            } else {
                                let t =
                                    a.as_primitive::<arrow::datatypes::TimestampMillisecondType>();
                                t.value(i).to_string()
                            }
                        })
                        .collect();
                    found.push(row);
                }
            }
        }
    }
    found
}

fn verify_all(out: &Path) -> usize {
    let drops = committed_drops(out);
    for drop in &drops {
        let result = run(lpdrop().arg("verify").arg(drop));
        assert!(result.status.success(), "{}", output_text(&result));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(drop.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["source"]["api"], "webhooks");
        assert_eq!(manifest["source"]["time_basis"], "received");
    }
    drops.len()
}

/// The vendor's notifications, each delivered twice, through the real endpoint; refusals for
/// what LivePerson would never send; one drop on SIGTERM, and nothing more when everything is
/// delivered again to a restarted listener.
#[test]
fn vendor_notifications_become_one_drop_and_redeliveries_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (out, spool) = (dir.path().join("out"), dir.path().join("spool"));
    let (child, addr) = listen("127.0.0.1:0", &out, &spool, &["--roll-every", "1h"], &[]);

    let vectors: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("signatures.json")).unwrap())
            .unwrap();
    let mut bodies = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".json") && name != "signatures.json" {
            bodies.push((name, std::fs::read(&path).unwrap()));
        }
    }
    bodies.sort();
    assert_eq!(bodies.len(), 12);
    let deliver = |addr: SocketAddr| {
        for (name, body) in &bodies {
            // The vendor's own signature and headers where it published them.
            let vendor = vectors["vendor_vectors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["file"] == name.as_str());
            let signature = match vendor {
                Some(v) => v["expected"].as_str().unwrap().to_string(),
                None => signed(body),
            };
            let headers = [
                ("X-LivePerson-Signature", signature.as_str()),
                ("X-LivePerson-Account-Id", ACCOUNT),
                ("X-LivePerson-Client-Id", CLIENT),
            ];
            for path in ["/", "/webhooks/ms.MessagingEventNotification.ContentEvent"] {
                assert_eq!(post(addr, "POST", path, &headers, body), 200, "{name}");
            }
        }
    };
    deliver(addr);

    // Refused, with nothing stored.
    let body = &bodies[0].1;
    let good = signed(body);
    let mut flipped = body.clone();
    flipped[10] ^= 1;
    assert_eq!(post(addr, "POST", "/", &[], body), 401, "unsigned");
    assert_eq!(
        post(
            addr,
            "POST",
            "/",
            &[("X-LivePerson-Signature", &good)],
            &flipped
        ),
        401
    );
    assert_eq!(
        post(
            addr,
            "POST",
            "/",
            &[
                ("X-LivePerson-Signature", &good),
                ("X-LivePerson-Account-Id", "1")
            ],
            body
        ),
        401
    );
    assert_eq!(
        post(
            addr,
            "POST",
            "/",
            &[
                ("X-LivePerson-Signature", &good),
                ("x-liveperson-client-id", "other")
            ],
            body
        ),
        401
    );
    let big = vec![b' '; (1 << 20) + 1];
    assert_eq!(
        post(
            addr,
            "POST",
            "/",
            &[("X-LivePerson-Signature", &signed(&big))],
            &big
        ),
        413
    );
    assert_eq!(post(addr, "PUT", "/", &[], b""), 405);
    assert_eq!(
        post(addr, "GET", "/", &[], b""),
        200,
        "a load balancer's health check"
    );
    // Signed but not a documented notification: kept, answered 200, once however often sent.
    let odd = br#"{"kind":"notification","type":"ms.SomethingNew","body":{}}"#;
    for _ in 0..2 {
        assert_eq!(
            post(
                addr,
                "POST",
                "/",
                &[("X-LivePerson-Signature", &signed(odd))],
                odd
            ),
            200
        );
    }

    child.signal("TERM");
    let (status, lines) = child.wait(Duration::from_secs(60));
    assert!(status.success(), "{lines:#?}");
    assert_eq!(verify_all(&out), 1);

    // Content and rich-content events: the three of the documented conversation, and the emoji.
    let messages = rows(
        &out,
        "webhook_messages",
        &[
            "conversation_id",
            "dialog_id",
            "seq",
            "sent_by",
            "content_type",
            "text",
        ],
    );
    let keys: BTreeSet<(String, String)> = messages
        .iter()
        .map(|r| (r[0].clone(), r[2].clone()))
        .collect();
    assert_eq!(messages.len(), keys.len(), "no message twice");
    assert_eq!(
        keys,
        [
            ("5491244f-e462-4c63-bf4e-faf4b2d3e7b5", "0"),
            ("5491244f-e462-4c63-bf4e-faf4b2d3e7b5", "2"),
            ("5491244f-e462-4c63-bf4e-faf4b2d3e7b5", "3"),
            ("b8b83fe9-75f0-46f2-baaa-2930f7192cfb", "4"),
        ]
        .iter()
        .map(|(c, s)| (c.to_string(), s.to_string()))
        .collect()
    );
    let emoji = messages.iter().find(|r| r[2] == "4").unwrap();
    assert_eq!(emoji[5], "Merci 👍🏽 — ça marche! 谢谢 été 🎉");
    assert_eq!(
        (emoji[3].as_str(), emoji[4].as_str()),
        ("Consumer", "TEXT_PLAIN")
    );
    let dialog_only = messages.iter().find(|r| r[2] == "2").unwrap();
    assert_eq!(
        dialog_only[0], dialog_only[1],
        "conversation id from the dialog id"
    );
    assert_eq!(dialog_only[3], "Agent");

    let statuses = rows(
        &out,
        "webhook_message_statuses",
        &["seq", "participant_id", "message_delivery_status"],
    );
    assert_eq!(
        statuses,
        vec![vec![
            "0".to_string(),
            "29c3019d-fe0b-5200-afe8-737abfeae4b4".into(),
            "READ".into()
        ]]
    );
    let conversations = rows(
        &out,
        "webhook_conversations",
        &["conversation_id", "status", "skill_id", "end_time"],
    );
    assert_eq!(conversations.len(), 4, "{conversations:?}");
    let closed = conversations.iter().find(|r| r[1] == "CLOSE").unwrap();
    assert_eq!(
        (closed[2].as_str(), closed[3].as_str()),
        ("NULL", "1545399379370")
    );
    // Every notification once in the audit table, chat states included.
    let events = rows(
        &out,
        "webhook_events",
        &["notification_sha256", "event_type"],
    );
    assert_eq!(events.len(), 12);
    assert_eq!(
        events.iter().filter(|r| r[1] == "ChatStateEvent").count(),
        3
    );
    let drop = &committed_drops(&out)[0];
    let quarantine = std::fs::read_to_string(drop.join("quarantine/records.jsonl")).unwrap();
    assert_eq!(quarantine.lines().count(), 1, "{quarantine}");
    assert!(quarantine.contains("ms.SomethingNew"));

    // Everything delivered again, to a new listener on the same spool: nothing new.
    let (child, addr) = listen("127.0.0.1:0", &out, &spool, &["--roll-every", "1h"], &[]);
    deliver(addr);
    child.signal("TERM");
    let (status, lines) = child.wait(Duration::from_secs(60));
    assert!(status.success(), "{lines:#?}");
    assert_eq!(
        committed_drops(&out).len(),
        1,
        "redeliveries publish nothing: {lines:#?}"
    );
}

/// A free loopback port, for a listener that must come back on the same address.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the emulator says it delivered: each table's keys.
pub(crate) fn ledger(path: &Path) -> BTreeMap<String, BTreeSet<Vec<String>>> {
    let mut tables: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = |k: &str| match &v[k] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let table = text("table");
        let key = match table.as_str() {
            "webhook_messages" => vec![text("conversation_id"), text("dialog_id"), text("seq")],
            "webhook_message_statuses" => vec![
                text("conversation_id"),
                text("dialog_id"),
                text("seq"),
                text("participant_id"),
                text("status"),
            ],
            "webhook_conversations" => {
                vec![text("conversation_id"), text("meta_data_last_update_ts")]
            }
            other => panic!("ledger table {other}"),
        };
        assert!(
            tables.entry(table).or_default().insert(key),
            "the ledger repeats {line}"
        );
    }
    tables
}

/// At least 100,000 events from the emulator with duplicates, reordering, delays and dropped
/// connections; one listener dies in the middle of a commit (after a manifest, before its
/// marker), the next is SIGKILLed mid-stream, the third drains the rest and stops on SIGTERM.
/// The committed drops hold every message, status and conversation change the emulator had
/// acknowledged, each exactly once, and `lpdrop verify` accepts every drop.
#[test]
fn killed_listeners_publish_every_acknowledged_event_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (out, spool) = (dir.path().join("out"), dir.path().join("spool"));
    let ledger_file = dir.path().join("ledger.jsonl");
    let addr = format!("127.0.0.1:{}", free_port());
    let rolls = ["--roll-every", "2s", "--roll-events", "20000"];
    // The emulator's account.
    let account = ("LP_ACCOUNT_ID", "12345678");
    // The first listener aborts right after the second drop's manifest, before its marker.
    let (first, _) = listen(
        &addr,
        &out,
        &spool,
        &rolls,
        &[("LPDROP_TEST_CRASH_AT", "manifest:2"), account],
    );

    let mut sender = lpdrop();
    sender
        .args(["emulator", "--port", "0", "--webhook-url"])
        .arg(format!("http://{addr}/webhooks"))
        .args([
            "--webhook-client-id",
            CLIENT,
            "--webhook-conversations",
            "2600",
        ])
        .args([
            "--webhook-concurrency",
            "32",
            "--webhook-max-backoff",
            "500ms",
        ])
        .args([
            "--webhook-faults",
            "duplicate=0.03,reorder=0.1,drop=0.01,delay=0.01:20ms,seed=11",
        ])
        .arg("--webhook-ledger")
        .arg(&ledger_file)
        .env("LPDROP_EMULATOR_WEBHOOK_SECRET", SECRET);
    let sender = Spawned::new(sender);

    let (status, lines) = first.wait(Duration::from_secs(300));
    assert!(
        !status.success(),
        "the crash point stopped the first listener: {lines:#?}"
    );
    let uncommitted = lpdrop_testkit::cli::files_under(&out)
        .iter()
        .filter(|f| f.ends_with("manifest.json"))
        .count()
        - committed_drops(&out).len();
    assert_eq!(uncommitted, 1, "one drop has a manifest and no marker");

    let (second, _) = listen(&addr, &out, &spool, &rolls, &[account]);
    std::thread::sleep(Duration::from_secs(6));
    second.kill();

    let (third, _) = listen(&addr, &out, &spool, &rolls, &[account]);
    let (status, lines) = sender.wait(Duration::from_secs(900));
    assert!(status.success(), "{lines:#?}");
    let summary: serde_json::Value = lines
        .iter()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the sender's summary line");
    assert!(
        summary["events_sent"].as_u64().unwrap() >= 100_000,
        "{summary}"
    );
    assert_eq!(summary["expired"], 0, "{summary}");
    assert!(
        summary["duplicates_sent"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(
        summary["dropped_connections"].as_u64().unwrap() > 0,
        "{summary}"
    );
    third.signal("TERM");
    let (status, lines) = third.wait(Duration::from_secs(120));
    assert!(status.success(), "{lines:#?}");

    let expected = ledger(&ledger_file);
    let got = |table: &str, columns: &[&str]| {
        let rows = rows(&out, table, columns);
        let distinct: BTreeSet<Vec<String>> = rows.iter().cloned().collect();
        assert_eq!(rows.len(), distinct.len(), "{table}: a row twice");
        distinct
    };
    assert_eq!(
        got("webhook_messages", &["conversation_id", "dialog_id", "seq"]),
        expected["webhook_messages"]
    );
    assert_eq!(
        got(
            "webhook_message_statuses",
            &[
                "conversation_id",
                "dialog_id",
                "seq",
                "participant_id",
                "message_delivery_status"
            ]
        ),
        expected["webhook_message_statuses"]
    );
    assert_eq!(
        got(
            "webhook_conversations",
            &["conversation_id", "last_update_time"]
        ),
        expected["webhook_conversations"]
    );
    assert!(verify_all(&out) >= 3);
}

/// `--tls-cert`/`--tls-key`: HTTPS served directly, TLS 1.2 or later; a client that trusts
/// the certificate gets its notification acknowledged and published.
#[tokio::test]
async fn https_is_served_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ca = lpdrop_testkit::make_certificates(&certs);
    let (out, spool) = (dir.path().join("out"), dir.path().join("spool"));
    let cert = certs.join("server.crt").display().to_string();
    let key = certs.join("server.key").display().to_string();
    let (child, addr) = listen(
        "127.0.0.1:0",
        &out,
        &spool,
        &["--roll-every", "1h", "--tls-cert", &cert, "--tls-key", &key],
        &[],
    );
    assert!(child.saw("on https://"));
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap()])
        .build()
        .unwrap();
    let body = std::fs::read(fixtures().join("derived-emoji-text.json")).unwrap();
    let answer = client
        .post(format!("https://localhost:{}/hooks", addr.port()))
        .header("X-LivePerson-Signature", signed(&body))
        .body(body.clone())
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(answer.status(), 200);
    // Plain HTTP to the HTTPS port gets no answer.
    assert!(
        std::panic::catch_unwind(|| post(addr, "POST", "/", &[], &body)).is_err(),
        "plain http is not served"
    );
    child.signal("TERM");
    let (status, lines) = child.wait(Duration::from_secs(60));
    assert!(status.success(), "{lines:#?}");
    assert_eq!(verify_all(&out), 1);
    assert_eq!(
        rows(&out, "webhook_messages", &["seq"]),
        vec![vec!["4".to_string()]]
    );
}

/// `--refetch-closed`: each conversation the webhooks saw close is re-read by id from the
/// batch API by a refetch job, whose messaging drop holds exactly those conversations.
#[test]
fn closed_conversations_are_refetched_from_the_batch_api() {
    let dir = tempfile::tempdir().unwrap();
    let (out, spool) = (dir.path().join("out"), dir.path().join("spool"));
    let queue = dir.path().join("queue.sqlite").display().to_string();
    let (listener, addr) = listen(
        "127.0.0.1:0",
        &out,
        &spool,
        &["--roll-every", "1s", "--refetch-closed"],
        &[("LP_ACCOUNT_ID", "12345678"), ("LPDROP_QUEUE", &queue)],
    );
    let mut sender = lpdrop();
    sender
        .args(["emulator", "--port", "0", "--webhook-url"])
        .arg(format!("http://{addr}/"))
        .args([
            "--webhook-client-id",
            CLIENT,
            "--webhook-conversations",
            "6",
        ])
        .env("LPDROP_EMULATOR_WEBHOOK_SECRET", SECRET);
    let sent = run(&mut sender);
    assert!(sent.status.success(), "{}", output_text(&sent));
    let mut listener = listener;
    listener.wait_for(
        "refetch of closed conversations enqueued",
        Duration::from_secs(60),
    );
    listener.signal("TERM");
    let (status, lines) = listener.wait(Duration::from_secs(60));
    assert!(status.success(), "{lines:#?}");
    let closed: BTreeSet<String> = rows(
        &out,
        "webhook_conversations",
        &["conversation_id", "status"],
    )
    .into_iter()
    .filter(|r| r[1] == "CLOSE")
    .map(|r| r[0].clone())
    .collect();
    assert!(!closed.is_empty(), "the emulator's conversations close");

    let webhook_drops = committed_drops(&out);
    let emulator = crate::RunningEmulator::start(2000);
    let worker = run(crate::with_queue(&queue, emulator.url()).args(["worker", "--once"]));
    assert!(worker.status.success(), "{}", output_text(&worker));
    let refetched: Vec<PathBuf> = committed_drops(&out)
        .into_iter()
        .filter(|d| !webhook_drops.contains(d))
        .collect();
    assert_eq!(refetched.len(), 1, "one refetch drop");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(refetched[0].join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["source"]["api"], "messaging_interactions");
    assert_eq!(manifest["job"]["id"], "1");
    let conversations_file = std::fs::read_dir(refetched[0].join("parquet/conversations"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(conversations_file).unwrap())
            .unwrap()
            .build()
            .unwrap();
    let mut ids = BTreeSet::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch
            .column_by_name("conversation_id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        ids.extend(column.iter().flatten().map(str::to_string));
    }
    assert_eq!(ids, closed);
}

/// The emulator's sender for `conversations` conversations to `addr`, at `rate` events/s.
fn send_from_emulator(addr: SocketAddr, conversations: u32, rate: &str) {
    let mut sender = lpdrop();
    sender
        .args(["emulator", "--port", "0", "--webhook-url"])
        .arg(format!("http://{addr}/"))
        .args(["--webhook-client-id", CLIENT, "--webhook-rate", rate])
        .args(["--webhook-conversations", &conversations.to_string()])
        .env("LPDROP_EMULATOR_WEBHOOK_SECRET", SECRET);
    let sent = run(&mut sender);
    assert!(sent.status.success(), "{}", output_text(&sent));
}

/// `--skill`: the same conversations sent to a listener without a filter and to one keeping
/// one skill, over several rolls: the filtered drops hold exactly the messages of the
/// conversations routed to that skill, including those that came before their skill was
/// known (held in the spool until then).
#[test]
fn skill_filter_keeps_exactly_the_conversations_of_its_skills() {
    let dir = tempfile::tempdir().unwrap();
    let account = [("LP_ACCOUNT_ID", "12345678")];
    let run_listener = |name: &str, extra: &[&str]| -> PathBuf {
        let out = dir.path().join(name);
        let spool = dir.path().join(format!("{name}-spool"));
        let mut args = vec!["--roll-every", "1s"];
        args.extend_from_slice(extra);
        let (listener, addr) = listen("127.0.0.1:0", &out, &spool, &args, &account);
        send_from_emulator(addr, 40, "700");
        listener.signal("TERM");
        let (status, lines) = listener.wait(Duration::from_secs(60));
        assert!(status.success(), "{lines:#?}");
        out
    };
    let all = run_listener("all", &[]);
    let conversations = rows(
        &all,
        "webhook_conversations",
        &["conversation_id", "skill_id"],
    );
    let mut by_skill: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &conversations {
        by_skill
            .entry(r[1].clone())
            .or_default()
            .insert(r[0].clone());
    }
    by_skill.remove("NULL");
    let (skill, kept) = by_skill
        .iter()
        .max_by_key(|(_, ids)| ids.len())
        .map(|(s, ids)| (s.clone(), ids.clone()))
        .expect("the emulator's conversations have skills");
    let every: BTreeSet<String> = conversations.iter().map(|r| r[0].clone()).collect();
    assert!(kept.len() < every.len(), "the skill is not everyone's");
    let messages_of = |out: &Path, ids: &BTreeSet<String>| -> BTreeSet<Vec<String>> {
        rows(
            out,
            "webhook_messages",
            &["conversation_id", "dialog_id", "seq"],
        )
        .into_iter()
        .filter(|r| ids.contains(&r[0]))
        .collect()
    };
    let expected = messages_of(&all, &kept);
    assert!(!expected.is_empty());

    let filtered = run_listener("filtered", &["--skill", &skill]);
    assert!(committed_drops(&filtered).len() >= 2, "several rolls");
    let got = rows(
        &filtered,
        "webhook_messages",
        &["conversation_id", "dialog_id", "seq"],
    );
    let got: BTreeSet<Vec<String>> = got.into_iter().collect();
    assert_eq!(
        got, expected,
        "exactly the messages of the conversations of skill {skill}"
    );
    let events = rows(&filtered, "webhook_events", &["conversation_id"]);
    assert!(
        events.iter().all(|r| kept.contains(&r[0])),
        "no event of another skill"
    );
    for drop in committed_drops(&filtered) {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(drop.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            manifest["source"]["filters"]["skill_ids"][0],
            skill.as_str()
        );
    }
}

/// `config check` covers the listener: the app installation's credentials (the secret never
/// shown, also from the configuration file), the spool, and the certificate.
#[test]
fn config_check_covers_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lpdrop.toml");
    std::fs::write(
        &file,
        "[liveperson]\nwebhook_client_id = \"app-1\"\nwebhook_client_secret = \"hush-hush-42\"\n",
    )
    .unwrap();
    let queue = dir.path().join("q.sqlite").display().to_string();
    let spool = dir.path().join("spool").display().to_string();
    let ok = run(lpdrop()
        .args(["--queue", &queue, "--config"])
        .arg(&file)
        .args(["config", "check", "--spool", &spool]));
    let text = output_text(&ok);
    assert!(ok.status.success(), "{text}");
    assert!(
        text.contains("ok    webhooks     client id app-1, secret set"),
        "{text}"
    );
    assert!(!text.contains("hush-hush-42"), "{text}");

    let missing = run(lpdrop()
        .args(["--queue", &queue, "config", "check", "--spool", &spool])
        .env("LP_WEBHOOK_CLIENT_ID", "app-1"));
    let text = output_text(&missing);
    assert!(!missing.status.success());
    assert!(
        text.contains("FAIL  webhooks     LP_WEBHOOK_CLIENT_SECRET is not set"),
        "{text}"
    );

    let bad_cert = dir.path().join("nothing.pem");
    std::fs::write(&bad_cert, "not a certificate").unwrap();
    let tls = run(lpdrop()
        .args(["--queue", &queue, "--config"])
        .arg(&file)
        .args(["config", "check", "--spool", &spool, "--tls-cert"])
        .arg(&bad_cert)
        .arg("--tls-key")
        .arg(&bad_cert));
    let text = output_text(&tls);
    assert!(!tls.status.success());
    assert!(text.contains("FAIL  webhooks"), "{text}");
}

/// A signed content event of conversation `c-full`, sequence `seq`, about `size` bytes.
fn content_event(seq: usize, size: usize) -> Vec<u8> {
    let text = "x".repeat(size);
    format!(
        r#"{{"kind":"notification","body":{{"changes":[{{"sequence":{seq},"originatorId":"c","originatorMetadata":{{"id":"c","role":"CONSUMER"}},"serverTimestamp":1,"event":{{"type":"ContentEvent","message":"{text}","contentType":"text/plain"}},"conversationId":"c-full","dialogId":"c-full"}}]}},"type":"ms.MessagingEventNotification"}}"#
    )
    .into_bytes()
}

/// A full spool: notifications that cannot be made durable are answered 503 (LivePerson
/// retries them), never 200; once there is room again they are taken, and the drop holds
/// exactly the acknowledged ones. The spool is a small tmpfs in a private mount namespace
/// (needs root, as CI has), filled from outside through `/proc/PID/root`.
#[test]
fn a_full_spool_answers_503_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (out, spool) = (dir.path().join("out"), dir.path().join("spool"));
    std::fs::create_dir_all(&spool).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=2m lpdrop-spool "$0" || exit 97; shift; exec "$@""#)
        .arg(&spool)
        .arg("--")
        .arg(crate::bin())
        .args([
            "listen",
            "--addr",
            "127.0.0.1:0",
            "--roll-every",
            "1h",
            "--out",
        ])
        .arg(&out)
        .arg("--spool")
        .arg(&spool)
        .env("LP_ACCOUNT_ID", ACCOUNT)
        .env("LP_WEBHOOK_CLIENT_ID", CLIENT)
        .env("LP_WEBHOOK_CLIENT_SECRET", SECRET);
    let mut child = Spawned::new(cmd);
    let line = child.wait_for("Listening for LivePerson webhooks", Duration::from_secs(30));
    let addr: SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .unwrap()
        .parse()
        .unwrap();
    // The spool as the listener sees it: its tmpfs, not the empty folder on the host.
    let inside =
        PathBuf::from(format!("/proc/{}/root", child.id())).join(spool.strip_prefix("/").unwrap());
    assert!(
        inside.join("state.sqlite").exists(),
        "the tmpfs is the listener's spool"
    );
    // Fill it but for about 40 KiB.
    let filler = inside.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    drop(file);
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - 40 * 1024)
        .unwrap();

    let mut acknowledged = BTreeSet::new();
    let mut refused = 0;
    for seq in 0..200 {
        let body = content_event(seq, 4000);
        let status = post(
            addr,
            "POST",
            "/",
            &[("X-LivePerson-Signature", &signed(&body))],
            &body,
        );
        match status {
            200 => {
                assert_eq!(refused, 0, "nothing is taken again before there is room");
                acknowledged.insert(seq.to_string());
            }
            503 => refused += 1,
            other => panic!("answered {other}"),
        }
        if refused == 3 {
            break;
        }
    }
    assert!(
        !acknowledged.is_empty() && refused == 3,
        "{acknowledged:?}, {refused}"
    );
    // Room again: the next delivery is taken.
    std::fs::remove_file(&filler).unwrap();
    let body = content_event(1000, 4000);
    assert_eq!(
        post(
            addr,
            "POST",
            "/",
            &[("X-LivePerson-Signature", &signed(&body))],
            &body
        ),
        200
    );
    acknowledged.insert("1000".to_string());

    child.signal("TERM");
    let (status, lines) = child.wait(Duration::from_secs(60));
    assert!(status.success(), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("could not be spooled")),
        "the 503s are logged"
    );
    let seqs: BTreeSet<String> = rows(&out, "webhook_messages", &["seq"])
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(seqs, acknowledged, "exactly the acknowledged notifications");
}

/// `--metrics-addr`: accepted and refused notifications by reason, events by type, the ack
/// latency histogram, the spool depth and the drops published.
#[test]
fn metrics_count_what_the_listener_did() {
    let dir = tempfile::tempdir().unwrap();
    let (out, spool) = (dir.path().join("out"), dir.path().join("spool"));
    let metrics = format!("127.0.0.1:{}", free_port());
    let (child, addr) = listen(
        "127.0.0.1:0",
        &out,
        &spool,
        &["--roll-every", "1h", "--metrics-addr", &metrics],
        &[],
    );
    let get = |path: &str| {
        let mut s = TcpStream::connect(&metrics).expect("metrics are served");
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let scrape = || get("/metrics");
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    assert!(get("/readyz").starts_with("HTTP/1.1 200"));
    let body = std::fs::read(fixtures().join("agent-read-seq1.json")).unwrap();
    let good = signed(&body);
    assert_eq!(
        post(
            addr,
            "POST",
            "/",
            &[("X-LivePerson-Signature", &good)],
            &body
        ),
        200
    );
    assert_eq!(
        post(
            addr,
            "POST",
            "/",
            &[(
                "X-LivePerson-Signature",
                "sha1=e/TfS0wv1HbvEsMqcBMmFLcMslI="
            )],
            &body
        ),
        401
    );
    let text = scrape();
    for line in [
        "lpdrop_webhook_notifications_total{outcome=\"accepted\"} 1",
        "lpdrop_webhook_notifications_total{outcome=\"signature_mismatch\"} 1",
        "lpdrop_webhook_events_total{type=\"AcceptStatusEvent\"} 1",
        "lpdrop_webhook_ack_duration_seconds_count 2",
        "lpdrop_webhook_spool_depth 1",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    child.signal("TERM");
    let (status, lines) = child.wait(Duration::from_secs(60));
    assert!(status.success(), "{lines:#?}");
    assert_eq!(verify_all(&out), 1);
}
