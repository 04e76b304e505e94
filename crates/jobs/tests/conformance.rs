//! One conformance suite, two backends: every case below runs against a SQLite file and
//! against a real Postgres server (Debian's packages, started by the test on 127.0.0.1; the
//! test fails, never skips, when Postgres is not installed).

use std::collections::BTreeSet;
use std::time::Duration;

use lpdrop_jobs::{
    Counts, DropRecord, FailOutcome, Heartbeat, JobSpec, JobState, ListFilter, Queue, QueueError,
    Source,
};

/// A fresh, empty queue of one backend; more handles (connections) can be opened on it.
struct Backend {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        Backend {
            url: dir.path().join("queue.db").display().to_string(),
            _dir: Some(dir),
        }
    }

    fn postgres(case: &str) -> Backend {
        let pg = lpdrop_testkit::Postgres::shared();
        Backend {
            url: pg.create_database(&format!("conformance_{case}")),
            _dir: None,
        }
    }

    async fn open(&self) -> Queue {
        Queue::open(&self.url).await.expect("the queue opens")
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = super::Backend::sqlite();
                    super::$case(&backend).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = super::Backend::postgres(stringify!($case));
                    super::$case(&backend).await;
                }
            )*
        }
    };
}

conformance!(
    jobs_round_trip,
    claims_take_the_oldest_due_job_once,
    concurrent_claims_never_share_a_job,
    an_expired_lease_is_taken_over_and_the_old_lease_is_fenced,
    failures_back_off_then_die,
    takeover_on_the_last_attempt_is_dead,
    cancel_stops_a_running_job_and_retry_brings_it_back,
    the_first_recorded_drop_wins,
    finished_then_uploaded_keeps_counts_timings_and_history,
    a_released_job_is_claimable_after_its_delay,
    watermarks_advance_only_from_the_expected_value,
    open_conversations_are_remembered_and_taken_once,
    summary_counts_states_and_the_next_due_time,
    the_schema_is_created_once_by_racing_openers,
    the_pace_board_counts_live_leases_and_takes_one_cut_per_gap,
    the_send_schedule_hands_out_times_one_interval_apart,
);

const LONG: Duration = Duration::from_secs(60);

async fn the_send_schedule_hands_out_times_one_interval_apart(b: &Backend) {
    let q = b.open().await;
    let interval = Duration::from_secs(10);
    let secs = |d: Duration| d.as_secs_f64();
    assert_eq!(
        q.reserve_send("111", interval).await.unwrap(),
        Duration::ZERO
    );
    let second = secs(q.reserve_send("111", interval).await.unwrap());
    assert!((9.0..=10.0).contains(&second), "{second}");
    let third = secs(q.reserve_send("111", interval).await.unwrap());
    assert!((19.0..=20.0).contains(&third), "{third}");
    // Another account has its own schedule.
    assert_eq!(
        q.reserve_send("222", interval).await.unwrap(),
        Duration::ZERO
    );
    // A schedule without a cut yet: the board says no rate, and the first cut is taken.
    let board = q.pace_board("111").await.unwrap();
    assert_eq!((board.rate_milli, board.cut_at_ms), (None, None));
    assert!(q.cut_pace("111", "w1", 5_000, LONG).await.unwrap());
    assert_eq!(q.pace_board("111").await.unwrap().rate_milli, Some(5_000));
    // Concurrent reservations never share a send time.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            q.reserve_send("333", Duration::from_secs(1)).await.unwrap()
        }));
    }
    let mut waits = Vec::new();
    for t in tasks {
        waits.push(t.await.unwrap().as_millis() / 100);
    }
    waits.sort();
    waits.dedup();
    assert_eq!(waits.len(), 8, "{waits:?}");
}

