//! Writes the "version 0" queue fixtures that `tests/upgrade.rs` opens with newer code.
//!
//! The committed fixtures were made ONCE, with the library as of commit f2b004e (before
//! schema versioning existed), by
//!
//! ```text
//! cargo run -p lpdrop-jobs --example legacy_queue_fixture -- sqlite crates/jobs/tests/fixtures
//! cargo run -p lpdrop-jobs --example legacy_queue_fixture -- postgres crates/jobs/tests/fixtures
//! ```
//!
//! which leave `queue-v0.db` (a SQLite queue) and `queue-v0.pg.sql` (`pg_dump --inserts` of
//! a Postgres queue), each with a `.json` snapshot of everything that release read back from
//! it. Running it again with today's code would make a CURRENT queue, not a version 0 one:
//! the fixtures must not be regenerated, only added to (with a new name and a new example run
//! at the commit that makes them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lpdrop_jobs::{
    Attempt, Counts, DropRecord, Job, JobSpec, JobState, ListFilter, Queue, REFETCH_ORIGIN, Source,
};
use serde::Serialize;

const ACCOUNT: &str = "12345678";

/// What the release that wrote the queue read back from it.
#[derive(Serialize)]
struct Snapshot {
    made_by: &'static str,
    jobs: Vec<Job>,
    attempts: Vec<(i64, Vec<Attempt>)>,
    watermarks: Vec<(String, Source, Option<i64>)>,
    open_conversations: Vec<(i64, Vec<String>)>,
    pending_open_conversations: u64,
    by_state: Vec<(JobState, u64)>,
}

fn spec(hour: i64, max_attempts: u32) -> JobSpec {
    let from = 1_772_323_200_000 + hour * 3_600_000; // 2026-03-01T00:00Z + hours
    JobSpec {
        account_id: ACCOUNT.into(),
        source: Source::Messaging,
        window_from_ms: from,
        window_to_ms: from + 3_600_000,
        skill_ids: vec![],
        dest: "s3://bucket/folder".into(),
        max_attempts,
        origin: "add".into(),
    }
}

fn drop_record(n: u32) -> DropRecord {
    DropRecord {
        id: format!("0b6f3c1e-aaaa-4bbb-8ccc-00000000000{n}"),
        created_at_ms: 1_772_323_200_000 + i64::from(n),
        root: format!("folder/2026/03/01/00/drop-{n}"),
    }
}

/// Leases and backoffs are short so that a test run a minute later finds every waiting job
/// due (and every lease expired: those jobs are taken over).
const LEASE: Duration = Duration::from_secs(60);

/// Fills `q` with jobs in every state. Claims pick the oldest due job, so each job is added
/// and driven to its state before the next is added, and nothing due is left behind until
/// the end.
async fn populate(q: &Queue) {
    let counts = Counts {
        conversations: 120,
        open_conversations: 3,
        rows: 4567,
        files: 32,
        bytes: 890_123,
    };
    let claim = |w: &'static str| async move { q.claim(w, LEASE).await.unwrap().unwrap() };

    // Uploaded through finish, with a drop.
    let uploaded = q.add(&[spec(0, 3)]).await.unwrap()[0];
    let l = claim("w-uploaded").await;
    q.record_drop(&l, &drop_record(1)).await.unwrap();
    q.finish(&l, &counts).await.unwrap();
    q.uploaded(&l, None).await.unwrap();

    // Uploaded straight from running, counts given then.
    let uploaded2 = q.add(&[spec(1, 3)]).await.unwrap()[0];
    let l = claim("w-uploaded2").await;
    q.uploaded(&l, Some(&counts)).await.unwrap();

    // Failed, to be retried after a backoff.
    q.add(&[spec(2, 3)]).await.unwrap();
    let l = claim("w-failed").await;
    q.fail(&l, "HTTP 503 from msgHist", Some(Duration::from_secs(30)))
        .await
        .unwrap();

    // Dead: a failure no retry can fix.
    q.add(&[spec(3, 1)]).await.unwrap();
    let l = claim("w-dead").await;
    q.fail(&l, "source chat is not supported yet", None)
        .await
        .unwrap();

    // Cancelled while running.
    let cancelled = q.add(&[spec(4, 3)]).await.unwrap()[0];
    claim("w-cancelled").await;
    q.cancel(cancelled).await.unwrap();

    // Handed back by a worker shutting down (one more attempt allowed).
    q.add(&[spec(5, 1)]).await.unwrap();
    let l = claim("w-released").await;
    q.release(&l, Duration::from_secs(20)).await.unwrap();

    // Running under a lease, with its drop recorded.
    q.add(&[spec(6, 3)]).await.unwrap();
    let l = claim("w-running").await;
    q.heartbeat(&l, LEASE).await.unwrap();
    q.record_drop(&l, &drop_record(6)).await.unwrap();

    // Finished (data written), lease still held.
    q.add(&[spec(7, 3)]).await.unwrap();
    let l = claim("w-finished").await;
    q.record_drop(&l, &drop_record(7)).await.unwrap();
    q.finish(&l, &counts).await.unwrap();

    // Dead on its only attempt, then retried by a person: queued with a fresh allowance.
    let retried = q.add(&[spec(8, 1)]).await.unwrap()[0];
    let l = claim("w-retried").await;
    q.fail(&l, "boom", Some(Duration::ZERO)).await.unwrap();
    q.retry(retried).await.unwrap();

    // Queued: a chat job with skill filters.
    let mut chat = spec(9, 5);
    chat.source = Source::Chat;
    chat.skill_ids = vec![1100000001, 1100000002];
    chat.dest = "/var/lib/lpdrop/out".into();
    q.add(&[chat]).await.unwrap();

    // Watermarks, with the jobs a scheduler enqueued when moving them.
    let scheduled: Vec<JobSpec> = (10..12)
        .map(|h| JobSpec {
            origin: "schedule".into(),
            ..spec(h, 5)
        })
        .collect();
    q.advance_watermark(
        ACCOUNT,
        Source::Messaging,
        None,
        1_772_366_400_000,
        &scheduled,
    )
    .await
    .unwrap()
    .unwrap();
    q.advance_watermark(ACCOUNT, Source::Chat, None, 1_772_323_200_000, &[])
        .await
        .unwrap()
        .unwrap();

    // Open conversations: some remembered, one taken by a refetch job.
    q.add_open_conversations(uploaded, &["c001".into(), "c002".into(), "c003".into()])
        .await
        .unwrap();
    q.add_open_conversations(uploaded2, &["c004".into()])
        .await
        .unwrap();
    let refetch = JobSpec {
        origin: REFETCH_ORIGIN.into(),
        ..spec(12, 5)
    };
    let refetch_id = q.add(&[refetch]).await.unwrap()[0];
    let taken = q
        .take_open_conversations(ACCOUNT, Source::Messaging, 1, &refetch_id.to_string())
        .await
        .unwrap();
    assert_eq!(taken, ["c001"]);
}

