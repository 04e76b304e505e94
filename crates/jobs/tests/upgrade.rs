//! Queues made before schema versioning, opened by this code: they are recognised as
//! version 0, migrated to the current version without losing anything, read back exactly as
//! the release that made them read them, and drained. And a queue made by a NEWER lpdrop is
//! refused.
//!
//! The fixtures (`tests/fixtures/`, see the README there) were made once by
//! `examples/legacy_queue_fixture.rs` with the library at commit f2b004e: a SQLite file and a
//! `pg_dump` of a Postgres queue, each with a JSON snapshot of what that release read back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lpdrop_jobs::{
    Attempt, Counts, DropRecord, Job, JobSpec, JobState, ListFilter, Queue, QueueError,
    SCHEMA_VERSION, Source,
};
use serde::Deserialize;

const ACCOUNT: &str = "12345678";
const LEASE: Duration = Duration::from_secs(60);

/// What the release that made the fixture read back from it (`legacy_queue_fixture.rs`).
#[derive(Deserialize)]
struct Snapshot {
    jobs: Vec<Job>,
    attempts: Vec<(i64, Vec<Attempt>)>,
    watermarks: Vec<(String, Source, Option<i64>)>,
    open_conversations: Vec<(i64, Vec<String>)>,
    pending_open_conversations: u64,
    by_state: Vec<(JobState, u64)>,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn snapshot(name: &str) -> Snapshot {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn reads_back_the_same(q: &Queue, s: &Snapshot) {
    assert_eq!(q.list(&ListFilter::default()).await.unwrap(), s.jobs);
    for (id, attempts) in &s.attempts {
        assert_eq!(&q.attempts(*id).await.unwrap(), attempts, "job {id}");
    }
    for (account, source, watermark) in &s.watermarks {
        assert_eq!(
            &q.watermark(account, *source).await.unwrap(),
            watermark,
            "{account} {source}"
        );
    }
    for (id, open) in &s.open_conversations {
        assert_eq!(
            &q.open_conversations_of(*id).await.unwrap(),
            open,
            "job {id}"
        );
    }
    assert_eq!(
        q.pending_open_conversations(ACCOUNT, Source::Messaging, i64::MAX)
            .await
            .unwrap(),
        s.pending_open_conversations
    );
    let by_state: BTreeMap<JobState, u64> = s.by_state.iter().copied().collect();
    assert_eq!(q.summary().await.unwrap().by_state, by_state);
}

/// Claims and completes every job left, as a worker would, and checks where each ends.
async fn drains(q: &Queue, s: &Snapshot) {
    let now = chrono::Utc::now().timestamp_millis();
    let due = q.summary().await.unwrap().next_due_ms.unwrap();
    assert!(
        due <= now,
        "the fixture's leases and backoffs are over (they were 60 s at most)"
    );
    let before: BTreeMap<i64, &Job> = s.jobs.iter().map(|j| (j.id, j)).collect();
    let counts = Counts {
        conversations: 7,
        open_conversations: 0,
        rows: 70,
        files: 9,
        bytes: 7_000,
    };
    let mut claimed = Vec::new();
    while let Some(lease) = q.claim("upgraded-worker", LEASE).await.unwrap() {
        let old = before[&lease.job.id];
        assert_eq!(lease.job.spec, old.spec, "job {}", old.id);
        assert_eq!(lease.attempt, old.attempts + 1, "job {}", old.id);
        assert_eq!(
            lease.taken_over,
            matches!(old.state, JobState::Running | JobState::Finished),
            "job {}: only a leased job is taken over",
            old.id
        );
        // A drop recorded by the old release is the one the job writes.
        let drop = DropRecord {
            id: format!("new-{}", old.id),
            created_at_ms: now,
            root: format!("folder/new-{}", old.id),
        };
        let in_force = q.record_drop(&lease, &drop).await.unwrap();
        assert_eq!(in_force, old.drop.clone().unwrap_or(drop), "job {}", old.id);
        assert!(matches!(
            q.heartbeat(&lease, LEASE).await.unwrap(),
            lpdrop_jobs::Heartbeat::Renewed { .. }
        ));
        q.uploaded(&lease, Some(&counts)).await.unwrap();
        claimed.push(old.id);
    }
    let waiting: Vec<i64> = s
        .jobs
        .iter()
        .filter(|j| !j.state.is_terminal())
        .map(|j| j.id)
        .collect();
    claimed.sort();
    assert_eq!(claimed, waiting, "every job left is claimed once");
    for old in &s.jobs {
        let job = q.get(old.id).await.unwrap();
        if old.state.is_terminal() {
            assert_eq!(&job, old, "a finished job is left alone");
        } else {
            assert_eq!(job.state, JobState::Uploaded, "job {}", old.id);
            assert_eq!(job.counts, Some(counts));
            assert_eq!(job.attempts, old.attempts + 1);
            let attempts = q.attempts(old.id).await.unwrap();
            assert_eq!(attempts.len() as u32, job.attempts);
            assert_eq!(
                attempts.last().unwrap().outcome.as_deref(),
                Some("uploaded")
            );
            if matches!(old.state, JobState::Running | JobState::Finished) {
                assert_eq!(attempts[0].outcome.as_deref(), Some("lease expired"));
            }
        }
    }
    let summary = q.summary().await.unwrap();
    assert_eq!(summary.active(), 0);
    assert_eq!(
        (
            summary.count(JobState::Dead),
            summary.count(JobState::Cancelled)
        ),
        (1, 1)
    );
    // New jobs continue the old ids.
    let max_id = s.jobs.iter().map(|j| j.id).max().unwrap();
    let spec = JobSpec {
        origin: "after-upgrade".into(),
        ..s.jobs[0].spec.clone()
    };
    assert!(q.add(&[spec]).await.unwrap()[0] > max_id);
    // The refetch job's taken conversation is still its own; the others are still free.
    let refetch = s.jobs.iter().find(|j| j.spec.origin == "refetch").unwrap();
    let mine = q
        .take_open_conversations(ACCOUNT, Source::Messaging, 10, &refetch.id.to_string())
        .await
        .unwrap();
    assert_eq!(mine, ["c001", "c002", "c003", "c004"]);
    // The watermark moves on from where the old release left it.
    let w = q.watermark(ACCOUNT, Source::Messaging).await.unwrap();
    assert!(
        q.advance_watermark(ACCOUNT, Source::Messaging, w, w.unwrap() + 1, &[])
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_queue_from_before_versioning_is_migrated_and_drained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    std::fs::copy(fixture("queue-v0.db"), &path).unwrap();
    let has_versions = |path: &Path| -> bool {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'lpdrop_schema_migrations'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            > 0
    };
    assert!(!has_versions(&path), "the fixture is unversioned");

    let q = Queue::open(&path.display().to_string()).await.unwrap();
    assert_eq!(q.schema_version().await.unwrap(), SCHEMA_VERSION);
    let s = snapshot("queue-v0.db.json");
    reads_back_the_same(&q, &s).await;
    drains(&q, &s).await;
    drop(q);
    // Opening again applies nothing more.
    let q = Queue::open(&path.display().to_string()).await.unwrap();
    assert_eq!(q.schema_version().await.unwrap(), SCHEMA_VERSION);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM lpdrop_schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rows, SCHEMA_VERSION);
}

/// Loads the fixture's `pg_dump` into a fresh database, as `psql -f` would. The dump's psql
/// meta-commands (`\restrict`, since Postgres 17.6 and 15.14) are psql's own and are left out.
async fn restore(url: &str, dump: &Path) {
    let sql: String = std::fs::read_to_string(dump)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .map(|l| format!("{l}\n"))
        .collect();
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(&sql).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_queue_from_before_versioning_is_migrated_and_drained() {
    let pg = lpdrop_testkit::Postgres::shared();
    let url = pg.create_database("upgrade_from_v0");
    restore(&url, &fixture("queue-v0.pg.sql")).await;
    assert_eq!(
        pg.psql(
            "upgrade_from_v0",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'lpdrop_schema_migrations'"
        )
        .trim(),
        "0",
        "the fixture is unversioned"
    );

    let q = Queue::open(&url).await.unwrap();
    assert_eq!(q.schema_version().await.unwrap(), SCHEMA_VERSION);
    let s = snapshot("queue-v0.pg.json");
    reads_back_the_same(&q, &s).await;
    drains(&q, &s).await;
    let q = Queue::open(&url).await.unwrap();
    assert_eq!(q.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(
        pg.psql(
            "upgrade_from_v0",
            "SELECT count(*) FROM lpdrop_schema_migrations"
        )
        .trim(),
        SCHEMA_VERSION.to_string()
    );
}

/// The DDL of the releases before versioning, verbatim (`SCHEMA` in lib.rs at f2b004e; `{ID}`
/// was the backend's auto-increment key): a queue whose tables were made by exactly this
/// text, with nothing in them yet, is adopted as version 1 and works.
const LEGACY_DDL: &str = "
CREATE TABLE IF NOT EXISTS lpdrop_jobs (
    id {ID},
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    window_from BIGINT NOT NULL,
    window_to BIGINT NOT NULL,
    filters TEXT NOT NULL,
    dest TEXT NOT NULL,
    origin TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    attempt_limit BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires BIGINT,
    drop_id TEXT,
    drop_created_at BIGINT,
    drop_root TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    uploaded_at BIGINT,
    conversations BIGINT,
    open_conversations BIGINT,
    rows_written BIGINT,
    files BIGINT,
    bytes BIGINT
);
CREATE INDEX IF NOT EXISTS lpdrop_jobs_due ON lpdrop_jobs (state, not_before);
CREATE TABLE IF NOT EXISTS lpdrop_job_attempts (
    job_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    worker TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    outcome TEXT,
    error TEXT,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE IF NOT EXISTS lpdrop_watermarks (
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    watermark BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, source)
);
CREATE TABLE IF NOT EXISTS lpdrop_open_conversations (
    account_id TEXT NOT NULL,
    source TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    job_id BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    taken_by TEXT,
    taken_at BIGINT,
    PRIMARY KEY (account_id, source, conversation_id)
);
CREATE INDEX IF NOT EXISTS lpdrop_open_conversations_job ON lpdrop_open_conversations (job_id);
";

fn spec() -> JobSpec {
    JobSpec {
        account_id: ACCOUNT.into(),
        source: Source::Messaging,
        window_from_ms: 1_772_323_200_000,
        window_to_ms: 1_772_326_800_000,
        skill_ids: vec![],
        dest: "s3://bucket/folder".into(),
        max_attempts: 3,
        origin: "add".into(),
    }
}

async fn adopted_and_works(url: &str) {
    let q = Queue::open(url).await.unwrap();
    assert_eq!(q.schema_version().await.unwrap(), SCHEMA_VERSION);
    let id = q.add(&[spec()]).await.unwrap()[0];
    let lease = q.claim("w", LEASE).await.unwrap().unwrap();
    assert_eq!(lease.job.id, id);
    q.uploaded(&lease, None).await.unwrap();
    assert_eq!(q.get(id).await.unwrap().state, JobState::Uploaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_ddl_is_adopted_as_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&LEGACY_DDL.replace("{ID}", "INTEGER PRIMARY KEY AUTOINCREMENT"))
        .unwrap();
    drop(conn);
    adopted_and_works(&path.display().to_string()).await;

    let pg = lpdrop_testkit::Postgres::shared();
    let url = pg.create_database("legacy_ddl");
    pg.psql(
        "legacy_ddl",
        &LEGACY_DDL.replace("{ID}", "BIGSERIAL PRIMARY KEY"),
    );
    adopted_and_works(&url).await;
}

fn assert_too_new(result: Result<Queue, QueueError>) {
    match result {
        Err(e @ QueueError::SchemaTooNew { found: 99, known }) => {
            assert_eq!(known, SCHEMA_VERSION);
            assert!(e.to_string().contains("created by a newer lpdrop"), "{e}");
        }
        Err(other) => panic!("expected SchemaTooNew, got {other}"),
        Ok(_) => panic!("a queue from a newer lpdrop was opened"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_from_a_newer_lpdrop_is_refused() {
    const FROM_THE_FUTURE: &str = "INSERT INTO lpdrop_schema_migrations \
        (version, description, applied_at) VALUES (99, 'from the future', 0)";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queue.db").display().to_string();
    Queue::open(&path).await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(FROM_THE_FUTURE)
        .unwrap();
    assert_too_new(Queue::open(&path).await);

    let pg = lpdrop_testkit::Postgres::shared();
    let url = pg.create_database("from_the_future");
    Queue::open(&url).await.unwrap();
    pg.psql("from_the_future", FROM_THE_FUTURE);
    assert_too_new(Queue::open(&url).await);
}