async fn the_pace_board_counts_live_leases_and_takes_one_cut_per_gap(b: &Backend) {
    let q = b.open().await;
    let account = "12345678";
    let empty = q.pace_board(account).await.unwrap();
    assert_eq!(
        (empty.members, empty.rate_milli, empty.cut_by),
        (0, None, None)
    );

    // Members: distinct workers holding a live lease on a job of the account.
    q.add(&[spec(0), spec(1), spec(2)]).await.unwrap();
    let _a1 = q.claim("w1", LONG).await.unwrap().unwrap();
    let _a2 = q.claim("w1", LONG).await.unwrap().unwrap();
    assert_eq!(q.pace_board(account).await.unwrap().members, 1);
    let short = q
        .claim("w2", Duration::from_millis(300))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.pace_board(account).await.unwrap().members, 2);
    assert_eq!(q.pace_board("other").await.unwrap().members, 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        q.pace_board(account).await.unwrap().members,
        1,
        "an expired lease ({}) no longer counts",
        short.owner
    );

    // Cuts: the first is taken; another worker's within the gap is not; the same worker's is.
    let gap = Duration::from_secs(60);
    assert!(q.cut_pace(account, "w1", 18_000, gap).await.unwrap());
    let board = q.pace_board(account).await.unwrap();
    assert_eq!(
        (board.rate_milli, board.cut_by.as_deref()),
        (Some(18_000), Some("w1"))
    );
    let first_cut = board.cut_at_ms.expect("a cut time");
    assert!(!q.cut_pace(account, "w2", 9_000, gap).await.unwrap());
    assert_eq!(
        q.pace_board(account).await.unwrap().rate_milli,
        Some(18_000)
    );
    assert!(q.cut_pace(account, "w1", 16_000, gap).await.unwrap());
    assert_eq!(
        q.pace_board(account).await.unwrap().rate_milli,
        Some(16_000)
    );
    // Once the gap is over, another worker's cut is taken.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        q.cut_pace(account, "w2", 15_000, Duration::from_millis(10))
            .await
            .unwrap()
    );
    let board = q.pace_board(account).await.unwrap();
    assert_eq!(
        (board.rate_milli, board.cut_by.as_deref()),
        (Some(15_000), Some("w2"))
    );
    assert!(board.cut_at_ms.unwrap() >= first_cut);
}

fn spec(hour: i64) -> JobSpec {
    let from = 1_772_323_200_000 + hour * 3_600_000; // 2026-03-01T00:00Z + hours
    JobSpec {
        account_id: "12345678".into(),
        source: Source::Messaging,
        window_from_ms: from,
        window_to_ms: from + 3_600_000,
        skill_ids: vec![],
        dest: "s3://bucket/folder".into(),
        max_attempts: 3,
        origin: "add".into(),
    }
}

