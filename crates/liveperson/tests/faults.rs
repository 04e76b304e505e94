//! A flaky LivePerson changes nothing in what is extracted: with 5xx, 429 (with and without
//! `Retry-After`), truncated bodies, dropped connections, slow answers (timeouts), partial shard
//! results and `isPartial` records, the records handed over are byte-identical to a fault-free
//! run. Retry delays are scaled down a thousand times.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Api, DAY_MS, collect, extract, start, window};
use lpdrop_emulator::{Dataset, EmulatorConfig, EmulatorStats, Faults};
use lpdrop_liveperson::{Client, Error, SearchFilters, Window};

async fn extract_with(
    faults: &str,
    per_day: u32,
    whole: Window,
    page_size: u32,
) -> (Vec<(String, String)>, EmulatorStats) {
    let cfg = EmulatorConfig {
        per_day,
        faults: faults.parse::<Faults>().unwrap(),
        ..EmulatorConfig::default()
    };
    let emulator = start(cfg.clone()).await;
    let mut cc = common::client_config(&emulator, &cfg);
    cc.page_size = page_size;
    cc.concurrency = 6;
    // Answers held back by the `slow` fault (600 ms) time out and are retried.
    cc.request_timeout = Duration::from_millis(400);
    let client = Client::connect(cc).await.unwrap();
    let (pages, _) =
        collect(|tx| client.fetch_window(whole, SearchFilters::default(), DAY_MS, tx)).await;
    let records = extract(&pages, Api::Messaging).records;
    let stats = emulator.stats();
    emulator.shutdown().await;
    (records, stats)
}

fn by_id(records: &[(String, String)]) -> BTreeMap<&str, &str> {
    records
        .iter()
        .map(|(id, json)| (id.as_str(), json.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_at_their_rates_change_nothing() {
    let whole = window("2021-06-01", "2021-06-21");
    let (clean, clean_stats) = extract_with("none", 96, whole, 25).await;
    let faults = "500=0.06,503=0.04,429=0.025,429ra=0.025,truncate=0.01,drop=0.01,shards=0.01,\
                  slow=0.01,slow-delay=600ms,partial=0.01,seed=11";
    let (flaky, stats) = extract_with(faults, 96, whole, 25).await;
    println!("fault-free: {clean_stats:?}");
    println!("faulty:     {stats:?}");

    let dataset = Dataset::new(&EmulatorConfig {
        per_day: 96,
        ..EmulatorConfig::default()
    });
    let expected: Vec<String> = dataset
        .index_range(whole.from_ms(), whole.to_ms() - 1)
        .map(|i| dataset.conversation_id(i))
        .collect();
    let clean_ids: Vec<&String> = clean.iter().map(|(id, _)| id).collect();
    assert_eq!(clean_ids, expected.iter().collect::<Vec<_>>());
    assert_eq!(flaky.len(), clean.len(), "as many records");
    assert_eq!(
        by_id(&flaky),
        by_id(&clean),
        "the same ids with byte-identical records"
    );
    assert_eq!(flaky, clean, "in the same order");
    assert!(stats.server_errors > 0 && stats.throttled > 0, "{stats:?}");
    assert!(
        stats.partial_records > 0 && stats.by_id_requests > 0,
        "{stats:?}"
    );
    assert_eq!(clean_stats.partial_records, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_fault_at_least_once_changes_nothing() {
    let whole = window("2021-07-01", "2021-07-05");
    let (clean, _) = extract_with("none", 200, whole, 20).await;
    // Schedules make sure each fault happens, whatever the draws.
    // (Prime periods: about a third of the requests fail, never many in a row.)
    let faults = "429=every:23,429ra=every:29,retry-after=1,500=every:31,503=every:37,\
                  drop=every:19,truncate=every:17,slow=every:41,slow-delay=600ms,shards=every:13,\
                  partial=0.03";
    let (flaky, stats) = extract_with(faults, 200, whole, 20).await;
    println!("{stats:?}");
    for (what, n) in [
        ("429", stats.throttled),
        ("5xx", stats.server_errors),
        ("dropped connections", stats.dropped),
        ("truncated bodies", stats.truncated),
        ("slow answers", stats.slow),
        ("partial pages", stats.partial_pages),
        ("partial records", stats.partial_records),
    ] {
        assert!(n > 0, "no {what}: {stats:?}");
    }
    assert_eq!(flaky, clean);
}

#[tokio::test]
async fn retries_that_run_out_name_the_request_and_what_happened() {
    let cfg = EmulatorConfig {
        per_day: 10,
        faults: "503=1".parse().unwrap(),
        ..EmulatorConfig::default()
    };
    let emulator = start(cfg.clone()).await;
    let mut cc = common::client_config(&emulator, &cfg);
    cc.retry.max_attempts = 3;
    let client = Client::connect(cc).await.unwrap();
    let w = window("2021-08-01", "2021-08-02");
    let err = client
        .search_page(w, SearchFilters::default(), 0)
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 3, .. }),
        "{shown}"
    );
    assert!(
        shown.contains("MI search [2021-08-01T00:00:00.000Z"),
        "{shown}"
    );
    assert!(
        shown.contains("offset 0") && shown.contains("HTTP 503"),
        "{shown}"
    );
    assert!(!shown.contains("emulator"), "no secret in {shown}");
    assert_eq!(emulator.stats().requests, 3);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_bad_request_is_not_retried() {
    let cfg = EmulatorConfig {
        per_day: 10,
        ..EmulatorConfig::default()
    };
    let emulator = start(cfg.clone()).await;
    let client = Client::connect(common::client_config(&emulator, &cfg))
        .await
        .unwrap();
    let w = window("2021-08-01", "2021-08-02");
    let bogus = SearchFilters {
        skill_ids: Vec::new(),
        status: vec!["BOGUS".into()],
    };
    let err = client.search_page(w, bogus, 0).await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(err.to_string().contains("status"), "{err}");
    assert_eq!(emulator.stats().requests, 1, "4xx fails at once");
    emulator.shutdown().await;
}

#[tokio::test]
async fn throttling_with_retry_after_holds_back_the_whole_client() {
    let cfg = EmulatorConfig {
        per_day: 10,
        faults: "429ra=first:1,retry-after=1".parse().unwrap(),
        ..EmulatorConfig::default()
    };
    let emulator = start(cfg.clone()).await;
    let mut cc = common::client_config(&emulator, &cfg);
    // Retry-After (1 s) is honoured up to max_delay.
    cc.retry.max_delay = Duration::from_millis(300);
    let client = Client::connect(cc).await.unwrap();
    let w = window("2021-08-01", "2021-08-02");
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(client.search_page(w, SearchFilters::default(), 0), async {
        // Sent just after the first request was throttled: it waits for the pause too.
        tokio::time::sleep(Duration::from_millis(50)).await;
        client
            .clone()
            .search_page(w, SearchFilters::default(), 0)
            .await
    });
    a.unwrap();
    b.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(emulator.stats().throttled, 1);
    emulator.shutdown().await;
}
