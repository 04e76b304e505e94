//! The ceiling for `lpdrop convert`: how fast `serde_json` alone parses the same saved pages
//! on the same number of threads (into `serde_json::Value`, and with lpdrop's typed, lenient
//! record decoding). Used by `benches/run.py`.
//!
//! Run: `cargo run --release --example parse_baseline -- DIR THREADS`

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use lpdrop_liveperson::page::{decode_record, parse_page};

fn run(files: &[PathBuf], threads: usize, typed: bool) -> (f64, u64, u64) {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let totals: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let (mut bytes, mut records) = (0u64, 0u64);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        let body = std::fs::read(file).unwrap();
                        bytes += body.len() as u64;
                        if typed {
                            let page = parse_page(&body).unwrap();
                            for raw in &page.records {
                                if decode_record(raw).is_ok() {
                                    records += 1;
                                }
                            }
                        } else {
                            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                            records += v["conversationHistoryRecords"]
                                .as_array()
                                .map_or(0, |a| a.len() as u64);
                        }
                    }
                    (bytes, records)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = started.elapsed().as_secs_f64();
    let bytes = totals.iter().map(|t| t.0).sum();
    let records = totals.iter().map(|t| t.1).sum();
    (secs, bytes, records)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("DIR"));
    let threads: usize = args.next().map_or(2, |t| t.parse().expect("THREADS"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    // Warm the page cache so both runs read from memory, as convert's second pass would.
    for f in &files {
        let _ = std::fs::read(f).unwrap();
    }
    for (name, typed) in [("serde_json_value", false), ("typed_decode", true)] {
        let (secs, bytes, records) = run(&files, threads, typed);
        // One JSON line per measurement, read by benches/run.py.
        println!(
            "{{\"name\":\"{name}\",\"threads\":{threads},\"seconds\":{secs},\"bytes\":{bytes},\"records\":{records}}}"
        );
    }
}
