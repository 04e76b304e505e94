//! The emulator over real HTTP: a server on 127.0.0.1:0, requests signed with the client
//! crate's OAuth 1.0a code, answers checked against the `Dataset` they must come from.

use std::collections::HashSet;

use lpdrop_emulator::{
    DEFAULT_CONTENT, Dataset, Emulator, EmulatorConfig, ORIGIN_MS, WINDOW_ROUNDING_MS,
};
use lpdrop_liveperson::oauth1::{ApiKey, Nonce, authorization_header, pct};
use serde_json::Value;

const DAY_MS: i64 = 86_400_000;

struct Harness {
    emulator: Emulator,
    config: EmulatorConfig,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    body: Value,
}

impl Harness {
    async fn start() -> Harness {
        let config = EmulatorConfig::default();
        let emulator = Emulator::start(config.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator starts");
        Harness {
            emulator,
            config,
            http: reqwest::Client::new(),
        }
    }

    fn dataset(&self) -> Dataset {
        Dataset::new(&self.config)
    }

    fn search_url(&self, account: &str) -> String {
        format!(
            "{}/messaging_history/api/account/{account}/conversations/search",
            self.emulator.domain_url()
        )
    }

    async fn get(&self, path: &str) -> Answer {
        let resp = self
            .http
            .get(format!("{}{path}", self.emulator.domain_url()))
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    /// POSTs `body` to `url` with `query`, signed with `key` unless `key` is `None`.
    async fn post(
        &self,
        url: &str,
        query: &[(&str, &str)],
        body: &str,
        key: Option<&ApiKey>,
    ) -> Answer {
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let qs: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
            .collect();
        let mut req = self
            .http
            .post(format!("{url}?{}", qs.join("&")))
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            let header = authorization_header(key, "POST", url, &pairs, &Nonce::fresh());
            req = req.header("Authorization", header);
        }
        answer(req.send().await.unwrap()).await
    }

    async fn search(&self, query: &[(&str, &str)], body: &str) -> Answer {
        let url = self.search_url(&self.config.account_id);
        self.post(&url, query, body, Some(&self.config.api_key))
            .await
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text}"));
    Answer { status, body }
}

fn window_body(from: i64, to: i64) -> String {
    format!(r#"{{"start":{{"from":{from},"to":{to}}}}}"#)
}

fn records(a: &Answer) -> &Vec<Value> {
    a.body["conversationHistoryRecords"]
        .as_array()
        .expect("records array")
}

fn count(a: &Answer) -> u64 {
    a.body["_metadata"]["count"].as_u64().expect("count")
}

/// LivePerson's rounding, restated independently of the crate.
fn rounded(from: i64, to: i64) -> (i64, i64) {
    let r = WINDOW_ROUNDING_MS;
    (from / r * r, (to + r - 1) / r * r)
}

#[tokio::test]
async fn domain_api_points_at_the_emulator() {
    let h = Harness::start().await;
    let a = h
        .get("/api/account/12345678/service/msgHist/baseURI.json?version=1.0")
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["service"], "msgHist");
    assert_eq!(a.body["account"], "12345678");
    // A bare host:port, no scheme, like LivePerson's bare hostnames.
    assert_eq!(a.body["baseURI"], h.emulator.addr().to_string());
    for service in ["engHistDomain", "accountConfigReadOnly", "agentVep"] {
        let a = h
            .get(&format!(
                "/api/account/12345678/service/{service}/baseURI.json?version=1.0"
            ))
            .await;
        assert_eq!(a.status, 200, "{service}");
    }
    let unknown = h
        .get("/api/account/12345678/service/noSuchThing/baseURI.json?version=1.0")
        .await;
    assert_eq!(unknown.status, 404);
    let other_account = h
        .get("/api/account/99999999/service/msgHist/baseURI.json?version=1.0")
        .await;
    assert_eq!(other_account.status, 401);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn signed_search_counts_and_pages_the_rounded_window() {
    let h = Harness::start().await;
    let d = h.dataset();
    // Deliberately off the 10-minute grid on both ends.
    let from = ORIGIN_MS + 3 * DAY_MS + 7 * 60_000 + 13_456;
    let to = from + 2 * 3_600_000 + 1_234;
    let (rf, rt) = rounded(from, to);
    assert!(rf < from && rt > to);
    let expected = d.index_range(rf, rt);
    let total = expected.end - expected.start;
    assert!(
        total > 100,
        "the window must need several pages, has {total}"
    );

    let mut seen = Vec::new();
    let mut offset = 0u64;
    loop {
        let off = offset.to_string();
        let a = h
            .search(
                &[
                    ("offset", &off),
                    ("limit", "100"),
                    ("sort", "start:asc"),
                    ("v", "2"),
                    ("source", "lpdrop test+1"),
                ],
                &window_body(from, to),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(count(&a), total);
        let page = records(&a);
        assert_eq!(page.len() as u64, 100.min(total - offset));
        assert_eq!(
            a.body["_metadata"]["shardsStatusResult"]["partialResult"],
            false
        );
        assert_eq!(a.body["_metadata"]["self"]["rel"], "self");
        assert_eq!(
            a.body["_metadata"].get("next").is_some(),
            offset + 100 < total
        );
        for r in page {
            seen.push(r["info"]["conversationId"].as_str().unwrap().to_string());
            let start = r["info"]["startTimeL"].as_i64().unwrap();
            assert!(rf <= start && start <= rt);
        }
        offset += 100;
        if offset >= total {
            break;
        }
    }
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len() as u64, total);
    let want: Vec<String> = expected.map(|i| d.conversation_id(i)).collect();
    assert_eq!(seen, want, "ascending start order, every conversation once");

    // Default limit, and the records are exactly the data set's, trimmed to the default set.
    let a = h
        .search(&[("source", "lpdrop")], &window_body(from, to))
        .await;
    assert_eq!(records(&a).len(), 50);
    let mut full = d.conversation(d.index_range(rf, rt).start);
    full.as_object_mut()
        .unwrap()
        .retain(|k, _| k == "info" || DEFAULT_CONTENT.contains(&k.as_str()));
    assert_eq!(records(&a)[0], full);

    // Descending order starts from the latest conversation of the window.
    let a = h
        .search(
            &[("source", "lpdrop"), ("sort", "start:desc"), ("limit", "1")],
            &window_body(from, to),
        )
        .await;
    assert_eq!(
        records(&a)[0]["info"]["conversationId"],
        d.conversation_id(d.index_range(rf, rt).end - 1).as_str()
    );
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn authentication_failures_are_401() {
    let h = Harness::start().await;
    let body = window_body(ORIGIN_MS, ORIGIN_MS + 3_600_000);
    let url = h.search_url("12345678");
    let query = [("source", "lpdrop")];

    let unsigned = h.post(&url, &query, &body, None).await;
    assert_eq!(unsigned.status, 401);
    assert!(unsigned.body["message"].is_string());

    let mut wrong = h.config.api_key.clone();
    wrong.app_secret = "not-the-secret".into();
    assert_eq!(h.post(&url, &query, &body, Some(&wrong)).await.status, 401);

    let mut wrong_token = h.config.api_key.clone();
    wrong_token.access_token = "someone-else".into();
    assert_eq!(
        h.post(&url, &query, &body, Some(&wrong_token)).await.status,
        401
    );

    let other = h.search_url("87654321");
    let a = h.post(&other, &query, &body, Some(&h.config.api_key)).await;
    assert_eq!(a.status, 401);

    // A signature over other query values than those sent is refused too.
    let qs = format!("{url}?source=lpdrop&offset=50");
    let header = authorization_header(
        &h.config.api_key,
        "POST",
        &url,
        &[
            ("source".into(), "lpdrop".into()),
            ("offset".into(), "0".into()),
        ],
        &Nonce::fresh(),
    );
    let resp = h
        .http
        .post(qs)
        .header("Authorization", header)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    h.emulator.shutdown().await;
}

type Case = (Vec<(&'static str, &'static str)>, String, &'static str);

#[tokio::test]
async fn bad_requests_are_400_with_a_message() {
    let h = Harness::start().await;
    let ok = window_body(ORIGIN_MS, ORIGIN_MS + DAY_MS);
    // (query, body, what the error message must mention)
    let cases: Vec<Case> = vec![
        (
            vec![("source", "lpdrop")],
            r#"{"status":["CLOSE"]}"#.into(),
            "start",
        ),
        (
            vec![("source", "lpdrop"), ("limit", "101")],
            ok.clone(),
            "limit",
        ),
        (
            vec![("source", "lpdrop"), ("limit", "abc")],
            ok.clone(),
            "limit",
        ),
        (
            vec![("source", "lpdrop")],
            window_body(ORIGIN_MS, ORIGIN_MS + 92 * DAY_MS + 1),
            "3 months",
        ),
        (vec![("limit", "10")], ok.clone(), "source"),
        (
            vec![("source", "this-source-is-far-too-long")],
            ok.clone(),
            "source",
        ),
        (vec![("source", "lpdrop")], "{\"start\":".into(), "JSON"),
    ];
    for (query, body, needle) in cases {
        let a = h.search(&query, &body).await;
        assert_eq!(a.status, 400, "{query:?} {body}: {}", a.body);
        let message = a.body["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle}"
        );
    }
    // Exactly 92 days is allowed.
    let a = h
        .search(
            &[("source", "lpdrop"), ("limit", "0")],
            &window_body(ORIGIN_MS, ORIGIN_MS + 92 * DAY_MS),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn status_filter_returns_exactly_the_open_conversations() {
    let h = Harness::start().await;
    let d = h.dataset();
    let from = ORIGIN_MS + 40 * DAY_MS;
    let to = from + 8 * 3_600_000; // on the grid already
    let want: Vec<String> = d
        .index_range(from, to)
        .filter(|&i| d.conversation(i)["info"]["status"] == "OPEN")
        .map(|i| d.conversation_id(i))
        .collect();
    assert!(!want.is_empty());

    let body = format!(r#"{{"start":{{"from":"{from}","to":"{to}"}},"status":["OPEN"]}}"#);
    let mut got = Vec::new();
    let mut offset = 0;
    loop {
        let off = offset.to_string();
        let a = h
            .search(
                &[("source", "lpdrop"), ("limit", "10"), ("offset", &off)],
                &body,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(count(&a), want.len() as u64);
        for r in records(&a) {
            assert_eq!(r["info"]["status"], "OPEN");
            assert_eq!(r["info"]["endTimeL"], -1);
            got.push(r["info"]["conversationId"].as_str().unwrap().to_string());
        }
        offset += 10;
        if offset >= want.len() {
            break;
        }
    }
    assert_eq!(got, want);

    // The other filters narrow too, and every record honours them.
    let body = format!(
        r#"{{"start":{{"from":{from},"to":{to}}},"status":["CLOSE"],"skillIds":[1100000002],"agentIds":["2200000003"]}}"#
    );
    let a = h
        .search(&[("source", "lpdrop"), ("limit", "100")], &body)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(count(&a) > 0);
    for r in records(&a) {
        assert_eq!(r["info"]["status"], "CLOSE");
        let agents: Vec<&Value> = r["interactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| &i["assignedAgentId"])
            .collect();
        assert!(agents.contains(&&Value::from("2200000003")));
    }
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn content_to_retrieve_and_v2() {
    let h = Harness::start().await;
    let from = ORIGIN_MS + 5 * DAY_MS;
    let body = format!(
        r#"{{"start":{{"from":{from},"to":{}}},"contentToRetrieve":["info","transfers","unAuthSdes","monitoring"]}}"#,
        from + 3_600_000
    );
    let v1 = h
        .search(&[("source", "lpdrop"), ("limit", "100")], &body)
        .await;
    let v2 = h
        .search(&[("source", "lpdrop"), ("limit", "100"), ("v", "2")], &body)
        .await;
    assert_eq!(v1.status, 200);
    let mut unauth = 0;
    for (a, b) in records(&v1).iter().zip(records(&v2)) {
        let keys: HashSet<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, HashSet::from(["info", "transfers", "monitoring"]));
        unauth += usize::from(b.get("unAuthSdes").is_some());
        assert!(b.get("campaign").is_none());
    }
    assert!(unauth > 0, "v=2 returns unAuthSdes when asked for");
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn get_by_conversation_id() {
    let h = Harness::start().await;
    let d = h.dataset();
    let url = format!(
        "{}/messaging_history/api/account/12345678/conversations/conversation/search",
        h.emulator.domain_url()
    );
    let ids = [
        d.conversation_id(10),
        d.conversation_id(777_777),
        "0b6f3c1e-aaaa-4bbb-8ccc-000000000001".to_string(),
    ];
    let body = format!(
        r#"{{"conversationIds":["{}","{}","{}"]}}"#,
        ids[0], ids[1], ids[2]
    );
    let a = h
        .post(
            &url,
            &[("source", "lpdrop")],
            &body,
            Some(&h.config.api_key),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(count(&a), 2, "unknown ids are simply absent");
    assert_eq!(records(&a)[1]["info"]["conversationId"], ids[1].as_str());
    assert_eq!(
        records(&a)[1]["info"]["startTimeL"],
        d.start_time_ms(777_777)
    );
    h.emulator.shutdown().await;
}