async fn jobs_round_trip(b: &Backend) {
    let q = b.open().await;
    let mut s = spec(0);
    s.skill_ids = vec![1100000001, 1100000002];
    s.source = Source::Chat;
    let ids = q.add(&[s.clone(), spec(1), spec(2)]).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids[0] < ids[1] && ids[1] < ids[2]);
    let job = q.get(ids[0]).await.unwrap();
    assert_eq!(job.spec, s);
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.attempts, 0);
    assert!(job.drop.is_none() && job.counts.is_none() && job.started_at_ms.is_none());
    assert!(matches!(q.get(9999).await, Err(QueueError::NotFound(9999))));

    let all = q.list(&ListFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|j| j.id).collect::<Vec<_>>(), ids);
    let last = q
        .list(&ListFilter {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        last.iter().map(|j| j.id).collect::<Vec<_>>(),
        ids[1..],
        "the newest, oldest first"
    );
    let none = q
        .list(&ListFilter {
            states: vec![JobState::Running],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    // An empty window is refused before it reaches the database.
    let mut bad = spec(3);
    bad.window_to_ms = bad.window_from_ms;
    assert!(q.add(&[bad]).await.is_err());
    // A second handle (connection) sees the same queue.
    assert_eq!(b.open().await.get(ids[2]).await.unwrap().spec, spec(2));
}

async fn claims_take_the_oldest_due_job_once(b: &Backend) {
    let q = b.open().await;
    assert!(q.claim("w1", LONG).await.unwrap().is_none(), "empty queue");
    let ids = q.add(&[spec(0), spec(1)]).await.unwrap();
    let l1 = q.claim("w1", LONG).await.unwrap().unwrap();
    let l2 = q.claim("w2", LONG).await.unwrap().unwrap();
    assert_eq!((l1.job.id, l2.job.id), (ids[0], ids[1]));
    assert_eq!((l1.attempt, l1.owner.as_str()), (1, "w1"));
    assert!(!l1.taken_over);
    assert_eq!(l1.job.state, JobState::Running);
    assert!(l1.job.lease_expires_ms.unwrap() > l1.job.started_at_ms.unwrap());
    assert!(q.claim("w3", LONG).await.unwrap().is_none(), "both leased");
}

async fn concurrent_claims_never_share_a_job(b: &Backend) {
    let q = b.open().await;
    let specs: Vec<JobSpec> = (0..40).map(spec).collect();
    let ids: BTreeSet<i64> = q.add(&specs).await.unwrap().into_iter().collect();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let handle = b.open().await; // its own connection
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(lease) = handle.claim(&format!("w{w}"), LONG).await.unwrap() {
                got.push(lease.job.id);
                handle.uploaded(&lease, None).await.unwrap();
            }
            got
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    assert_eq!(
        claimed.len(),
        ids.len(),
        "no job claimed twice: {claimed:?}"
    );
    assert_eq!(claimed.into_iter().collect::<BTreeSet<_>>(), ids);
    assert_eq!(q.summary().await.unwrap().count(JobState::Uploaded), 40);
}

async fn an_expired_lease_is_taken_over_and_the_old_lease_is_fenced(b: &Backend) {
    let q = b.open().await;
    let id = q.add(&[spec(0)]).await.unwrap()[0];
    let short = Duration::from_millis(300);
    let old = q.claim("w1", short).await.unwrap().unwrap();
    // A heartbeat keeps it.
    assert!(matches!(
        q.heartbeat(&old, short).await.unwrap(),
        Heartbeat::Renewed { .. }
    ));
    assert!(q.claim("w2", short).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let new = q.claim("w2", LONG).await.unwrap().unwrap();
    assert_eq!(new.job.id, id);
    assert_eq!(new.attempt, 2);
    assert!(new.taken_over);
    // The old holder is fenced out of every change.
    assert_eq!(q.heartbeat(&old, short).await.unwrap(), Heartbeat::Lost);
    for result in [
        q.finish(&old, &Counts::default()).await,
        q.uploaded(&old, None).await,
        q.release(&old, Duration::ZERO).await,
        q.fail(&old, "x", None).await.map(|_| ()),
    ] {
        match result {
            Err(QueueError::LeaseLost { job, attempt, .. }) => assert_eq!((job, attempt), (id, 1)),
            other => panic!("expected LeaseLost, got {other:?}"),
        }
    }
    let drop = DropRecord {
        id: "d".into(),
        created_at_ms: 1,
        root: "r".into(),
    };
    assert!(matches!(
        q.record_drop(&old, &drop).await,
        Err(QueueError::LeaseLost { .. })
    ));
    q.uploaded(&new, None).await.unwrap();
    let attempts = q.attempts(id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].outcome.as_deref(), Some("lease expired"));
    assert_eq!(attempts[0].worker, "w1");
    assert_eq!(attempts[1].outcome.as_deref(), Some("uploaded"));
}

async fn failures_back_off_then_die(b: &Backend) {
    let q = b.open().await;
    let id = q.add(&[spec(0)]).await.unwrap()[0]; // 3 attempts
    let backoff = Duration::from_millis(400);
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    assert!(matches!(
        q.fail(&l, "HTTP 503 from msgHist", Some(backoff))
            .await
            .unwrap(),
        FailOutcome::RetryAt(_)
    ));
    let job = q.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.last_error.as_deref(), Some("HTTP 503 from msgHist"));
    assert!(job.lease_expires_ms.is_none());
    assert!(
        q.claim("w", LONG).await.unwrap().is_none(),
        "not before the backoff"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    assert_eq!(l.attempt, 2);
    q.fail(&l, "again", Some(Duration::ZERO)).await.unwrap();
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    assert_eq!(l.attempt, 3);
    assert_eq!(
        q.fail(&l, "and again", Some(Duration::ZERO)).await.unwrap(),
        FailOutcome::Dead,
        "out of attempts"
    );
    let job = q.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert!(q.claim("w", LONG).await.unwrap().is_none());
    // A failure no retry can fix is dead at once.
    let id2 = q.add(&[spec(1)]).await.unwrap()[0];
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    assert_eq!(
        q.fail(&l, "source chat is not supported yet", None)
            .await
            .unwrap(),
        FailOutcome::Dead
    );
    assert_eq!(q.get(id2).await.unwrap().attempts, 1);
    let history = q.attempts(id).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|a| a.outcome.as_deref().unwrap())
            .collect::<Vec<_>>(),
        ["failed", "failed", "dead"]
    );
    assert_eq!(history[2].error.as_deref(), Some("and again"));
}

