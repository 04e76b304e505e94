//! Drops on Azure Blob Storage (`az://`), against Azurite through the real `object_store`
//! client: write, verify, refuse a corrupted drop, gc, a worker job.

use std::process::{Command, Output};

use lpdrop_testkit::azurite::{ACCOUNT, Azurite};
use lpdrop_testkit::fault_proxy::{Fault, FaultProxy, RequestKind, Rule};

const CONTAINER: &str = "lpdrop-drops";

fn lpdrop(azurite: &Azurite) -> Command {
    let mut cmd = crate::lpdrop();
    for (k, v) in azurite.env() {
        cmd.env(k, v);
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("lpdrop runs");
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A demo drop to `az://`, verified from Azurite, and read from there by DuckDB's azure
/// extension and pyarrow's AzureFileSystem.
#[test]
fn demo_drops_go_to_azure_and_verify() {
    let azurite = Azurite::start();
    azurite.create_container(CONTAINER);
    let out = format!("az://{CONTAINER}/thrive-air");
    let demo = run(lpdrop(&azurite).args(["demo", "--per-day", "200", "--out", &out]));
    assert!(demo.status.success());
    let stdout = String::from_utf8_lossy(&demo.stdout);
    let root = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("location"))
        .map(|l| l.trim().to_string())
        .expect("the summary names the drop's location");
    assert!(
        root.starts_with(&format!("az://{CONTAINER}/thrive-air/")),
        "{root}"
    );
    let verified = run(lpdrop(&azurite).args(["verify", &root]));
    assert!(verified.status.success());
    assert!(String::from_utf8_lossy(&verified.stdout).starts_with("OK: drop"));

    // DuckDB (azure extension) and pyarrow (AzureFileSystem) read it straight from Azurite.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = repo.join(".ci/venv/bin/python");
    assert!(
        python.exists(),
        "the readers need .ci/venv: run tests/run-all.sh once"
    );
    let mut check = Command::new(python);
    check
        .arg(repo.join("tests/readers/check_azure_drop.py"))
        .arg(&root);
    for (k, v) in azurite.env() {
        check.env(k, v);
    }
    assert!(
        run(&mut check).status.success(),
        "the readers read the drop from Azurite"
    );
}

/// `lpdrop` with Azurite behind the fault proxy: its blob endpoint is the proxy's.
fn lpdrop_through(azurite: &Azurite, proxy: &FaultProxy) -> Command {
    let mut cmd = crate::lpdrop();
    let connection = azurite.connection_string().replace(
        &azurite.blob_endpoint(),
        &format!("{}/{ACCOUNT}", proxy.url()),
    );
    cmd.env("AZURE_STORAGE_CONNECTION_STRING", connection);
    cmd
}

fn committed(azurite: &Azurite, prefix: &str) -> (usize, usize) {
    // gc's dry run counts committed drops and lists uncommitted ones, changing nothing.
    let out = run(lpdrop(azurite).args(["gc", prefix, "--older-than", "0s", "--dry-run"]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let committed = text
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("gc's summary: {text}"));
    let uncommitted = text.matches("would remove uncommitted drop").count();
    (committed, uncommitted)
}

/// Files as blocks (a low single-put limit), with 500, 503 and reset connections on Put Block
/// and Put Block List: the retries give a drop that verifies (a block list whose answer was
/// lost is recognised by the blob's bytes). With one table's block list always refused, the
/// run fails cleanly, naming the file, and leaves no marker; gc then removes the partial drop.
#[test]
fn block_uploads_survive_faults_or_fail_cleanly() {
    let azurite = Azurite::start();
    azurite.create_container(CONTAINER);
    let upstream = format!("http://127.0.0.1:{}", azurite.blob_port);
    let faults = [
        Fault::InternalError,
        Fault::SlowDown,
        Fault::Reset,
        Fault::ResetAfterForward,
    ];
    let flaky = FaultProxy::start(
        &upstream,
        7,
        vec![
            Rule::new(RequestKind::PutBlock, 0.3, &faults),
            Rule::new(RequestKind::PutBlockList, 0.5, &faults),
        ],
    );
    let prefix = format!("az://{CONTAINER}/flaky");
    let demo = run(lpdrop_through(&azurite, &flaky).args([
        "demo",
        "--per-day",
        "300",
        "--out",
        &prefix,
        "--s3-multipart-threshold",
        "16384",
        "--store-retry-delay",
        "10ms",
    ]));
    assert!(demo.status.success());
    let stats = flaky.stats();
    assert!(stats.faults_of(RequestKind::PutBlock) > 0, "{stats:?}");
    assert!(stats.faults_of(RequestKind::PutBlockList) > 0, "{stats:?}");
    assert_eq!(committed(&azurite, &prefix), (1, 0));
    let root = String::from_utf8_lossy(&demo.stdout)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("location")
                .map(|r| r.trim().to_string())
        })
        .unwrap();
    assert!(
        run(lpdrop(&azurite).args(["verify", &root]))
            .status
            .success()
    );

    let refusing = FaultProxy::start(
        &upstream,
        1,
        // The messages table's block list only: the conversations file before it lands, so
        // a partial drop is left for gc.
        vec![
            Rule::new(RequestKind::PutBlockList, 1.0, &[Fault::InternalError])
                .key_contains("/parquet/messages/"),
        ],
    );
    let prefix = format!("az://{CONTAINER}/refused");
    let failed = run(lpdrop_through(&azurite, &refusing).args([
        "demo",
        "--per-day",
        "300",
        "--out",
        &prefix,
        "--s3-multipart-threshold",
        "16384",
        "--store-attempts",
        "2",
        "--store-retry-delay",
        "10ms",
    ]));
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("az://lpdrop-drops/refused/"), "{stderr}");
    assert!(stderr.contains("/parquet/messages/"), "{stderr}");
    assert_eq!(
        committed(&azurite, &prefix),
        (0, 1),
        "no marker, one partial drop"
    );
    let gc = run(lpdrop(&azurite).args(["gc", &prefix, "--older-than", "0s"]));
    assert!(gc.status.success());
    assert_eq!(
        committed(&azurite, &prefix),
        (0, 0),
        "gc removed the partial drop"
    );
}

