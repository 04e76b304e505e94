//! Lenient decoding with quarantine: malformed records injected into the vendor's own pages
//! fail alone, each with a reason naming the field, and every good record of the page is in
//! the tables.

use std::collections::BTreeSet;
use std::path::PathBuf;

use arrow::array::{Array, StringArray};
use arrow::record_batch::RecordBatch;
use lpdrop_liveperson::page::{decode_chat_record, decode_record, parse_chat_page, parse_page};
use lpdrop_tables::{ChatTables, Lineage, MessagingTables, QuarantinedRecord, TableBuffer};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/liveperson-docs")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn lineage() -> Lineage {
    Lineage {
        account_id: "12345678".into(),
        drop_id: "drop-q".into(),
        extracted_at_ms: 1_763_700_000_000,
    }
}

/// Sets the value at a `/`-separated path (object keys or array indices).
fn set(v: &mut Value, path: &str, new: Value) {
    let pointer = format!("/{path}");
    *v.pointer_mut(&pointer)
        .unwrap_or_else(|| panic!("{path} exists in the fixture")) = new;
}

fn finish(buffers: &mut [TableBuffer]) -> Vec<(&'static str, RecordBatch)> {
    buffers
        .iter_mut()
        .map(|b| (b.def().name, b.finish_batch(&lineage())))
        .collect()
}

