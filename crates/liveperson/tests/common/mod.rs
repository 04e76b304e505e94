//! Shared by the client's tests against the emulator: start one, point a client at it, collect
//! what `fetch_window` hands over, and extract records the way the cli does.

#![allow(dead_code)]

use std::collections::HashSet;
use std::time::Duration;

use lpdrop_emulator::{Emulator, EmulatorConfig};
use lpdrop_liveperson::page::{decode_chat_record, decode_record, parse_chat_page, parse_page};
use lpdrop_liveperson::{ClientConfig, FetchedPage, RetryPolicy, Window};
use tokio::sync::mpsc;

pub const DAY_MS: i64 = 86_400_000;

pub async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the emulator starts on a loopback port")
}

/// Retries a thousand times faster than in production, so fault tests run in seconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 12,
        ..RetryPolicy::default().scaled_down(1000)
    }
}

/// An API-key client configuration for `emulator`, with fast retries.
pub fn client_config(emulator: &Emulator, config: &EmulatorConfig) -> ClientConfig {
    let mut c = ClientConfig::new(
        emulator.domain_url(),
        config.account_id.clone(),
        config.api_key.clone(),
    );
    c.retry = fast_retry();
    c.request_timeout = Duration::from_secs(30);
    c
}

pub fn window(from: &str, to: &str) -> Window {
    Window::parse(from, to).unwrap()
}

/// Runs a fetch with a channel and returns what came through it, in order.
pub async fn collect<F, Fut>(fetch: F) -> (Vec<FetchedPage>, lpdrop_liveperson::FetchStats)
where
    F: FnOnce(mpsc::Sender<FetchedPage>) -> Fut,
    Fut: std::future::Future<
            Output = Result<lpdrop_liveperson::FetchStats, lpdrop_liveperson::Error>,
        >,
{
    let (tx, mut rx) = mpsc::channel(8);
    let reader = tokio::spawn(async move {
        let mut pages = Vec::new();
        while let Some(p) = rx.recv().await {
            pages.push(p);
        }
        pages
    });
    let stats = fetch(tx).await.expect("the fetch succeeds");
    (reader.await.unwrap(), stats)
}

/// What the cli keeps: per record its id and exact JSON text, in page order.
#[derive(Debug, Default)]
pub struct Extracted {
    pub records: Vec<(String, String)>,
    /// Records whose start lies outside their sub-window (rounding overlap).
    pub outside: u64,
    /// Records seen twice in one sub-window.
    pub duplicates: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Messaging,
    Chat,
}

/// The cli's rules: a record counts only in the sub-window its exact start time lies in, and
/// once per sub-window (the seen-set is emptied when the sub-window changes). Every record
/// must decode.
pub fn extract(pages: &[FetchedPage], api: Api) -> Extracted {
    let mut out = Extracted::default();
    let mut current: Option<Window> = None;
    let mut seen: HashSet<String> = HashSet::new();
    for page in pages {
        if current != Some(page.window) {
            current = Some(page.window);
            seen.clear();
        }
        let raws = match api {
            Api::Messaging => parse_page(&page.body).expect("a readable page").records,
            Api::Chat => {
                parse_chat_page(&page.body)
                    .expect("a readable page")
                    .records
            }
        };
        for raw in raws {
            let (id, start) = match api {
                Api::Messaging => {
                    let c = decode_record(raw).expect("every record decodes");
                    (
                        c.info.conversation_id.0.unwrap(),
                        c.info.start_time_l.0.unwrap(),
                    )
                }
                Api::Chat => {
                    let c = decode_chat_record(raw).expect("every chat decodes");
                    (
                        c.info.engagement_id.0.unwrap(),
                        c.info.start_time_l.0.unwrap(),
                    )
                }
            };
            if !page.window.contains(start) {
                out.outside += 1;
            } else if !seen.insert(id.clone()) {
                out.duplicates += 1;
            } else {
                out.records.push((id, raw.get().to_string()));
            }
        }
    }
    out
}

/// Pages come by sub-window then offset; each sub-window's pages are contiguous; sub-windows
/// tile the window.
pub fn assert_page_order(pages: &[FetchedPage], whole: Window) {
    let mut windows: Vec<Window> = Vec::new();
    for pair in pages.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.window == b.window {
            assert!(b.offset > a.offset, "offsets ascend within a sub-window");
        } else {
            assert_eq!(b.offset, 0, "a sub-window starts at offset 0");
            assert!(
                b.window.from_ms() >= a.window.to_ms(),
                "sub-windows come in order"
            );
        }
    }
    for p in pages {
        if windows.last() != Some(&p.window) {
            assert!(
                !windows.contains(&p.window),
                "the pages of a sub-window are contiguous"
            );
            windows.push(p.window);
        }
    }
    assert_eq!(windows.first().unwrap().from_ms(), whole.from_ms());
    assert_eq!(windows.last().unwrap().to_ms(), whole.to_ms());
    for pair in windows.windows(2) {
        assert_eq!(
            pair[0].to_ms(),
            pair[1].from_ms(),
            "sub-windows tile the window"
        );
    }
}