/// A committed drop whose file was changed afterwards fails verify; the marker is create-only
/// (a second commit of another drop id at the same root is refused).
#[tokio::test]
async fn verify_refuses_a_corrupted_drop_and_markers_are_create_only() {
    use lpdrop_drop::ObjectStore;
    let azurite = Azurite::start();
    azurite.create_container(CONTAINER);
    let prefix = format!("az://{CONTAINER}/checked");
    let demo = run(lpdrop(&azurite).args(["demo", "--per-day", "100", "--out", &prefix]));
    assert!(demo.status.success());
    let root = String::from_utf8_lossy(&demo.stdout)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("location")
                .map(|r| r.trim().to_string())
        })
        .unwrap();
    let key_root = root
        .strip_prefix(&format!("az://{CONTAINER}/"))
        .unwrap()
        .to_string();
    let store = lpdrop_drop::AzureStore::with_connection(
        CONTAINER,
        Some(azurite.connection_string()),
        lpdrop_drop::RetryBudget::default(),
        lpdrop_drop::azure::SINGLE_PUT_MAX,
    )
    .unwrap();
    let marker = format!("{key_root}/upload.complete");
    let ours = store
        .get_bytes(&marker)
        .await
        .unwrap()
        .expect("the marker exists");
    assert!(
        store.put_if_absent(&marker, &ours).await.unwrap(),
        "the same bytes: ours"
    );
    assert!(
        !store.put_if_absent(&marker, b"{}").await.unwrap(),
        "other bytes: refused"
    );
    assert_eq!(
        store.get_bytes(&marker).await.unwrap().as_deref(),
        Some(&ours[..])
    );

    let file = store
        .list(&format!("{key_root}/parquet/messages"))
        .await
        .unwrap()
        .remove(0);
    let mut bytes = store.get_bytes(&file.key).await.unwrap().unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    store.put(&file.key, &bytes).await.unwrap();
    let verified = run(lpdrop(&azurite).args(["verify", &root]));
    assert_eq!(verified.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verified.stdout).contains("problem:"));
}

