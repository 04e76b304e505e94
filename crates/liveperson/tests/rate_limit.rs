//! The account-wide request budget. Benchmark-style measurements print the request rate the
//! client achieves against an emulator with a rate limit (and latency), as a fraction of the
//! limit: with the client's rate set to the limit, and with no rate set (the pace is found from
//! the 429s). Assertions on timing are only the loose, robust ones.

mod common;

use std::time::{Duration, Instant};

use common::{DAY_MS, collect, start, window};
use lpdrop_emulator::EmulatorConfig;
use lpdrop_liveperson::{Client, RequestBudget, RetryPolicy, SearchFilters};

const LIMIT: f64 = 50.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rate_against_a_limited_emulator() {
    let cfg = EmulatorConfig {
        per_day: 24,
        faults: format!("rps={LIMIT},latency=20ms").parse().unwrap(),
        ..EmulatorConfig::default()
    };
    let emulator = start(cfg.clone()).await;
    let mut cc = common::client_config(&emulator, &cfg);
    cc.max_requests_per_second = Some(LIMIT);
    cc.concurrency = 4;
    cc.page_size = 2; // small pages: the request rate, not JSON, is what is measured
    let client = Client::connect(cc).await.unwrap();
    let whole = window("2021-09-01", "2021-09-13"); // 288 conversations: 144 pages
    let before = emulator.stats();
    let started = Instant::now();
    let (pages, stats) =
        collect(|tx| client.fetch_window(whole, SearchFilters::default(), DAY_MS, tx)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = emulator.stats();
    let requests = (after.requests - before.requests) as f64;
    let rate = requests / elapsed;
    println!(
        "rate limit benchmark: {requests} requests in {elapsed:.2} s = {rate:.1} req/s against a \
         limit of {LIMIT} req/s (20 ms latency, 4 in flight): {:.3} of the limit; {} answered 429",
        rate / LIMIT,
        after.rate_limited - before.rate_limited
    );
    assert_eq!(pages.len() as u64, stats.pages);
    assert_eq!(stats.pages, 144);
    // The client never outruns its own bucket (1 request of burst), whatever the machine.
    assert!(
        requests <= 1.0 + LIMIT * elapsed * 1.02,
        "{requests} in {elapsed} s"
    );
    // Loose: even a busy CI machine gets more than half the limit.
    assert!(rate / LIMIT > 0.5, "{rate} req/s");
    emulator.shutdown().await;
}

/// No rate configured: the client must find the limit from the 429s alone. LivePerson's own
/// back-off (1 s, doubling) is kept for the refused requests, as in production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pace_adapts_to_an_unknown_limit() {
    const ADAPTIVE_LIMIT: f64 = 20.0;
    let cfg = EmulatorConfig {
        per_day: 24,
        faults: format!("rps={ADAPTIVE_LIMIT},latency=30ms")
            .parse()
            .unwrap(),
        ..EmulatorConfig::default()
    };
    let emulator = start(cfg.clone()).await;
    let mut cc = common::client_config(&emulator, &cfg);
    cc.max_requests_per_second = None;
    cc.concurrency = 4;
    cc.page_size = 2;
    cc.retry = RetryPolicy::default();
    let client = Client::connect(cc).await.unwrap();
    let whole = window("2021-09-01", "2021-09-13"); // 288 conversations: 144 pages
    let before = emulator.stats();
    let started = Instant::now();
    let (pages, stats) =
        collect(|tx| client.fetch_window(whole, SearchFilters::default(), DAY_MS, tx)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = emulator.stats();
    let requests = (after.requests - before.requests) as f64;
    let refused = after.rate_limited - before.rate_limited;
    let taken = requests - refused as f64;
    let rate = taken / elapsed;
    println!(
        "adaptive rate benchmark: {taken} requests taken in {elapsed:.2} s = {rate:.1} req/s \
         against an unknown limit of {ADAPTIVE_LIMIT} req/s (30 ms latency, 4 in flight, no \
         rate configured): {:.3} of the limit; {refused} answered 429 of {requests}",
        rate / ADAPTIVE_LIMIT,
    );
    assert_eq!(pages.len() as u64, stats.pages);
    assert_eq!(stats.pages, 144);
    // Loose, for a busy machine: well over half the limit (without the pace, the refused
    // requests' back-off alone set it: about a fifth), and 429s a small part of the requests.
    assert!(rate / ADAPTIVE_LIMIT > 0.5, "{rate} req/s");
    assert!(refused as f64 <= 0.1 * requests, "{refused} of {requests}");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_share_one_budget() {
    let (emulator, cc) = limited_to_40_per_s().await;
    let client = Client::connect(cc).await.unwrap();
    two_clients_stay_at_40_per_s(&emulator, &client, &client.clone()).await;
    emulator.shutdown().await;
}

/// A worker gives every job of an account one budget: two clients made from it pace together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_given_one_budget_share_it() {
    let (emulator, mut cc) = limited_to_40_per_s().await;
    cc.budget = Some(RequestBudget::new(&cc));
    let a = Client::connect(cc.clone()).await.unwrap();
    let b = Client::connect(cc).await.unwrap();
    two_clients_stay_at_40_per_s(&emulator, &a, &b).await;
    emulator.shutdown().await;
}

async fn limited_to_40_per_s() -> (lpdrop_emulator::Emulator, lpdrop_liveperson::ClientConfig) {
    let cfg = EmulatorConfig {
        per_day: 48,
        ..EmulatorConfig::default()
    };
    let emulator = start(cfg.clone()).await;
    let mut cc = common::client_config(&emulator, &cfg);
    cc.max_requests_per_second = Some(40.0);
    cc.page_size = 4;
    (emulator, cc)
}

async fn two_clients_stay_at_40_per_s(
    emulator: &lpdrop_emulator::Emulator,
    client: &Client,
    other: &Client,
) {
    let before = emulator.stats().requests;
    let started = Instant::now();
    let a = collect(|tx| {
        client.fetch_window(
            window("2021-10-01", "2021-10-02"),
            SearchFilters::default(),
            DAY_MS,
            tx,
        )
    });
    let b = collect(|tx| {
        other.fetch_window(
            window("2021-10-02", "2021-10-03"),
            SearchFilters::default(),
            DAY_MS,
            tx,
        )
    });
    let ((pa, _), (pb, _)) = tokio::join!(a, b);
    let elapsed = started.elapsed();
    let requests = (emulator.stats().requests - before) as f64;
    assert_eq!(pa.len() + pb.len(), 24);
    // Two clients at full speed would be twice as fast: one shared bucket keeps them at 40/s.
    assert!(
        requests <= 1.0 + 40.0 * elapsed.as_secs_f64() * 1.02,
        "{requests} requests in {elapsed:?}"
    );
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
}
