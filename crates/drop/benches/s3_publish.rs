//! Publishing throughput and memory: one 1 GiB file through the S3 sink's upload path to a moto
//! server, against boto3's `upload_file` of the same file to the same server in the same run.
//!
//! Run: `cargo bench -p lpdrop-drop --bench s3_publish` (needs .ci/venv from tests/run-all.sh).
//! Size: `LPDROP_BENCH_MIB` (default 1024).

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use lpdrop_drop::{RetryBudget, S3Store, S3WriteOptions};
use lpdrop_testkit::Moto;

/// Peak resident memory of this process so far, from the kernel's high-water mark.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let mib: u64 = std::env::var("LPDROP_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.parquet");
    {
        // Incompressible-looking bytes, written in 1 MiB chunks (the bench itself stays small).
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for b in chunk.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            f.write_all(&chunk).unwrap();
        }
    }
    let bytes = mib << 20;
    let sha = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let mut file = std::fs::File::open(&path).unwrap();
        std::io::copy(&mut file, &mut h).unwrap();
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let rss_before = peak_rss_mib();

    let moto = Moto::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = S3Store::new(
        &moto.s3(),
        "bench",
        S3WriteOptions::default(),
        RetryBudget::default(),
    );
    runtime.block_on(async { moto.create_bucket("bench").await });

    let started = Instant::now();
    runtime
        .block_on(store.put_file("lpdrop/table.parquet", &path, &sha))
        .unwrap();
    let ours = started.elapsed().as_secs_f64();
    let rss_after = peak_rss_mib();

    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/venv/bin/python");
    let script = format!(
        "import boto3,time\ns3=boto3.client('s3',endpoint_url='{}',aws_access_key_id='test',aws_secret_access_key='test',region_name='us-east-1')\nt=time.time()\ns3.upload_file('{}','bench','boto3/table.parquet')\nprint(time.time()-t)",
        moto.url,
        path.display()
    );
    let out = Command::new(&python)
        .arg("-c")
        .arg(&script)
        .output()
        .expect("the venv python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boto: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();

    let mb = bytes as f64 / 1e6;
    println!("| upload of {mib} MiB to moto | seconds | MB/s | vs boto3 upload_file |");
    println!("|---|---|---|---|");
    println!(
        "| lpdrop S3 sink (multipart, 16 MiB parts, 4 in flight, SHA-256 per part) | {ours:.2} | {:.0} | {:.2}x |",
        mb / ours,
        boto / ours
    );
    println!(
        "| boto3 upload_file (defaults: 8 MiB parts, 10 threads) | {boto:.2} | {:.0} | 1.00x |",
        mb / boto
    );
    println!();
    println!(
        "peak RSS of the uploading process: {rss_before:.0} MiB before, {rss_after:.0} MiB after publishing {mib} MiB (growth {:.0} MiB)",
        rss_after - rss_before
    );
}
