//! End-to-end tests of the job queue with the real binary: `jobs add`, `worker`, `schedule`
//! against a running emulator, on SQLite and on a real Postgres server (started here from
//! Debian's packages; the tests fail, never skip, when it is missing).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use lpdrop_testkit::cli::{Spawned, committed_drops, files_under, output_text, run};

use crate::{RunningEmulator, lpdrop, with_queue};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;

const PER_DAY: u32 = 2000;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn jobs_json(queue: &str) -> Vec<serde_json::Value> {
    let out = run(lpdrop().args(["--queue", queue, "jobs", "list", "--json"]));
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The conversation ids in a drop's `conversations` table.
fn conversation_ids(drop: &Path) -> Vec<String> {
    string_column(drop, "conversation_id")
        .into_iter()
        .map(|v| v.expect("an id in every row"))
        .collect()
}

/// One string column of a drop's `conversations` table, in file and row order.
fn string_column(drop: &Path, name: &str) -> Vec<Option<String>> {
    let dir = drop.join("parquet/conversations");
    let mut values = Vec::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let reader = SerializedFileReader::new(fs::File::open(entry.unwrap().path()).unwrap())
            .expect("parquet");
        let schema = reader.metadata().file_metadata().schema_descr();
        let col = (0..schema.num_columns())
            .find(|&i| schema.column(i).name() == name)
            .unwrap_or_else(|| panic!("a {name} column"));
        for row in reader.get_row_iter(None).unwrap() {
            values.push(row.unwrap().get_string(col).ok().cloned());
        }
    }
    values
}

/// `conversation_id -> status` of a drop's conversations.
fn statuses(drop: &Path) -> BTreeMap<String, String> {
    conversation_ids(drop)
        .into_iter()
        .zip(string_column(drop, "status"))
        .map(|(id, s)| (id, s.unwrap_or_default()))
        .collect()
}

/// Late data: the conversations a job saw open are read again by id once they have closed;
/// the newer drop holds their final state, and nothing else is read twice.
#[test]
fn open_conversations_are_read_again_by_id_once_closed() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("q.db").display().to_string();
    let out = dir.path().join("out");
    let emulator = RunningEmulator::start(500);
    let lp = |args: &[&str]| {
        let mut cmd = with_queue(&queue, emulator.url());
        cmd.args(args).arg("--out").arg(&out);
        run(&mut cmd)
    };
    assert!(
        lp(&["jobs", "add", "--from", "2026-03-01", "--to", "2026-03-02"])
            .status
            .success()
    );
    let worker = || run(with_queue(&queue, emulator.url()).args(["worker", "--once"]));
    assert!(worker().status.success());
    let first = committed_drops(&out);
    assert_eq!(first.len(), 1);
    let before = statuses(&first[0]);
    let open: BTreeSet<String> = before
        .iter()
        .filter(|(_, s)| s.as_str() == "OPEN")
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        open.len() >= 5,
        "the day has open conversations: {}",
        open.len()
    );
    let jobs = jobs_json(&queue);
    assert_eq!(
        jobs[0]["counts"]["open_conversations"],
        open.len() as u64,
        "{jobs:?}"
    );

    // The emulator's open conversations end; a refetch job reads them again.
    emulator_post(emulator.url(), "/_emulator/close-open-conversations");
    let refetch = lp(&["jobs", "refetch"]);
    assert!(
        stdout(&refetch).contains(&format!("{} conversations", open.len())),
        "{}",
        stdout(&refetch)
    );
    let twice = lp(&["jobs", "refetch"]);
    assert!(
        stdout(&twice).contains("Nothing to refetch"),
        "one refetch job at a time"
    );
    assert!(worker().status.success());

    let drops = committed_drops(&out);
    assert_eq!(drops.len(), 2);
    let second = drops.iter().find(|d| **d != first[0]).unwrap();
    let after = statuses(second);
    assert_eq!(
        after.keys().cloned().collect::<BTreeSet<_>>(),
        open,
        "exactly the conversations that were open, each once"
    );
    assert!(after.values().all(|s| s == "CLOSE"), "{after:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(second.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["source"]["time_basis"], "refetch_enqueued");
    assert_eq!(manifest["source"]["open_conversations"], 0);
    assert_eq!(
        manifest["source"]["filters"]["refetch_conversation_ids"],
        open.len() as u64
    );
    let jobs = jobs_json(&queue);
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j["state"] == "uploaded"), "{jobs:?}");
    assert_eq!(jobs[1]["origin"], "refetch");
    // Closed now: nothing is left to read again.
    assert!(stdout(&lp(&["jobs", "refetch"])).contains("Nothing to refetch"));
}