/// A queued job whose destination is `az://`, drained by a worker.
#[test]
fn a_worker_job_publishes_to_azure() {
    let azurite = Azurite::start();
    azurite.create_container(CONTAINER);
    let emulator = crate::RunningEmulator::start(40);
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.db").display().to_string();
    let prefix = format!("az://{CONTAINER}/jobs");
    let with_azure = |cmd: &mut Command| {
        for (k, v) in azurite.env() {
            cmd.env(k, v);
        }
    };
    let mut add = crate::with_queue(&queue, emulator.url());
    with_azure(&mut add);
    add.args([
        "jobs",
        "add",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-02",
        "--out",
        &prefix,
    ]);
    assert!(run(&mut add).status.success());
    let mut worker = crate::with_queue(&queue, emulator.url());
    with_azure(&mut worker);
    worker.args(["worker", "--once"]);
    assert!(run(&mut worker).status.success());
    assert_eq!(committed(&azurite, &prefix), (1, 0));
}

/// `lpdrop copy`: a local drop published to `az://` as blocks through the fault proxy (500,
/// 503 and resets on Put Block and Put Block List), verified there with the manifest's new
/// root; a second copy changes nothing; the Azure drop copies back to a local folder intact;
/// and a source whose file no longer matches its manifest is refused with no marker written.
#[test]
fn copy_publishes_a_local_drop_to_azure_once() {
    let azurite = Azurite::start();
    azurite.create_container(CONTAINER);
    let scratch = tempfile::tempdir().unwrap();
    let local = scratch.path().join("local");
    assert!(
        run(crate::lpdrop()
            .args(["demo", "--per-day", "300", "--out"])
            .arg(&local))
        .status
        .success()
    );
    let marker = lpdrop_testkit::cli::files_under(&local)
        .into_iter()
        .find(|p| p.ends_with("upload.complete"))
        .expect("a committed local drop");
    let drop_dir = marker.parent().unwrap().to_path_buf();
    let dated = drop_dir
        .strip_prefix(&local)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();

    let upstream = format!("http://127.0.0.1:{}", azurite.blob_port);
    let faults = [Fault::InternalError, Fault::SlowDown, Fault::Reset];
    let flaky = FaultProxy::start(
        &upstream,
        11,
        vec![
            Rule::new(RequestKind::PutBlock, 0.3, &faults),
            Rule::new(RequestKind::PutBlockList, 0.3, &faults),
        ],
    );
    let dest = format!("az://{CONTAINER}/copies");
    let copy = run(lpdrop_through(&azurite, &flaky)
        .args([
            "copy",
            "--s3-multipart-threshold",
            "16384",
            "--store-retry-delay",
            "10ms",
            "--out",
            &dest,
        ])
        .arg(&drop_dir));
    assert!(copy.status.success());
    let stdout = String::from_utf8_lossy(&copy.stdout).to_string();
    let remote = format!("{dest}/{dated}");
    assert!(
        stdout.contains(&format!("location      {remote}")),
        "{stdout}"
    );
    let stats = flaky.stats();
    assert!(stats.faults_of(RequestKind::PutBlock) > 0, "{stats:?}");
    let verified = run(lpdrop(&azurite).args(["verify", &remote]));
    assert!(verified.status.success());
    let local_manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(drop_dir.join("manifest.json")).unwrap()).unwrap();
    let id = local_manifest["drop_id"].as_str().unwrap();
    assert!(String::from_utf8_lossy(&verified.stdout).starts_with(&format!("OK: drop {id}")));

    let again = run(lpdrop(&azurite)
        .args(["copy", "--out", &dest])
        .arg(&drop_dir));
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already committed"));

    let back = scratch.path().join("back");
    assert!(
        run(lpdrop(&azurite).args(["copy", &remote, "--out"]).arg(&back))
            .status
            .success()
    );
    let returned = back.join(&dated);
    let verified = run(lpdrop(&azurite).arg("verify").arg(&returned));
    assert!(verified.status.success());
    for name in ["messages", "conversations"] {
        let part = format!("parquet/{name}/part-00000.parquet");
        assert_eq!(
            std::fs::read(drop_dir.join(&part)).unwrap(),
            std::fs::read(returned.join(&part)).unwrap(),
            "{part} came back byte for byte"
        );
    }

    // One byte of the source changed: refused, and the new destination gets no marker.
    let victim = drop_dir.join("parquet/messages/part-00000.parquet");
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let refused = run(lpdrop(&azurite)
        .args(["copy", "--out", &format!("az://{CONTAINER}/refused")])
        .arg(&drop_dir));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("parquet/messages/part-00000.parquet has")
            && stderr.contains("the manifest says"),
        "{stderr}"
    );
    assert_eq!(
        committed(&azurite, &format!("az://{CONTAINER}/refused")).0,
        0
    );
}