async fn snapshot(q: &Queue) -> Snapshot {
    let jobs = q.list(&ListFilter::default()).await.unwrap();
    let mut attempts = Vec::new();
    let mut open_conversations = Vec::new();
    for j in &jobs {
        attempts.push((j.id, q.attempts(j.id).await.unwrap()));
        open_conversations.push((j.id, q.open_conversations_of(j.id).await.unwrap()));
    }
    let mut watermarks = Vec::new();
    for account in [ACCOUNT, "other"] {
        for source in [Source::Messaging, Source::Chat, Source::Dimensions] {
            let w = q.watermark(account, source).await.unwrap();
            watermarks.push((account.to_string(), source, w));
        }
    }
    let summary = q.summary().await.unwrap();
    Snapshot {
        made_by: "lpdrop-jobs at f2b004e, examples/legacy_queue_fixture.rs",
        jobs,
        attempts,
        watermarks,
        open_conversations,
        pending_open_conversations: q
            .pending_open_conversations(ACCOUNT, Source::Messaging, i64::MAX)
            .await
            .unwrap(),
        by_state: summary.by_state.into_iter().collect(),
    }
}

fn write_snapshot(path: &Path, s: &Snapshot) {
    let mut text = serde_json::to_string_pretty(s).unwrap();
    text.push('\n');
    std::fs::write(path, text).unwrap();
    eprintln!("wrote {}", path.display());
}

/// The newest Debian Postgres client tools, as lpdrop-testkit finds the server.
fn pg_bin(program: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("LPDROP_PG_BIN") {
        return PathBuf::from(dir).join(program);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's postgresql is installed")
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions.pop().expect("a Postgres version").1.join(program)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [backend, dir] = &args[..] else {
        panic!("usage: legacy_queue_fixture sqlite|postgres OUTPUT_DIR");
    };
    let dir = PathBuf::from(dir);
    match backend.as_str() {
        "sqlite" => {
            let db = dir.join("queue-v0.db");
            assert!(
                !db.exists(),
                "{} exists: fixtures are made once",
                db.display()
            );
            let q = Queue::open(&db.display().to_string()).await.unwrap();
            populate(&q).await;
            write_snapshot(&dir.join("queue-v0.db.json"), &snapshot(&q).await);
            // Closing the last connection checkpoints the WAL into the file and removes it:
            // one self-contained file, still in WAL mode like every queue that release made.
            drop(q);
            let wal = dir.join("queue-v0.db-wal");
            assert!(!wal.exists(), "{} is left over", wal.display());
        }
        "postgres" => {
            let sql = dir.join("queue-v0.pg.sql");
            assert!(
                !sql.exists(),
                "{} exists: fixtures are made once",
                sql.display()
            );
            let pg = lpdrop_testkit::Postgres::start();
            let url = pg.create_database("fixture");
            let q = Queue::open(&url).await.unwrap();
            populate(&q).await;
            write_snapshot(&dir.join("queue-v0.pg.json"), &snapshot(&q).await);
            let out = Command::new(pg_bin("pg_dump"))
                .args(["-h", "127.0.0.1", "-p", &pg.port().to_string()])
                .args(["-U", "lpdrop", "-d", "fixture"])
                .args([
                    "--inserts",
                    "--no-owner",
                    "--no-privileges",
                    "--no-comments",
                ])
                .output()
                .expect("pg_dump runs");
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&sql, out.stdout).unwrap();
            eprintln!("wrote {}", sql.display());
        }
        other => panic!("unknown backend {other:?}"),
    }
}
