//! The emulator's newer endpoints over real HTTP, refusals first: Engagement History search,
//! account configuration, the Login Service, the Sentinel token endpoint, consumer search, and
//! the limits and faults that answer before the data does.

use std::time::Duration;

use lpdrop_emulator::{Emulator, EmulatorConfig, ORIGIN_MS};
use lpdrop_liveperson::oauth1::{Nonce, authorization_header, pct};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

struct H {
    emulator: Emulator,
    config: EmulatorConfig,
    http: reqwest::Client,
}

impl H {
    async fn start(config: EmulatorConfig) -> H {
        let emulator = Emulator::start(config.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        H {
            emulator,
            config,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.domain_url())
    }

    /// A signed request (OAuth 1.0a over `query`).
    async fn signed(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let url = self.url(path);
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let qs: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
            .collect();
        let auth =
            authorization_header(&self.config.api_key, method, &url, &pairs, &Nonce::fresh());
        let full = format!("{url}?{}", qs.join("&"));
        let req = match method {
            "GET" => self.http.get(full),
            _ => self
                .http
                .post(full)
                .header("Content-Type", "application/json")
                .body(body.unwrap_or("{}").to_string()),
        };
        let resp = req.header("Authorization", auth).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

const EH: &str = "/interaction_history/api/account/12345678/interactions/search";

#[tokio::test]
async fn engagement_history_rules() {
    let h = H::start(EmulatorConfig::default()).await;
    let from = ORIGIN_MS + 400 * DAY_MS;
    let q = [("source", "test"), ("limit", "10")];
    let month = format!(
        r#"{{"start":{{"from":{from},"to":{}}}}}"#,
        from + 31 * DAY_MS
    );
    let (status, _, text) = h.signed("POST", EH, &q, Some(&month)).await;
    assert_eq!(status, 200, "{text}");
    let page = json_of(&text);
    assert_eq!(page["_metadata"]["count"], 31 * 500);
    assert_eq!(
        page["interactionHistoryRecords"].as_array().unwrap().len(),
        10
    );
    assert!(page["_metadata"]["last"]["href"].is_string());
    assert_eq!(page["_metadata"]["shardsStatusResult"]["totalShards"], 6);
    let longer = format!(
        r#"{{"start":{{"from":{from},"to":{}}}}}"#,
        from + 32 * DAY_MS
    );
    let (status, _, text) = h.signed("POST", EH, &q, Some(&longer)).await;
    assert_eq!(status, 400);
    assert!(text.contains("1 month"), "{text}");
    // By engagement id the window may be longer, and the one chat comes back.
    let id = h.emulator_dataset().engagement_id(1234);
    let by_id = format!(
        r#"{{"start":{{"from":{ORIGIN_MS},"to":{}}},"engagementId":"{id}"}}"#,
        ORIGIN_MS + 200 * DAY_MS
    );
    let (status, _, text) = h.signed("POST", EH, &q, Some(&by_id)).await;
    assert_eq!(status, 200, "{text}");
    let page = json_of(&text);
    assert_eq!(page["_metadata"]["count"], 1);
    assert_eq!(
        page["interactionHistoryRecords"][0]["info"]["engagementId"],
        id
    );
    // Chats that have not ended are not returned. The window starts an hour ahead so a short
    // chat that starts between this clock reading and the emulator's cannot have ended.
    let soon = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let future = format!(r#"{{"start":{{"from":{soon},"to":{}}}}}"#, soon + DAY_MS);
    let (_, _, text) = h.signed("POST", EH, &q, Some(&future)).await;
    assert_eq!(json_of(&text)["_metadata"]["count"], 0);
    let (status, _, _) = h.signed("POST", EH, &[("limit", "10")], Some(&month)).await;
    assert_eq!(status, 400, "source is required");
    h.emulator.shutdown().await;
}

impl H {
    fn emulator_dataset(&self) -> lpdrop_emulator::Dataset {
        lpdrop_emulator::Dataset::new(&self.config)
    }
}

#[tokio::test]
async fn account_configuration_rules() {
    let h = H::start(EmulatorConfig::default()).await;
    let path = "/api/account/12345678/configuration/le-users/users";
    let (status, headers, text) = h
        .signed(
            "GET",
            path,
            &[("v", "4.0"), ("include_deleted", "true")],
            None,
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let revision = headers["ac-revision"].to_str().unwrap().to_string();
    let all = json_of(&text).as_array().unwrap().len();
    let (_, _, text) = h.signed("GET", path, &[("v", "4.0")], None).await;
    assert_eq!(json_of(&text).as_array().unwrap().len(), all - 1);
    let (_, _, text) = h
        .signed(
            "GET",
            path,
            &[("v", "4.0"), ("select", "id,loginName")],
            None,
        )
        .await;
    assert_eq!(json_of(&text)[0].as_object().unwrap().len(), 2);
    let (status, _, text) = h.signed("GET", path, &[], None).await;
    assert_eq!(status, 400, "{text}");
    let (status, _, _) = h
        .signed(
            "GET",
            "/api/account/12345678/configuration/le-users/nothing",
            &[("v", "4.0")],
            None,
        )
        .await;
    assert_eq!(status, 404);
    // If-Match with the current revision: 304.
    let url = h.url(path);
    let pairs = vec![("v".to_string(), "4.0".to_string())];
    let auth = authorization_header(&h.config.api_key, "GET", &url, &pairs, &Nonce::fresh());
    let resp = h
        .http
        .get(format!("{url}?v=4.0"))
        .header("Authorization", auth)
        .header("If-Match", revision)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 304);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn login_refresh_logout_and_tokens() {
    let h = H::start(EmulatorConfig::default()).await;
    let login = h.url("/api/account/12345678/login?v=1.3");
    let wrong = h
        .http
        .post(&login)
        .header("Content-Type", "application/json")
        .body(json!({"username": "emulator", "password": "nope"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let ok = h
        .http
        .post(&login)
        .header("Content-Type", "application/json")
        .body(json!({"username": "emulator", "password": "emulator"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let cookie = ok.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body: Value = json_of(&ok.text().await.unwrap());
    assert_eq!(body["sessionTTl"], "28800000");
    let (bearer, csrf) = (
        body["bearer"].as_str().unwrap(),
        body["csrf"].as_str().unwrap(),
    );
    assert!(
        body["csdsCollectionResponse"]["baseURIs"]
            .as_array()
            .unwrap()
            .len()
            > 3
    );
    let users = h.url("/api/account/12345678/configuration/le-users/users?v=4.0");
    let resp = h.http.get(&users).bearer_auth(bearer).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let refresh = h.url("/api/account/12345678/refresh");
    let bad = h
        .http
        .post(&refresh)
        .header("Cookie", &cookie)
        .header("Content-Type", "application/json")
        .body(json!({"csrf": "wrong"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    assert!(bad.text().await.unwrap().contains("CSRF token invalid"));
    let good = h
        .http
        .post(&refresh)
        .header("Cookie", &cookie)
        .header("Content-Type", "application/json")
        .body(json!({ "csrf": csrf }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(good.status().as_u16(), 200);
    let out = h
        .http
        .post(h.url("/api/account/12345678/logout"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 200);
    let resp = h.http.get(&users).bearer_auth(bearer).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401, "logged out");

    let token = h.url("/sentinel/api/account/12345678/app/token?v=1.0");
    let form = |body: &str| {
        h.http
            .post(&token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
    };
    let bad_grant = form("client_id=emulator&client_secret=emulator&grant_type=password")
        .await
        .unwrap();
    assert_eq!(bad_grant.status().as_u16(), 400);
    let bad_secret = form("client_id=emulator&client_secret=x&grant_type=client_credentials")
        .await
        .unwrap();
    assert_eq!(bad_secret.status().as_u16(), 401);
    let ok = form("client_id=emulator&client_secret=emulator&grant_type=client_credentials")
        .await
        .unwrap();
    let body: Value = json_of(&ok.text().await.unwrap());
    assert_eq!(body["token_type"], "Bearer");
    let jwt = body["access_token"].as_str().unwrap();
    let resp = h.http.get(&users).bearer_auth(jwt).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let stats = h.emulator.stats();
    assert_eq!(
        (stats.logins, stats.refreshes, stats.tokens_issued),
        (1, 1, 1)
    );
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn rate_limit_no_content_and_consumer_search() {
    let config = EmulatorConfig {
        faults: "rps=2,burst=2".parse().unwrap(),
        empty_as_no_content: true,
        ..EmulatorConfig::default()
    };
    let h = H::start(config).await;
    let search = "/messaging_history/api/account/12345678/conversations/search";
    // Before 2020 there is nothing: 204 with an empty body.
    let empty = r#"{"start":{"from":1500000000000,"to":1500003600000}}"#;
    let (status, _, text) = h
        .signed("POST", search, &[("source", "t")], Some(empty))
        .await;
    assert_eq!((status, text.as_str()), (204, ""));
    let consumer = "/messaging_history/api/account/12345678/conversations/consumer/search";
    let (status, _, text) = h
        .signed(
            "POST",
            consumer,
            &[("source", "t")],
            Some(r#"{"consumer":"abc"}"#),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("status"));
    // The burst (2) is spent: the next one is over the limit.
    let (status, headers, _) = h
        .signed(
            "POST",
            consumer,
            &[("source", "t")],
            Some(r#"{"consumer":"abc","status":["OPEN"]}"#),
        )
        .await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_none());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, _, text) = h
        .signed(
            "POST",
            consumer,
            &[("source", "t")],
            Some(r#"{"consumer":"abc","status":["OPEN"]}"#),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(json_of(&text)["_metadata"]["count"], 0);
    assert_eq!(h.emulator.stats().rate_limited, 1);
    h.emulator.shutdown().await;
}

#[tokio::test]
async fn injected_answers_look_like_the_real_failures() {
    let config = EmulatorConfig {
        faults: "429ra=first:1,retry-after=3,drop=every:2,truncate=every:3"
            .parse()
            .unwrap(),
        ..EmulatorConfig::default()
    };
    let h = H::start(config).await;
    let path = "/api/account/12345678/configuration/le-users/skills";
    let (status, headers, _) = h.signed("GET", path, &[("v", "4.0")], None).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "3");
    // Request 2: the connection closes half way through a 200.
    let url = h.url(path);
    let pairs = vec![("v".to_string(), "4.0".to_string())];
    let auth = authorization_header(&h.config.api_key, "GET", &url, &pairs, &Nonce::fresh());
    let resp = h
        .http
        .get(format!("{url}?v=4.0"))
        .header("Authorization", auth)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.bytes().await.is_err(),
        "the body does not arrive whole"
    );
    // Request 3: a whole answer of half a body.
    let (status, _, text) = h.signed("GET", path, &[("v", "4.0")], None).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&text).is_err());
    h.emulator.shutdown().await;
}
