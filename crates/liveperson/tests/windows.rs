//! Windows against the emulator: a 13-month range is split (3-month API limit), busy
//! sub-windows are halved, every page is fetched, and the cli's rules (exact window, one record
//! per sub-window) give exactly the emulator's own conversations; filters return exactly theirs.

mod common;

use std::collections::BTreeSet;

use common::{Api, DAY_MS, assert_page_order, collect, extract, start, window};
use lpdrop_emulator::{Dataset, EmulatorConfig};
use lpdrop_liveperson::window::MAX_SEARCH_SPAN_MS;
use lpdrop_liveperson::{Client, Filters, SearchFilters};
use serde_json::Value;

fn config(per_day: u32) -> EmulatorConfig {
    EmulatorConfig {
        per_day,
        ..EmulatorConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirteen_months_are_split_and_paged_completely() {
    let cfg = config(24);
    let emulator = start(cfg.clone()).await;
    let mut cc = common::client_config(&emulator, &cfg);
    cc.max_hits_per_window = 500;
    cc.concurrency = 6;
    let client = Client::connect(cc).await.unwrap();
    // 2021-01-01 10:07 to 2022-02-03 15:43: 13 months, neither end on a 10-minute boundary.
    let whole = window("2021-01-01T10:07:00Z", "2022-02-03T15:43:00Z");
    assert!(whole.span_ms() > 4 * MAX_SEARCH_SPAN_MS);
    let (pages, stats) =
        collect(|tx| client.fetch_window(whole, SearchFilters::default(), i64::MAX, tx)).await;
    assert_page_order(&pages, whole);
    let got = extract(&pages, Api::Messaging);

    let dataset = Dataset::new(&cfg);
    let expected: Vec<String> = dataset
        .index_range(whole.from_ms(), whole.to_ms() - 1)
        .map(|i| dataset.conversation_id(i))
        .collect();
    let ids: Vec<String> = got.records.iter().map(|(id, _)| id.clone()).collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no conversation twice");
    assert_eq!(
        ids, expected,
        "every conversation of the range, once, in start order"
    );
    // Every sub-window held at most max_hits; halving and paging both happened.
    assert!(stats.windows > 5 * 3, "3-month windows halved: {stats:?}");
    assert!(
        stats.pages > stats.windows,
        "sub-windows span several pages: {stats:?}"
    );
    assert_eq!(stats.pages, pages.len() as u64);
    assert_eq!(stats.reported_hits, expected.len() as u64 + got.outside);
    println!(
        "13 months: {} conversations in {} sub-windows, {} pages; {} outside their sub-window \
         (rounding), {} duplicates",
        ids.len(),
        stats.windows,
        stats.pages,
        got.outside,
        got.duplicates
    );
    emulator.shutdown().await;
}

/// The skills a conversation held: its latest skill and both ends of every transfer.
fn skills_of(record: &Value) -> BTreeSet<i64> {
    let mut skills = BTreeSet::new();
    skills.insert(record["info"]["latestSkillId"].as_i64().unwrap());
    for t in record["transfers"].as_array().unwrap() {
        skills.insert(t["sourceSkillId"].as_i64().unwrap());
        skills.insert(t["targetSkillId"].as_i64().unwrap());
    }
    skills
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skill_status_and_agent_filters_return_exactly_theirs() {
    let cfg = config(96);
    let emulator = start(cfg.clone()).await;
    let client = Client::connect(common::client_config(&emulator, &cfg))
        .await
        .unwrap();
    let dataset = Dataset::new(&cfg);
    let whole = window("2021-03-30T22:00:00Z", "2021-04-04T02:30:00Z");
    let everything: Vec<(String, Value)> = dataset
        .index_range(whole.from_ms(), whole.to_ms() - 1)
        .map(|i| (dataset.conversation_id(i), dataset.conversation(i)))
        .collect();

    let skill = 1_100_000_003;
    let filters = SearchFilters {
        skill_ids: vec![skill],
        status: Vec::new(),
    };
    let (pages, _) = collect(|tx| client.fetch_window(whole, &filters, DAY_MS, tx)).await;
    let got: Vec<String> = extract(&pages, Api::Messaging)
        .records
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected: Vec<String> = everything
        .iter()
        .filter(|(_, r)| skills_of(r).contains(&skill))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!expected.is_empty() && expected.len() < everything.len());
    assert_eq!(
        got, expected,
        "exactly the conversations that held skill {skill}"
    );

    let closed = SearchFilters {
        skill_ids: Vec::new(),
        status: vec!["CLOSE".into()],
    };
    let (pages, _) = collect(|tx| client.fetch_window(whole, &closed, DAY_MS, tx)).await;
    let got: Vec<String> = extract(&pages, Api::Messaging)
        .records
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected: Vec<String> = everything
        .iter()
        .filter(|(_, r)| r["info"]["status"] == "CLOSE")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(got, expected, "exactly the closed conversations");

    let agent = "2200000006";
    let by_agent = Filters {
        agent_ids: vec![agent.into()],
        ..Filters::default()
    };
    let (pages, _) = collect(|tx| client.fetch_window(whole, &by_agent, DAY_MS, tx)).await;
    let got: Vec<String> = extract(&pages, Api::Messaging)
        .records
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let expected: Vec<String> = everything
        .iter()
        .filter(|(_, r)| {
            r["agentParticipants"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["agentId"] == agent)
        })
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(
        got, expected,
        "exactly the conversations agent {agent} was assigned"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_consumer_that_stops_ends_the_fetch_quietly() {
    let cfg = config(200);
    let emulator = start(cfg.clone()).await;
    let client = Client::connect(common::client_config(&emulator, &cfg))
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let whole = window("2021-05-01", "2021-05-20");
    let fetch = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .fetch_window(whole, &SearchFilters::default(), DAY_MS, tx)
                .await
        }
    });
    let first = rx.recv().await.unwrap();
    assert_eq!(first.offset, 0);
    drop(rx);
    let stats = tokio::time::timeout(std::time::Duration::from_secs(20), fetch)
        .await
        .expect("the fetch stops soon after the consumer")
        .unwrap()
        .unwrap();
    assert!(stats.pages < 19 * 2, "{stats:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn no_content_answers_are_empty_pages() {
    let cfg = EmulatorConfig {
        empty_as_no_content: true,
        ..config(24)
    };
    let emulator = start(cfg.clone()).await;
    let client = Client::connect(common::client_config(&emulator, &cfg))
        .await
        .unwrap();
    // Before the data set begins (2020): every sub-window answers 204 with an empty body.
    let whole = window("2019-12-01", "2019-12-04");
    let (pages, stats) =
        collect(|tx| client.fetch_window(whole, SearchFilters::default(), DAY_MS, tx)).await;
    assert_eq!((pages.len(), stats.reported_hits), (3, 0));
    assert!(pages.iter().all(|p| p.body.is_empty()));
    assert!(extract(&pages, Api::Messaging).records.is_empty());
    let (pages, _) =
        collect(|tx| client.fetch_chat_window(whole, SearchFilters::default(), DAY_MS, tx)).await;
    assert!(pages.iter().all(|p| p.body.is_empty()));
    emulator.shutdown().await;
}

/// The fetch futures can run on any tokio worker (e.g. inside `tokio::spawn`).
#[allow(dead_code)]
fn fetch_futures_are_send(
    client: &Client,
    out: tokio::sync::mpsc::Sender<lpdrop_liveperson::FetchedPage>,
) {
    fn send<T: Send>(_: T) {}
    let w = window("2021-01-01", "2021-01-02");
    let filters = SearchFilters::default();
    send(client.fetch_window(w, &filters, DAY_MS, out.clone()));
    send(client.fetch_chat_window(w, Filters::default(), DAY_MS, out));
    send(client.search_page(w, &filters, 0));
    send(client.users());
    send(client.conversations_by_ids(&[]));
}