async fn takeover_on_the_last_attempt_is_dead(b: &Backend) {
    let q = b.open().await;
    let mut s = spec(0);
    s.max_attempts = 1;
    let id = q.add(&[s, spec(1)]).await.unwrap()[0];
    let short = Duration::from_millis(200);
    let l = q.claim("crashing", short).await.unwrap().unwrap();
    assert_eq!(l.job.id, id);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The expired job cannot be tried again: it becomes dead, and claims move on.
    let next = q.claim("w2", LONG).await.unwrap().unwrap();
    assert_ne!(next.job.id, id);
    assert!(q.claim("w3", LONG).await.unwrap().is_none());
    let job = q.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert!(
        job.last_error.unwrap().contains("crashing"),
        "names the worker"
    );
}

async fn cancel_stops_a_running_job_and_retry_brings_it_back(b: &Backend) {
    let q = b.open().await;
    let ids = q.add(&[spec(0), spec(1)]).await.unwrap();
    // Cancel a queued job: never claimed.
    assert_eq!(q.cancel(ids[1]).await.unwrap().state, JobState::Cancelled);
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    assert_eq!(l.job.id, ids[0]);
    assert!(q.claim("w", LONG).await.unwrap().is_none());
    // Cancel a running job: its worker learns it at the next heartbeat.
    q.cancel(ids[0]).await.unwrap();
    assert_eq!(q.heartbeat(&l, LONG).await.unwrap(), Heartbeat::Cancelled);
    assert!(matches!(
        q.uploaded(&l, None).await,
        Err(QueueError::LeaseLost { .. })
    ));
    // Retry: queued again with a fresh allowance; attempt numbers keep counting.
    let job = q.retry(ids[0]).await.unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert!(matches!(
        q.retry(ids[0]).await,
        Err(QueueError::WrongState {
            state: JobState::Queued,
            ..
        })
    ));
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    assert_eq!((l.job.id, l.attempt), (ids[0], 2));
    assert!(matches!(
        q.retry(ids[0]).await,
        Err(QueueError::WrongState {
            state: JobState::Running,
            ..
        })
    ));
    q.uploaded(&l, None).await.unwrap();
    assert!(matches!(
        q.cancel(ids[0]).await,
        Err(QueueError::WrongState {
            state: JobState::Uploaded,
            ..
        })
    ));
    assert!(matches!(
        q.retry(ids[0]).await,
        Err(QueueError::WrongState { .. })
    ));
    assert!(matches!(
        q.cancel(4242).await,
        Err(QueueError::NotFound(4242))
    ));
    // A dead job gets a fresh allowance of attempts.
    let mut s = spec(2);
    s.max_attempts = 1;
    let id = q.add(&[s]).await.unwrap()[0];
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    q.fail(&l, "boom", Some(Duration::ZERO)).await.unwrap();
    assert_eq!(q.get(id).await.unwrap().state, JobState::Dead);
    q.retry(id).await.unwrap();
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    assert_eq!((l.job.id, l.attempt), (id, 2));
    assert_eq!(
        q.fail(&l, "boom", Some(Duration::ZERO)).await.unwrap(),
        FailOutcome::Dead
    );
}

async fn the_first_recorded_drop_wins(b: &Backend) {
    let q = b.open().await;
    let id = q.add(&[spec(0)]).await.unwrap()[0];
    let short = Duration::from_millis(200);
    let l = q.claim("w1", short).await.unwrap().unwrap();
    let first = DropRecord {
        id: "0b6f3c1e-aaaa-4bbb-8ccc-000000000001".into(),
        created_at_ms: 1_772_323_200_000,
        root: "folder/2026/03/01/00/2026-03-01-00-00-00-0b6f3c1e-aaaa-4bbb-8ccc-000000000001"
            .into(),
    };
    assert_eq!(q.record_drop(&l, &first).await.unwrap(), first);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The next attempt finds the recorded drop and keeps it.
    let l2 = q.claim("w2", LONG).await.unwrap().unwrap();
    assert_eq!(l2.job.drop.as_ref(), Some(&first));
    let other = DropRecord {
        id: "other".into(),
        created_at_ms: 2,
        root: "elsewhere".into(),
    };
    assert_eq!(q.record_drop(&l2, &other).await.unwrap(), first);
    assert_eq!(q.get(id).await.unwrap().drop, Some(first));
}

