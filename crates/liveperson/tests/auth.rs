//! Every way to authenticate works against the emulator, and wrong credentials are refused
//! without being retried or shown: API key (OAuth 1.0a), login bearer (refreshed before its
//! session TTL), OAuth 2.0 client credentials (token cached until shortly before it expires),
//! and a bearer token from elsewhere.

mod common;

use std::time::Duration;

use common::{start, window};
use lpdrop_emulator::{Credentials, EmulatorConfig};
use lpdrop_liveperson::page::parse_page;
use lpdrop_liveperson::{Auth, Client, ClientConfig, SearchFilters};

fn config() -> EmulatorConfig {
    EmulatorConfig {
        per_day: 24,
        login: Credentials::new("agent.api", "corr3ct-horse"),
        oauth_client: Credentials::new("lpdrop-app", "s3ntinel-secret"),
        ..EmulatorConfig::default()
    }
}

fn with_auth(
    emulator: &lpdrop_emulator::Emulator,
    cfg: &EmulatorConfig,
    auth: Auth,
) -> ClientConfig {
    let mut c = common::client_config(emulator, cfg);
    c.auth = Some(auth);
    c
}

/// One search page and the users list must both work.
async fn works(client: &Client) {
    let w = window("2021-02-01", "2021-02-02");
    let body = client
        .search_page(w, SearchFilters::default(), 0)
        .await
        .unwrap();
    assert_eq!(parse_page(&body).unwrap().metadata.count, Some(24));
    assert!(!client.users().await.unwrap().is_empty());
}

#[tokio::test]
async fn api_key_signatures() {
    let cfg = config();
    let emulator = start(cfg.clone()).await;
    let client = Client::connect(common::client_config(&emulator, &cfg))
        .await
        .unwrap();
    works(&client).await;

    let mut wrong = cfg.api_key.clone();
    wrong.access_token_secret = "n0t-the-token-secret".into();
    let bad = Client::connect(with_auth(&emulator, &cfg, Auth::OAuth1(wrong)))
        .await
        .unwrap();
    let before = emulator.stats().requests;
    let err = bad
        .search_page(
            window("2021-02-01", "2021-02-02"),
            SearchFilters::default(),
            0,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(err.to_string().contains("signature"), "{err}");
    assert!(!err.to_string().contains("n0t-the-token-secret"));
    assert!(!format!("{bad:?}").contains("n0t-the-token-secret"));
    assert_eq!(
        emulator.stats().requests - before,
        1,
        "a 401 is not retried"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_bearer_is_refreshed_before_the_session_ends() {
    let cfg = EmulatorConfig {
        // Long enough that the refresh (at 3/4 of it) has a second of margin on a loaded
        // machine: with 1.2 s, a busy CI missed it and logged in again.
        session_ttl: Duration::from_secs(4),
        ..config()
    };
    let emulator = start(cfg.clone()).await;
    let login = Auth::Login {
        username: "agent.api".into(),
        password: "corr3ct-horse".into(),
    };
    let client = Client::connect(with_auth(&emulator, &cfg, login))
        .await
        .unwrap();
    // Requests over more than two session lifetimes: the session is refreshed on the way.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(8500) {
        works(&client).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = emulator.stats();
    assert_eq!(stats.logins, 1, "{stats:?}");
    assert!(stats.refreshes >= 2, "{stats:?}");
    assert_eq!(stats.unauthorized, 0, "{stats:?}");

    let wrong = Auth::Login {
        username: "agent.api".into(),
        password: "wr0ng-horse".into(),
    };
    let bad = Client::connect(with_auth(&emulator, &cfg, wrong))
        .await
        .unwrap();
    let err = bad.users().await.unwrap_err();
    let shown = err.to_string();
    assert_eq!(err.status(), Some(401), "{shown}");
    assert!(shown.contains("login of user \"agent.api\""), "{shown}");
    assert!(!shown.contains("wr0ng-horse") && !format!("{bad:?}").contains("wr0ng-horse"));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_token_is_cached_and_renewed() {
    let cfg = EmulatorConfig {
        // Renewed a tenth of its life before it expires: 0.6 s of margin on a loaded machine.
        token_ttl: Duration::from_secs(6),
        ..config()
    };
    let emulator = start(cfg.clone()).await;
    let oauth2 = Auth::ClientCredentials {
        client_id: "lpdrop-app".into(),
        client_secret: "s3ntinel-secret".into(),
    };
    let client = Client::connect(with_auth(&emulator, &cfg, oauth2))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_millis(6800) {
        works(&client).await;
        calls += 2;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = emulator.stats();
    // Many calls on one token: it is cached, not fetched per call.
    assert!(calls >= 10, "{calls}");
    // One token, renewed (once, maybe twice on a slow machine) shortly before it expired.
    assert!((2..=3).contains(&stats.tokens_issued), "{stats:?}");
    assert_eq!(stats.unauthorized, 0, "{stats:?}");

    let wrong = Auth::ClientCredentials {
        client_id: "lpdrop-app".into(),
        client_secret: "n0t-it".into(),
    };
    let bad = Client::connect(with_auth(&emulator, &cfg, wrong))
        .await
        .unwrap();
    let err = bad.skills().await.unwrap_err();
    let shown = err.to_string();
    assert_eq!(err.status(), Some(401), "{shown}");
    assert!(
        shown.contains("lpdrop-app") && !shown.contains("n0t-it"),
        "{shown}"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_foreign_bearer_token_is_refused() {
    let cfg = config();
    let emulator = start(cfg.clone()).await;
    let client = Client::connect(with_auth(&emulator, &cfg, Auth::Bearer("f0reign".into())))
        .await
        .unwrap();
    let err = client.agent_groups().await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(!err.to_string().contains("f0reign"));
    assert_eq!(emulator.stats().unauthorized, 1, "not retried, not renewed");
    emulator.shutdown().await;
}