/// A POST with no body to the emulator (its test controls).
fn emulator_post(base: &str, path: &str) {
    use std::io::{Read, Write};
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
}

/// The emulator's conversation ids with a start time in `[from, to)`.
fn expected_ids(per_day: u32, from: &str, to: &str) -> BTreeSet<String> {
    let dataset = lpdrop_emulator::Dataset::new(&lpdrop_emulator::EmulatorConfig {
        per_day,
        ..Default::default()
    });
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    };
    dataset
        .index_range(ms(from), ms(to) - 1)
        .map(|i| dataset.conversation_id(i))
        .collect()
}

/// Checks what a drained queue left: every job uploaded, exactly one committed drop per job
/// (the one recorded on the job, naming the job in its manifest), every drop verified, and
/// the drops together hold each of the emulator's conversations in the window exactly once.
fn check_one_drop_per_job(queue: &str, out: &Path, per_day: u32, from: &str, to: &str) {
    let jobs = jobs_json(queue);
    assert!(!jobs.is_empty());
    for job in &jobs {
        assert_eq!(job["state"], "uploaded", "{job:#}");
    }
    let drops = committed_drops(out);
    assert_eq!(
        drops.len(),
        jobs.len(),
        "exactly one committed drop per job"
    );
    let mut by_job = BTreeMap::new();
    let mut all_ids = Vec::new();
    for drop in &drops {
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(drop.join("manifest.json")).unwrap()).unwrap();
        let job_id = manifest["job"]["id"]
            .as_str()
            .expect("the job is named")
            .to_string();
        assert!(
            by_job.insert(job_id.clone(), drop.clone()).is_none(),
            "job {job_id} has two committed drops"
        );
        let ids = conversation_ids(drop);
        assert_eq!(
            ids.len() as u64,
            manifest["source"]["conversations"].as_u64().unwrap()
        );
        all_ids.extend(ids);
        let verify = run(lpdrop().arg("verify").arg(drop));
        assert!(verify.status.success(), "lpdrop verify {}", drop.display());
    }
    for job in &jobs {
        let id = job["id"].as_i64().unwrap().to_string();
        let drop = by_job
            .get(&id)
            .unwrap_or_else(|| panic!("job {id} has a drop"));
        let root = job["drop"]["root"].as_str().unwrap();
        assert_eq!(drop, &out.join(root), "the drop recorded on job {id}");
        assert!(job["uploaded_at"].is_string());
        assert!(job["counts"]["files"].as_u64().unwrap() >= 32);
    }
    let unique: BTreeSet<String> = all_ids.iter().cloned().collect();
    assert_eq!(unique.len(), all_ids.len(), "no conversation in two drops");
    assert_eq!(
        unique,
        expected_ids(per_day, from, to),
        "the drops hold exactly the emulator's conversations of the window"
    );
}