async fn finished_then_uploaded_keeps_counts_timings_and_history(b: &Backend) {
    let q = b.open().await;
    let id = q.add(&[spec(0)]).await.unwrap()[0];
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    let counts = Counts {
        conversations: 120,
        open_conversations: 3,
        rows: 4567,
        files: 32,
        bytes: 890_123,
    };
    q.finish(&l, &counts).await.unwrap();
    let job = q.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Finished);
    assert_eq!(job.counts, Some(counts));
    assert!(job.finished_at_ms.is_some() && job.uploaded_at_ms.is_none());
    // A finished job still holds its lease (heartbeats work) until it is uploaded.
    assert!(matches!(
        q.heartbeat(&l, LONG).await.unwrap(),
        Heartbeat::Renewed { .. }
    ));
    q.uploaded(&l, None).await.unwrap();
    let job = q.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Uploaded);
    assert_eq!(job.counts, Some(counts), "kept from finish");
    let (s, f, u) = (
        job.started_at_ms.unwrap(),
        job.finished_at_ms.unwrap(),
        job.uploaded_at_ms.unwrap(),
    );
    assert!(job.created_at_ms <= s && s <= f && f <= u);
    assert!(job.lease_expires_ms.is_none());
    // Uploaded straight from running (a retry that found the drop committed), with counts.
    let id2 = q.add(&[spec(1)]).await.unwrap()[0];
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    q.uploaded(&l, Some(&counts)).await.unwrap();
    let job = q.get(id2).await.unwrap();
    assert_eq!(job.counts, Some(counts));
    assert!(job.finished_at_ms.is_some());
    let attempts = q.attempts(id2).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].worker, "w");
    assert!(attempts[0].ended_at_ms.is_some());
}