/// `lpdrop listen --out az://`: the emulator's webhooks (with duplicates and dropped
/// connections) published to Azurite through the fault proxy (500, 503 and resets on Put Blob,
/// Put Block and Put Block List) roll after roll. Every drop the listener reports verifies in
/// Azure, and the drops copied back hold every message the sender had acknowledged, once.
#[test]
fn listen_publishes_webhooks_to_azure_through_faults() {
    use crate::listen::{CLIENT, SECRET, free_port, ledger, listen, rows};
    let azurite = Azurite::start();
    azurite.create_container(CONTAINER);
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("http://127.0.0.1:{}", azurite.blob_port);
    let faults = [
        Fault::InternalError,
        Fault::SlowDown,
        Fault::Reset,
        Fault::ResetAfterForward,
    ];
    let flaky = FaultProxy::start(
        &upstream,
        5,
        vec![
            Rule::new(RequestKind::PutObject, 0.2, &faults),
            Rule::new(RequestKind::PutBlock, 0.2, &faults),
            Rule::new(RequestKind::PutBlockList, 0.3, &faults),
        ],
    );
    let connection = azurite.connection_string().replace(
        &azurite.blob_endpoint(),
        &format!("{}/{ACCOUNT}", flaky.url()),
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let dest = format!("az://{CONTAINER}/live");
    let (listener, _) = listen(
        &addr,
        std::path::Path::new(&dest),
        &dir.path().join("spool"),
        &[
            "--roll-every",
            "2s",
            "--s3-multipart-threshold",
            "16384",
            "--store-retry-delay",
            "10ms",
        ],
        &[
            ("LP_ACCOUNT_ID", "12345678"),
            ("AZURE_STORAGE_CONNECTION_STRING", &connection),
        ],
    );
    let ledger_file = dir.path().join("ledger.jsonl");
    let mut sender = crate::lpdrop();
    sender
        .args(["emulator", "--port", "0", "--webhook-url"])
        .arg(format!("http://{addr}/"))
        .args(["--webhook-client-id", CLIENT, "--webhook-rate", "3000"])
        .args(["--webhook-conversations", "400"])
        .args(["--webhook-faults", "duplicate=0.05,drop=0.02,seed=3"])
        .arg("--webhook-ledger")
        .arg(&ledger_file)
        .env("LPDROP_EMULATOR_WEBHOOK_SECRET", SECRET);
    let sent = run(&mut sender);
    assert!(sent.status.success());
    listener.signal("TERM");
    let (status, lines) = listener.wait(std::time::Duration::from_secs(180));
    assert!(status.success(), "{lines:#?}");
    let stats = flaky.stats();
    assert!(stats.total_faults() > 0, "{stats:?}");

    let drops: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("Committed drop "))
        .map(|l| l.split(':').take(2).collect::<Vec<_>>().join(":"))
        .collect();
    assert!(drops.len() >= 2, "{lines:#?}");
    let back = dir.path().join("back");
    for drop in &drops {
        assert!(drop.starts_with(&format!("{dest}/")), "{drop}");
        let verified = run(lpdrop(&azurite).args(["verify", drop]));
        assert!(verified.status.success());
        let copied = run(lpdrop(&azurite).args(["copy", drop, "--out"]).arg(&back));
        assert!(copied.status.success());
    }
    let got = rows(
        &back,
        "webhook_messages",
        &["conversation_id", "dialog_id", "seq"],
    );
    let distinct: std::collections::BTreeSet<Vec<String>> = got.iter().cloned().collect();
    assert_eq!(got.len(), distinct.len(), "a message twice");
    assert_eq!(distinct, ledger(&ledger_file)["webhook_messages"]);
}