#[test]
fn split_jobs_drained_by_worker_once_give_one_committed_drop_each() {
    let emulator = RunningEmulator::start(PER_DAY);
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("lpdrop.db").display().to_string();
    let out = dir.path().join("out");
    // 5.5 hours in 1h jobs: the last one is the partial half hour.
    let (from, to) = ("2026-03-01T00:00:00Z", "2026-03-01T05:30:00Z");
    let added = run(with_queue(&queue, emulator.url())
        .args([
            "jobs", "add", "--from", from, "--to", to, "--split", "1h", "--out",
        ])
        .arg(&out));
    assert!(added.status.success());
    assert!(stdout(&added).contains("Enqueued 6 jobs"));

    let worker = run(with_queue(&queue, emulator.url()).args([
        "worker",
        "--once",
        "--concurrency",
        "2",
        "--lease",
        "10s",
    ]));
    assert!(worker.status.success());
    let text = output_text(&worker);
    assert!(text.contains("6 jobs uploaded"), "{text}");
    assert!(text.contains("queue: 6 uploaded"), "{text}");
    check_one_drop_per_job(&queue, &out, PER_DAY, from, to);

    let jobs = jobs_json(&queue);
    let last = jobs.last().unwrap();
    assert_eq!(last["window_from"], "2026-03-01T05:00:00.000Z");
    assert_eq!(last["window_to"], "2026-03-01T05:30:00.000Z");
    assert_eq!(last["attempts"], 1);

    // Nothing left: a second drain does nothing and commits nothing.
    let again = run(with_queue(&queue, emulator.url()).args(["worker", "--once"]));
    assert!(again.status.success());
    assert!(stdout(&again).contains("0 jobs uploaded"));
    assert_eq!(committed_drops(&out).len(), 6);

    // The readable table and one job in full.
    let list = run(lpdrop().args(["--queue", &queue, "jobs", "list"]));
    let table = stdout(&list);
    assert!(table.starts_with("ID  STATE"), "{table}");
    assert_eq!(table.matches("uploaded").count(), 6);
    assert!(table.contains("2026-03-01 05:00 → 05:30"), "{table}");
    let show = run(lpdrop().args(["--queue", &queue, "jobs", "show", "1"]));
    let text = stdout(&show);
    for expected in ["state          uploaded", "drop root", "#1 uploaded on"] {
        assert!(text.contains(expected), "{expected}: {text}");
    }

    // Conversations still OPEN are remembered per job, exactly those the drop says are open.
    let mut remembered = 0;
    for id in 1..=6 {
        let show =
            run(lpdrop().args(["--queue", &queue, "jobs", "show", &id.to_string(), "--json"]));
        let job: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
        let ids = job["open_conversation_ids"].as_array().unwrap();
        let root = job["drop"]["root"].as_str().unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(root).join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(
            ids.len() as u64,
            manifest["source"]["open_conversations"].as_u64().unwrap(),
            "job {id}"
        );
        remembered += ids.len();
    }
    assert!(remembered > 0, "the emulator's data has open conversations");
}