async fn a_released_job_is_claimable_after_its_delay(b: &Backend) {
    let q = b.open().await;
    let mut s = spec(0);
    s.max_attempts = 1;
    let id = q.add(&[s]).await.unwrap()[0];
    let l = q.claim("stopping", LONG).await.unwrap().unwrap();
    q.release(&l, Duration::from_millis(300)).await.unwrap();
    let job = q.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert!(job.lease_owner.is_none());
    assert!(
        q.claim("next", LONG).await.unwrap().is_none(),
        "not before the settle delay"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Handing back does not use up the job's one attempt.
    let l = q.claim("next", LONG).await.unwrap().unwrap();
    assert_eq!((l.job.id, l.attempt), (id, 2));
    assert_eq!(
        q.fail(&l, "x", Some(Duration::ZERO)).await.unwrap(),
        FailOutcome::Dead
    );
    let attempts = q.attempts(id).await.unwrap();
    assert_eq!(attempts[0].outcome.as_deref(), Some("handed back"));
}

async fn watermarks_advance_only_from_the_expected_value(b: &Backend) {
    let q = b.open().await;
    let acct = "12345678";
    assert_eq!(q.watermark(acct, Source::Messaging).await.unwrap(), None);
    let ids = q
        .advance_watermark(acct, Source::Messaging, None, 100, &[spec(0), spec(1)])
        .await
        .unwrap()
        .expect("first run");
    assert_eq!(ids.len(), 2);
    assert_eq!(
        q.watermark(acct, Source::Messaging).await.unwrap(),
        Some(100)
    );
    // A scheduler that read the watermark before that run loses, and enqueues nothing.
    assert_eq!(
        q.advance_watermark(acct, Source::Messaging, None, 200, &[spec(2)])
            .await
            .unwrap(),
        None
    );
    assert_eq!(q.list(&ListFilter::default()).await.unwrap().len(), 2);
    assert!(
        q.advance_watermark(acct, Source::Messaging, Some(100), 200, &[spec(2)])
            .await
            .unwrap()
            .is_some()
    );
    // Per account and source.
    assert_eq!(q.watermark(acct, Source::Chat).await.unwrap(), None);
    assert_eq!(q.watermark("other", Source::Messaging).await.unwrap(), None);
    // Racing schedulers: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let h = b.open().await;
        tasks.push(tokio::spawn(async move {
            h.advance_watermark("racing", Source::Messaging, None, 1, &[spec(9)])
                .await
                .unwrap()
                .is_some()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

async fn open_conversations_are_remembered_and_taken_once(b: &Backend) {
    let q = b.open().await;
    let ids = q.add(&[spec(0), spec(1)]).await.unwrap();
    let conv = |n: u32| format!("c{n:03}");
    q.add_open_conversations(ids[0], &[conv(1), conv(2), conv(3)])
        .await
        .unwrap();
    q.add_open_conversations(ids[1], &[conv(3), conv(4)])
        .await
        .unwrap();
    assert_eq!(
        q.open_conversations_of(ids[1]).await.unwrap(),
        [conv(3), conv(4)],
        "c003 is remembered once, by the latest job"
    );
    let pending = |before: i64| {
        let q = &q;
        async move {
            q.pending_open_conversations("12345678", Source::Messaging, before)
                .await
                .unwrap()
        }
    };
    assert_eq!(pending(i64::MAX).await, 4);
    assert_eq!(pending(0).await, 0, "none was recorded before 1970");
    let first = q
        .take_open_conversations("12345678", Source::Messaging, 2, "refetch-1")
        .await
        .unwrap();
    assert_eq!(pending(i64::MAX).await, 2);
    let rest = q
        .take_open_conversations("12345678", Source::Messaging, 10, "refetch-2")
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let all: BTreeSet<String> = first.iter().chain(&rest).cloned().collect();
    assert_eq!(all.len(), 4, "each taken once: {first:?} {rest:?}");
    assert!(
        q.take_open_conversations("12345678", Source::Messaging, 10, "x")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(pending(i64::MAX).await, 0);
    // A retried refetch gets back what it took before.
    assert_eq!(
        q.take_open_conversations("12345678", Source::Messaging, 2, "refetch-1")
            .await
            .unwrap(),
        first
    );
    assert!(
        q.take_open_conversations("12345678", Source::Chat, 10, "x")
            .await
            .unwrap()
            .is_empty()
    );
    // Still open when fetched again: remembered again, and available again.
    q.add_open_conversations(ids[1], &[conv(2)]).await.unwrap();
    assert_eq!(
        q.take_open_conversations("12345678", Source::Messaging, 10, "x")
            .await
            .unwrap(),
        [conv(2)]
    );
    assert!(q.add_open_conversations(999, &[conv(9)]).await.is_err());
}

async fn summary_counts_states_and_the_next_due_time(b: &Backend) {
    let q = b.open().await;
    let s = q.summary().await.unwrap();
    assert_eq!((s.active(), s.next_due_ms), (0, None));
    q.add(&[spec(0), spec(1), spec(2)]).await.unwrap();
    let l = q.claim("w", LONG).await.unwrap().unwrap();
    q.uploaded(&l, None).await.unwrap();
    let l = q
        .claim("w", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let s = q.summary().await.unwrap();
    assert_eq!(s.count(JobState::Uploaded), 1);
    assert_eq!(s.count(JobState::Running), 1);
    assert_eq!(s.count(JobState::Queued), 1);
    assert_eq!(s.active(), 2);
    assert!(s.next_due_ms.unwrap() <= l.job.lease_expires_ms.unwrap());
}

async fn the_schema_is_created_once_by_racing_openers(b: &Backend) {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = b.url.clone();
        tasks.push(tokio::spawn(async move {
            Queue::open(&url)
                .await
                .unwrap()
                .add(&[spec(0)])
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let q = b.open().await;
    assert_eq!(q.list(&ListFilter::default()).await.unwrap().len(), 4);
}

/// Off loopback the queue only speaks TLS; here the same code path runs against a server with
/// a certificate for `localhost` signed by a test CA.
#[tokio::test]
async fn postgres_over_tls_verifies_the_server_certificate() {
    let pg = lpdrop_testkit::Postgres::start_tls();
    pg.create_database("tls");
    let ca = pg.ca_file.as_ref().unwrap().display().to_string();
    let url = format!(
        "postgres://lpdrop@localhost:{}/tls?sslmode=require&sslrootcert={ca}",
        pg.port()
    );
    let Queue::Postgres(q) = Queue::open(&url).await.unwrap() else {
        panic!("a Postgres queue")
    };
    assert!(q.uses_tls());
    assert!(
        q.session_encrypted().await.unwrap(),
        "the session is encrypted"
    );
    // The same server, without trusting the test CA: the certificate is refused.
    let url = format!(
        "postgres://lpdrop@localhost:{}/tls?sslmode=require",
        pg.port()
    );
    let err = Queue::open(&url)
        .await
        .err()
        .expect("untrusted certificate");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    // Plain on loopback by default.
    let Queue::Postgres(q) = Queue::open(&pg.url("tls")).await.unwrap() else {
        panic!("a Postgres queue")
    };
    assert!(!q.session_encrypted().await.unwrap());
}