fn ids(batches: &[(&'static str, RecordBatch)], table: &str, key: &str) -> BTreeSet<String> {
    let (_, batch) = batches.iter().find(|(n, _)| *n == table).unwrap();
    let column = batch.column_by_name(key).unwrap();
    let column = column.as_any().downcast_ref::<StringArray>().unwrap();
    column.iter().map(|v| v.unwrap().to_string()).collect()
}

fn rows(batches: &[(&'static str, RecordBatch)], table: &str) -> usize {
    batches
        .iter()
        .find(|(n, _)| *n == table)
        .unwrap()
        .1
        .num_rows()
}

#[test]
fn malformed_conversations_are_quarantined_alone_with_the_field_named() {
    let main = fixture("msghist-search-example.json")["conversationHistoryRecords"][0].clone();
    let sdes = fixture("msghist-search-example-sdes.json")["conversationHistoryRecords"][0].clone();
    let with_id = |base: &Value, id: &str| {
        let mut r = base.clone();
        set(&mut r, "info/conversationId", json!(id));
        r
    };
    // Good records: both vendor records, and copies under other ids.
    let good: Vec<Value> = (0..6)
        .map(|i| with_id(if i % 2 == 0 { &main } else { &sdes }, &format!("good-{i}")))
        .collect();
    // One malformed record per node, each with the field the reason must name.
    let mut bad: Vec<(Value, &str)> = Vec::new();
    let mut push_bad = |base: &Value, path: &str, value: Value, named: &'static str| {
        let mut r = with_id(base, &format!("bad-{}", path.replace('/', ".")));
        set(&mut r, path, value);
        bad.push((r, named));
    };
    push_bad(&main, "info/mcs", json!({"oops": 1}), "field info.mcs");
    push_bad(
        &main,
        "messageRecords/0/timeL",
        json!("yesterday"),
        "field messageRecords[0].timeL",
    );
    push_bad(
        &main,
        "intents/1/allClassifications/0/confidenceScore",
        json!("high"),
        "field intents: [1].allClassifications[0].confidenceScore",
    );
    push_bad(
        &main,
        "latestAgentSurvey/lastUpdateTime",
        json!("soon"),
        "field latestAgentSurvey: lastUpdateTime",
    );
    push_bad(
        &main,
        "coBrowseSessions/coBrowseSessionsList/1/duration",
        json!("long"),
        "field coBrowseSessions: coBrowseSessionsList[1].duration",
    );
    push_bad(
        &sdes,
        "unAuthSdes/events/2/customerInfo/customerInfo/balance",
        json!("a lot"),
        "field unAuthSdes: events[2]: customerInfo.customerInfo: balance",
    );
    push_bad(
        &sdes,
        "unAuthSdes/events/0/cartStatus/products/0/quantity",
        json!(1.5),
        "field unAuthSdes: events[0]: cartStatus: products[0].quantity",
    );
    push_bad(
        &main,
        "info/conversationId",
        json!(null),
        "info.conversationId",
    );
    let n = bad.len();

    // Interleave bad records between good ones in one page, as LivePerson would send them.
    let mut records = Vec::new();
    let mut bad_iter = bad.iter();
    for g in &good {
        records.push(g.clone());
        if let Some((b, _)) = bad_iter.next() {
            records.push(b.clone());
        }
    }
    records.extend(bad_iter.map(|(b, _)| b.clone()));
    let body = serde_json::to_vec(&json!({
        "_metadata": {"count": records.len()},
        "conversationHistoryRecords": records,
    }))
    .unwrap();

    let page = parse_page(&body).unwrap();
    let mut tables = MessagingTables::new();
    let mut quarantined = Vec::new();
    let mut expected_messages = 0;
    for (i, raw) in page.records.iter().enumerate() {
        match decode_record(raw) {
            Ok(c) => {
                expected_messages += c.message_records.len();
                tables.append(&c);
            }
            Err(reason) => quarantined.push(QuarantinedRecord::new(
                reason,
                format!("test page record {i}"),
                raw.get().as_bytes().to_vec(),
            )),
        }
    }

    assert_eq!(quarantined.len(), n, "exactly the injected records");
    for ((record, named), q) in bad.iter().zip(&quarantined) {
        assert!(
            q.reason.contains(named),
            "{:?} should name {named}",
            q.reason
        );
        // Kept whole, byte for byte, and the JSON line round-trips.
        assert_eq!(serde_json::from_str::<Value>(&q.record).unwrap(), *record);
        let line: Value = serde_json::from_str(&q.to_json_line()).unwrap();
        assert_eq!(line["record"], q.record.as_str());
    }
    let batches = finish(tables.buffers_mut());
    let expected: BTreeSet<String> = (0..6).map(|i| format!("good-{i}")).collect();
    assert_eq!(ids(&batches, "conversations", "conversation_id"), expected);
    assert_eq!(rows(&batches, "messages"), expected_messages);
    assert_eq!(ids(&batches, "sde_events", "conversation_id"), expected);
    // One customer info event per main example, two (sdes and unAuthSdes) per SDE example.
    assert_eq!(rows(&batches, "sde_customer_info"), 3 + 3 * 2);
}

#[test]
fn malformed_chats_are_quarantined_alone_with_the_field_named() {
    let mut good = Vec::new();
    for name in [
        "enghist-search-example.json",
        "enghist-search-example-richcontent.json",
        "enghist-search-example-paging-sdes.json",
    ] {
        good.extend(
            fixture(name)["interactionHistoryRecords"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
    }
    let base = good[0].clone();
    let mut bad: Vec<(Value, &str)> = Vec::new();
    for (path, value, named) in [
        ("info/chatMCS", json!("sixty"), "field info.chatMCS"),
        (
            "transcript/lines/2/timeL",
            json!({"t": 1}),
            "field transcript.lines[2].timeL",
        ),
        (
            "surveys/postChat/0/answersId/0",
            json!("first"),
            "field surveys.postChat[0].answersId[0]",
        ),
        (
            "sdes/events/1/purchase/total",
            json!("seventy-seven"),
            "field sdes: events[1]: purchase: total",
        ),
        ("info/engagementId", json!(""), "info.engagementId"),
    ] {
        let mut r = base.clone();
        set(&mut r, "info/engagementId", json!(format!("bad-{path}")));
        set(&mut r, path, value);
        bad.push((r, named));
    }
    let mut records: Vec<Value> = bad.iter().map(|(b, _)| b.clone()).collect();
    records.splice(1..1, good.iter().cloned());
    let body = serde_json::to_vec(&json!({"interactionHistoryRecords": records})).unwrap();

    let page = parse_chat_page(&body).unwrap();
    let mut tables = ChatTables::new();
    let mut reasons = Vec::new();
    for raw in &page.records {
        match decode_chat_record(raw) {
            Ok(c) => tables.append(&c),
            Err(reason) => reasons.push(reason),
        }
    }
    assert_eq!(reasons.len(), bad.len());
    for ((_, named), reason) in bad.iter().zip(&reasons) {
        assert!(reason.contains(named), "{reason:?} should name {named}");
    }
    let batches = finish(tables.buffers_mut());
    let expected: BTreeSet<String> = good
        .iter()
        .map(|g| g["info"]["engagementId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids(&batches, "chats", "engagement_id"), expected);
    assert_eq!(ids(&batches, "chat_lines", "engagement_id"), expected);
    let (_, chats) = batches.iter().find(|(n, _)| *n == "chats").unwrap();
    assert_eq!(chats.column_by_name("drop_id").unwrap().null_count(), 0);
}
