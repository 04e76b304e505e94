//! `lpdrop convert` against the ceiling: `serde_json` alone parsing the same saved pages into
//! `serde_json::Value` on the same number of threads, measured in the same run, with the ratio
//! printed (the performance target is convert ≥ 1/3 of the ceiling). `benches/run.py` does the
//! same at larger sizes, with DuckDB and peak RSS, and writes benches/RESULTS.md.
//!
//! Run: `cargo bench --bench convert`
//! Size: `LPDROP_BENCH_CONVERSATIONS` (default 5000, about 110 MB of JSON); runs per
//! measurement, best kept: `LPDROP_BENCH_RUNS` (default 3); parser threads:
//! `LPDROP_BENCH_THREADS` (default: every core, as convert uses).
//!
//! Built by `cargo clippy --all-targets`. `cargo test` does not run it. Started without
//! `--bench` (by `cargo test --benches`, say), it only checks one small conversion.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn page_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Seconds for `threads` threads to parse every file into `serde_json::Value`.
fn parse_ceiling(files: &[PathBuf], threads: usize) -> f64 {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let records: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut records = 0;
                    while let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let body = std::fs::read(file).unwrap();
                        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        records += v["conversationHistoryRecords"]
                            .as_array()
                            .map_or(0, Vec::len);
                    }
                    records
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert!(records > 0);
    started.elapsed().as_secs_f64()
}

/// The kernel's high-water mark of a running process's resident memory, in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(kb / 1024.0)
}

/// Seconds for `lpdrop convert` of `pages` into a fresh folder, and its peak RSS (sampled).
fn convert(pages: &Path, out: &Path) -> (f64, Option<f64>) {
    let _ = std::fs::remove_dir_all(out);
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lpdrop"))
        .arg("convert")
        .arg("--input")
        .arg(pages)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .spawn()
        .expect("lpdrop runs");
    let mut rss = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        rss = peak_rss_mib(child.id()).or(rss);
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = started.elapsed().as_secs_f64();
    assert!(status.success(), "lpdrop convert failed: {status}");
    (secs, rss)
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let conversations: u64 = if benchmarking {
        env_or("LPDROP_BENCH_CONVERSATIONS", 5000)
    } else {
        200
    };
    let runs: usize = if benchmarking {
        env_or("LPDROP_BENCH_RUNS", 3).max(1)
    } else {
        1
    };
    let threads: usize = env_or(
        "LPDROP_BENCH_THREADS",
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    );

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("pages");
    let dataset = lpdrop_emulator::Dataset::new(&lpdrop_emulator::EmulatorConfig::default());
    let (_, bytes) =
        lpdrop_emulator::dump::write_pages(&dataset, 0, conversations, 100, &pages).unwrap();
    let files = page_files(&pages);
    let mb = bytes as f64 / 1e6;
    // Both sides read from the page cache.
    for f in &files {
        std::fs::read(f).unwrap();
    }

    let mut ceiling = f64::INFINITY;
    let mut converted = f64::INFINITY;
    let mut rss: Option<f64> = None;
    // Alternate the two, so that a noisy neighbour slows both alike.
    for _ in 0..runs {
        ceiling = ceiling.min(parse_ceiling(&files, threads));
        let (secs, peak) = convert(&pages, &dir.path().join("drop"));
        converted = converted.min(secs);
        rss = match (rss, peak) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    let ratio = ceiling / converted;
    println!(
        "convert bench: {conversations} conversations, {mb:.0} MB of saved pages, {threads} threads, best of {runs}"
    );
    println!(
        "  serde_json Value parse (ceiling): {:7.1} MB/s  ({ceiling:.2} s)",
        mb / ceiling
    );
    println!(
        "  lpdrop convert:                   {:7.1} MB/s  ({converted:.2} s, {:.0} conversations/s, peak RSS {})",
        mb / converted,
        conversations as f64 / converted,
        rss.map_or("unknown".to_string(), |r| format!("{r:.0} MiB"))
    );
    println!("  convert / ceiling: {ratio:.2} (target: at least 0.33)");
}