#[test]
fn jobs_commands_cancel_retry_and_dead_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("q.db").display().to_string();
    let out = dir.path().join("out");
    let emulator = RunningEmulator::start(20);
    let lp = |args: &[&str]| {
        let mut cmd = with_queue(&queue, emulator.url());
        cmd.args(args);
        run(&mut cmd)
    };
    let out_s = out.display().to_string();
    assert!(
        lp(&[
            "jobs",
            "add",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
            "--source",
            "chat",
            "--max-attempts",
            "1",
            "--out",
            &out_s
        ])
        .status
        .success()
    );
    let add = lp(&[
        "jobs",
        "add",
        "--from",
        "2026-03-02",
        "--to",
        "2026-03-03",
        "--skill",
        "1100000001",
        "--out",
        &out_s,
    ]);
    assert!(add.status.success());
    // Cancelled before any worker sees it.
    let cancel = lp(&["jobs", "cancel", "2"]);
    assert!(stdout(&cancel).contains("job 2 is cancelled"));

    // With a wrong secret the chat job fails clearly (not a panic), and with one attempt
    // allowed it is dead at once; the secret never reaches the messages.
    let worker = run(with_queue(&queue, emulator.url())
        .env("LP_APP_SECRET", "wrong-s3cret")
        .args(["worker", "--once"]));
    assert_eq!(worker.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&worker.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(stderr.contains("1 job ended dead"), "{stderr}");
    assert!(!stderr.contains("wrong-s3cret"), "{stderr}");
    let show = lp(&["jobs", "show", "1"]);
    assert!(stdout(&show).contains("state          dead"));
    assert!(stdout(&show).contains("401"), "{}", stdout(&show));
    let jobs = jobs_json(&queue);
    assert_eq!(jobs[0]["state"], "dead");
    assert_eq!(jobs[1]["state"], "cancelled");
    assert_eq!(jobs[1]["skill_ids"], serde_json::json!([1100000001]));
    assert_eq!(jobs[1]["dest"], out_s, "a local DEST is stored absolute");
    assert!(!out.exists() || committed_drops(&out).is_empty());

    // Retry brings both back; an uploaded or queued job cannot be retried.
    assert!(lp(&["jobs", "retry", "1"]).status.success());
    assert!(lp(&["jobs", "retry", "2"]).status.success());
    let again = lp(&["jobs", "retry", "2"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("job 2 is queued"));
    let states: Vec<_> = jobs_json(&queue)
        .iter()
        .map(|j| j["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["queued", "queued"]);
    let filtered = lp(&["jobs", "list", "--state", "dead"]);
    assert!(stdout(&filtered).contains("(no jobs)"));
    // With the right secret both run: the chat job into a drop of chat tables.
    let worker = lp(&["worker", "--once"]);
    assert!(
        worker.status.success(),
        "{}",
        String::from_utf8_lossy(&worker.stderr)
    );
    let jobs = jobs_json(&queue);
    assert!(jobs.iter().all(|j| j["state"] == "uploaded"), "{jobs:?}");
    let drops = committed_drops(&out);
    assert_eq!(drops.len(), 2);
    let apis: BTreeSet<String> = drops
        .iter()
        .map(|d| {
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
            m["source"]["api"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        apis,
        BTreeSet::from([
            "engagement_history".to_string(),
            "messaging_interactions".to_string()
        ])
    );

    // Mistakes are named.
    let missing = lp(&["jobs", "show", "99"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("job 99 does not exist"));
    let inverted = lp(&[
        "jobs",
        "add",
        "--from",
        "2026-03-02",
        "--to",
        "2026-03-01",
        "--out",
        &out_s,
    ]);
    assert_eq!(inverted.status.code(), Some(1));
    let bad_dest = lp(&[
        "jobs",
        "add",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
        "--out",
        "ftp://x/y",
    ]);
    assert_eq!(bad_dest.status.code(), Some(1));
    let bad_queue = run(lpdrop().args(["--queue", "mysql://x/y", "jobs", "list"]));
    assert_eq!(bad_queue.status.code(), Some(1));
    assert_eq!(jobs_json(&queue).len(), 2, "nothing added by the mistakes");
    // Postgres: a password never reaches messages; off loopback, plain connections are refused.
    let down = run(lpdrop().args([
        "--queue",
        "postgres://me:s3cret@127.0.0.1:9/q",
        "jobs",
        "list",
    ]));
    assert_eq!(down.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.contains("cannot connect") && !stderr.contains("s3cret"),
        "{stderr}"
    );
    let plain = run(lpdrop().args([
        "--queue",
        "postgres://me:s3cret@db.example.com/q?sslmode=disable",
        "jobs",
        "list",
    ]));
    assert_eq!(plain.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains("must use TLS") && !stderr.contains("s3cret"),
        "{stderr}"
    );
}

#[test]
fn schedule_enqueues_due_windows_once_and_keeps_a_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("q.db").display().to_string();
    let out = dir.path().join("out").display().to_string();
    let schedule = |extra: &[&str]| {
        let mut cmd = with_queue(&queue, "http://127.0.0.1:9");
        cmd.args(["schedule", "--every", "1h", "--delay", "10m", "--out", &out]);
        cmd.args(extra);
        run(&mut cmd)
    };
    let first = schedule(&["--now", "2026-03-01T03:05:00Z"]);
    assert_eq!(first.status.code(), Some(1), "the first run needs --start");
    assert!(String::from_utf8_lossy(&first.stderr).contains("--start"));

    let first = schedule(&["--start", "2026-03-01", "--now", "2026-03-01T03:05:00Z"]);
    assert!(first.status.success());
    // 03:05 - 10 minutes = 02:55: the windows that ended by then are 00-01 and 01-02.
    assert!(
        stdout(&first).contains("Enqueued 2 jobs"),
        "{}",
        stdout(&first)
    );
    let again = schedule(&["--start", "2026-03-01", "--now", "2026-03-01T03:09:00Z"]);
    assert!(stdout(&again).contains("Nothing due"));
    let later = schedule(&[
        "--start",
        "2026-03-01",
        "--now",
        "2026-03-01T04:15:00Z",
        "--lookback",
        "2h",
    ]);
    assert!(later.status.success());
    assert!(
        stdout(&later).contains("Enqueued 4 jobs"),
        "{}",
        stdout(&later)
    );

    let jobs = jobs_json(&queue);
    let windows: Vec<(String, String, String)> = jobs
        .iter()
        .map(|j| {
            (
                j["window_from"].as_str().unwrap()[11..16].to_string(),
                j["window_to"].as_str().unwrap()[11..16].to_string(),
                j["origin"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let w = |a: &str, b: &str, o: &str| (a.to_string(), b.to_string(), o.to_string());
    assert_eq!(
        windows,
        [
            w("00:00", "01:00", "schedule"),
            w("01:00", "02:00", "schedule"),
            w("02:00", "03:00", "schedule"),
            w("03:00", "04:00", "schedule"),
            // The span that just became due, read again two hours after its first read.
            w("00:00", "01:00", "lookback"),
            w("01:00", "02:00", "lookback"),
        ]
    );
    assert!(jobs.iter().all(|j| j["state"] == "queued"));
}

/// A small deterministic generator (xorshift), seeded from the clock and printed, so that a
/// failing run can be replayed with LPDROP_TEST_SEED.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("LPDROP_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("LPDROP_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Workers killed with SIGKILL at random moments and replaced, then a draining worker: every
/// job must end `uploaded` with exactly one committed drop, the drops must hold exactly the
/// emulator's conversations for the range, `verify` must accept each, and `gc` must leave
/// nothing outside them.
struct Crash {
    per_day: u32,
    from: &'static str,
    to: &'static str,
    split: &'static str,
    workers: usize,
    kills: usize,
}

fn crash_suite(queue: &str, c: Crash) {
    let Crash {
        per_day,
        from,
        to,
        split,
        workers: worker_count,
        kills: kill_count,
    } = c;
    let queue = queue.to_string();
    let emulator = RunningEmulator::start(per_day);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let added = run(with_queue(&queue, emulator.url())
        .args(["jobs", "add", "--from", from, "--to", to, "--split", split])
        .args(["--max-attempts", "100", "--out"])
        .arg(&out));
    assert!(added.status.success());
    let worker = || {
        let mut cmd = with_queue(&queue, emulator.url());
        cmd.args([
            "worker",
            "--lease",
            "2s",
            "--poll",
            "1s",
            "--retry-backoff",
            "1s",
        ]);
        Spawned::new(cmd)
    };
    let mut rng = Rng::new();
    let mut workers: Vec<Spawned> = (0..worker_count).map(|_| worker()).collect();
    workers[0].wait_for("attempt", Duration::from_secs(60));
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while kills < kill_count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200 + rng.below(1300)));
        let summary = jobs_json(&queue);
        if summary.iter().all(|j| j["state"] == "uploaded") {
            break;
        }
        let victim = rng.below(workers.len() as u64) as usize;
        let dead = workers.remove(victim);
        dead.kill(); // SIGKILL: no clean-up of any kind
        kills += 1;
        eprintln!("killed worker {victim} (kill {kills})");
        workers.push(worker());
    }
    assert!(
        kills >= kill_count.min(3),
        "the queue drained before the workers could be killed"
    );
    // A draining worker takes over whatever the killed ones held, once their leases expire.
    let mut drain = with_queue(&queue, emulator.url());
    drain.args(["worker", "--once", "--lease", "2s", "--retry-backoff", "1s"]);
    let (status, lines) = Spawned::new(drain).wait(Duration::from_secs(300));
    assert!(status.success(), "{lines:#?}");
    // The long-running workers stop cleanly on SIGTERM.
    for w in workers.drain(..) {
        w.signal("TERM");
        let (status, lines) = w.wait(Duration::from_secs(60));
        assert!(status.success(), "a worker exits 0 on SIGTERM: {lines:#?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("SIGTERM: taking no new jobs"))
        );
    }

    check_one_drop_per_job(&queue, &out, per_day, from, to);
    let jobs = jobs_json(&queue);
    let tries: u64 = jobs.iter().map(|j| j["attempts"].as_u64().unwrap()).sum();
    eprintln!("{} jobs, {tries} attempts after {kills} kills", jobs.len());
    // gc removes uncommitted leftovers (none should be left: a retried job rewrites its own
    // drop) and never touches a committed drop.
    let gc = run(lpdrop().arg("gc").arg(&out).args(["--older-than", "0s"]));
    assert!(gc.status.success());
    assert!(stdout(&gc).contains(&format!("{} committed drops kept", jobs.len())));
    let committed = committed_drops(&out);
    for file in files_under(&out) {
        assert!(
            committed.iter().any(|d| file.starts_with(d)),
            "{} is outside every committed drop",
            file.display()
        );
    }
    for drop in &committed {
        assert!(run(lpdrop().arg("verify").arg(drop)).status.success());
    }
}

#[test]
fn workers_killed_at_random_on_postgres_leave_exactly_one_committed_drop_per_job() {
    let pg = lpdrop_testkit::Postgres::start();
    // Big windows, so that a kill often lands mid-job.
    crash_suite(
        &pg.create_database("crash"),
        Crash {
            per_day: 96_000,
            from: "2026-03-01T00:00:00Z",
            to: "2026-03-01T06:00:00Z",
            split: "30m",
            workers: 3,
            kills: 6,
        },
    );
}

#[test]
fn two_hundred_hourly_jobs_on_postgres_survive_random_kills() {
    let pg = lpdrop_testkit::Postgres::start();
    crash_suite(
        &pg.create_database("hourly"),
        Crash {
            per_day: 2_400,
            from: "2026-03-01T00:00:00Z",
            to: "2026-03-09T08:00:00Z",
            split: "1h",
            workers: 4,
            kills: 8,
        },
    );
}

#[test]
fn one_sqlite_worker_killed_at_random_leaves_exactly_one_committed_drop_per_job() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db");
    crash_suite(
        queue.to_str().unwrap(),
        Crash {
            per_day: 2_400,
            from: "2026-03-01T00:00:00Z",
            to: "2026-03-03T00:00:00Z",
            split: "1h",
            workers: 1,
            kills: 4,
        },
    );
}

#[test]
fn sigterm_lets_a_running_job_finish_or_hands_it_back() {
    let emulator = RunningEmulator::start(96_000);
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("q.db").display().to_string();
    let out = dir.path().join("out");
    let (from, to) = ("2026-03-01T00:00:00Z", "2026-03-01T02:00:00Z");
    assert!(
        run(with_queue(&queue, emulator.url())
            .args([
                "jobs", "add", "--from", from, "--to", to, "--split", "1h", "--out"
            ])
            .arg(&out))
        .status
        .success()
    );
    // Finish: a generous grace lets the running job complete; the other job is not started.
    // One job at a time (the default runs two), so that there is one running job to follow.
    let mut cmd = with_queue(&queue, emulator.url());
    cmd.args(["worker", "--concurrency", "1", "--lease", "5s"]);
    let mut w = Spawned::new(cmd);
    w.wait_for("job 1 attempt 1", Duration::from_secs(60));
    w.signal("TERM");
    let (status, lines) = w.wait(Duration::from_secs(60));
    assert!(status.success(), "{lines:#?}");
    let jobs = jobs_json(&queue);
    assert_eq!(jobs[0]["state"], "uploaded");
    assert_eq!(jobs[1]["state"], "queued", "no new job after SIGTERM");

    // Hand back: no grace, so the running job goes back to the queue, and the next worker
    // writes the same drop it had recorded.
    let mut cmd = with_queue(&queue, emulator.url());
    cmd.args([
        "worker",
        "--concurrency",
        "1",
        "--lease",
        "2s",
        "--shutdown-grace",
        "0s",
    ]);
    let mut w = Spawned::new(cmd);
    w.wait_for("job 2 attempt 1", Duration::from_secs(60));
    w.signal("TERM");
    let (status, lines) = w.wait(Duration::from_secs(60));
    assert!(status.success(), "{lines:#?}");
    let job = &jobs_json(&queue)[1];
    let handed_back = lines.iter().any(|l| l.contains("handed back to the queue"));
    if handed_back {
        assert_eq!(job["state"], "queued");
        assert!(
            job["drop"]["root"].is_string(),
            "the drop is kept for the next attempt"
        );
    } else {
        // The job was quicker than the signal.
        assert_eq!(job["state"], "uploaded");
    }
    let drain = run(with_queue(&queue, emulator.url()).args(["worker", "--once", "--lease", "2s"]));
    assert!(drain.status.success());
    check_one_drop_per_job(&queue, &out, 96_000, from, to);
}

#[test]
fn a_worker_that_died_after_its_commit_leaves_the_job_to_be_marked_not_redone() {
    let emulator = RunningEmulator::start(PER_DAY);
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("q.db").display().to_string();
    let out = dir.path().join("out");
    let (from, to) = ("2026-03-01T00:00:00Z", "2026-03-01T01:00:00Z");
    assert!(
        run(with_queue(&queue, emulator.url())
            .args(["jobs", "add", "--from", from, "--to", to, "--out"])
            .arg(&out))
        .status
        .success()
    );
    assert!(
        run(with_queue(&queue, emulator.url()).args(["worker", "--once"]))
            .status
            .success()
    );
    let drops = committed_drops(&out);
    assert_eq!(drops.len(), 1);
    let marker = fs::read(drops[0].join("upload.complete")).unwrap();
    // Rewind the job to the moment between the commit and the queue update: running, under a
    // lease that has expired, as if its worker had been killed right after the marker.
    let db = rusqlite::Connection::open(&queue).unwrap();
    db.execute(
        "UPDATE lpdrop_jobs SET state = 'running', lease_owner = 'killed:1', \
         lease_expires = 0, uploaded_at = NULL WHERE id = 1",
        [],
    )
    .unwrap();
    drop(db);
    let worker = run(with_queue(&queue, emulator.url()).args(["worker", "--once"]));
    assert!(worker.status.success());
    let text = output_text(&worker);
    assert!(
        text.contains("already committed by an earlier attempt"),
        "{text}"
    );
    assert!(text.contains("taken over"), "{text}");
    check_one_drop_per_job(&queue, &out, PER_DAY, from, to);
    assert_eq!(
        fs::read(drops[0].join("upload.complete")).unwrap(),
        marker,
        "the committed drop is left as it was"
    );
    let job = &jobs_json(&queue)[0];
    assert_eq!(job["attempts"], 2);
    assert_eq!(
        job["counts"]["conversations"].as_u64().unwrap(),
        expected_ids(PER_DAY, from, to).len() as u64,
        "counts read back from the manifest"
    );
}

#[test]
fn a_job_cancelled_while_running_stops_and_a_retry_reuses_its_drop() {
    let per_day = 96_000;
    let emulator = RunningEmulator::start(per_day);
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("q.db").display().to_string();
    let out = dir.path().join("out");
    let (from, to) = ("2026-03-01T00:00:00Z", "2026-03-01T01:00:00Z");
    assert!(
        run(with_queue(&queue, emulator.url())
            .args(["jobs", "add", "--from", from, "--to", to, "--out"])
            .arg(&out))
        .status
        .success()
    );
    let mut cmd = with_queue(&queue, emulator.url());
    cmd.args(["worker", "--once", "--lease", "3s"]);
    let mut w = Spawned::new(cmd);
    w.wait_for("job 1 attempt 1", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    let cancel = run(lpdrop().args(["--queue", &queue, "jobs", "cancel", "1"]));
    assert!(cancel.status.success());
    let (status, lines) = w.wait(Duration::from_secs(60));
    assert!(status.success(), "{lines:#?}");
    let job = &jobs_json(&queue)[0];
    let root = job["drop"]["root"].as_str().unwrap().to_string();
    if lines
        .iter()
        .any(|l| l.contains("cancelled while running; stopped"))
    {
        assert_eq!(job["state"], "cancelled");
        assert!(
            committed_drops(&out).is_empty(),
            "stopped before its commit"
        );
        // Whatever the stopped attempt wrote is an uncommitted drop: gc removes it.
        let gc = run(lpdrop().arg("gc").arg(&out).args(["--older-than", "0s"]));
        assert!(gc.status.success());
        assert!(!out.join(&root).exists());
        // Retried, the job writes the drop it had recorded, once.
        assert!(
            run(lpdrop().args(["--queue", &queue, "jobs", "retry", "1"]))
                .status
                .success()
        );
        let drain =
            run(with_queue(&queue, emulator.url()).args(["worker", "--once", "--lease", "3s"]));
        assert!(drain.status.success());
    } else {
        // The job finished before the cancel reached it: nothing to cancel any more.
        assert_eq!(job["state"], "uploaded");
        assert_eq!(cancel.status.code(), Some(1));
    }
    check_one_drop_per_job(&queue, &out, per_day, from, to);
    assert_eq!(jobs_json(&queue)[0]["drop"]["root"], root.as_str());
}

/// Issue 13, bug 2: a key the API rejects fails every attempt alike, so the job is dead at its
/// first attempt (not failed and retried 5 times with backoff), and `jobs show` says what to
/// check. Durations take the one grammar here too (`--lease 250ms` was refused before).
#[test]
fn a_rejected_key_kills_the_job_at_its_first_attempt_and_says_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("q.db").display().to_string();
    let out = dir.path().join("out").display().to_string();
    let emulator = RunningEmulator::start(20);
    let add = run(with_queue(&queue, emulator.url()).args([
        "jobs",
        "add",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
        "--out",
        &out,
    ]));
    assert!(add.status.success(), "{}", output_text(&add));
    let worker = run(with_queue(&queue, emulator.url())
        .env("LP_APP_SECRET", "wrong-s3cret")
        .args([
            "worker",
            "--once",
            "--lease",
            "1500ms",
            "--retry-backoff",
            "250ms",
        ]));
    let stderr = String::from_utf8_lossy(&worker.stderr);
    assert_eq!(worker.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 job ended dead"), "{stderr}");
    assert!(!stderr.contains("wrong-s3cret"), "{stderr}");
    let jobs = jobs_json(&queue);
    assert_eq!(jobs[0]["state"], "dead");
    assert_eq!(
        jobs[0]["attempts"], 1,
        "one attempt, not {}",
        jobs[0]["attempts"]
    );
    let show = stdout(&run(lpdrop().args(["--queue", &queue, "jobs", "show", "1"])));
    assert!(show.contains("state          dead"), "{show}");
    assert!(show.contains("HTTP 401"), "{show}");
    assert!(show.contains("check LP_APP_KEY, LP_APP_SECRET"), "{show}");
}

#[test]
fn worker_processes_of_one_account_share_its_pace_through_the_queue() {
    // A request limit two processes reach at once: the first requests of both (2 slots each,
    // 4 at once against the emulator's bucket of 2) are refused, and a cut is published.
    let emulator = lpdrop_testkit::EmulatorProcess::start(
        crate::bin(),
        &["--per-day", &PER_DAY.to_string(), "--faults", "rps=5"],
    );
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("lpdrop.db").display().to_string();
    let out = dir.path().join("out");
    let (from, to) = ("2026-03-01T00:00:00Z", "2026-03-01T08:00:00Z");
    let added = run(with_queue(&queue, &emulator.url)
        .args([
            "jobs", "add", "--from", from, "--to", to, "--split", "1h", "--out",
        ])
        .arg(&out));
    assert!(added.status.success());
    let worker = |name: &str| {
        let mut cmd = with_queue(&queue, &emulator.url);
        cmd.env("LPDROP_LOG", "lpdrop_worker=debug,lpdrop_liveperson=debug")
            .args([
                "worker",
                "--once",
                "--concurrency",
                "2",
                "--worker-id",
                name,
            ]);
        Spawned::new(cmd)
    };
    let mut workers = [worker("first"), worker("second")];
    for w in &mut workers {
        w.wait_for("done in", Duration::from_secs(120));
    }
    check_one_drop_per_job(&queue, &out, PER_DAY, from, to);
    for w in &workers {
        assert!(
            w.saw("the account's pace is shared by 2 worker process(es)"),
            "both processes ran jobs of the account at once, and each knew it"
        );
    }
    assert!(
        workers.iter().any(|w| w.saw("the API answered 429")),
        "the limit was reached"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let board = runtime.block_on(async {
        let q = lpdrop_jobs::Queue::open(&queue).await.unwrap();
        q.pace_board("12345678").await.unwrap()
    });
    let cut_by = board.cut_by.as_deref().expect("a cut was published");
    assert!(["first", "second"].contains(&cut_by), "{board:?}");
    assert!(board.rate_milli.unwrap() > 0, "{board:?}");
    let cutter = &workers[usize::from(cut_by == "second")];
    assert!(
        cutter.saw("the API answered 429: request"),
        "the board's cut is one that process made on a 429"
    );
    assert_eq!(
        board.members, 0,
        "no lease is left once both drained the queue"
    );
    for w in &workers {
        assert!(
            w.saw("paced at this process's share of the account's rate"),
            "each process paced itself at its share of the published cut"
        );
    }
}
