//! End-to-end on S3: the real binary publishes to moto, `verify` checks it, DuckDB reads it
//! straight from S3, and `gc` leaves committed drops alone.

use std::path::PathBuf;
use std::process::{Command, Output};

use lpdrop_testkit::Moto;

const BUCKET: &str = "vb-thrive-air-s3-bucket";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lpdrop(moto: &Moto) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lpdrop"));
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    cmd.env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_PROFILE");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("runs");
    eprintln!("stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The venv Python with DuckDB and httpfs (installed by tests/run-all.sh).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("LPDROP_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".ci/venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `bash tests/run-all.sh` once to create it, or set LPDROP_PYTHON",
        venv.display()
    );
    venv
}

async fn committed_roots(moto: &Moto, prefix: &str) -> Vec<String> {
    let out = moto
        .s3()
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key())
        .filter_map(|k| k.strip_suffix("/upload.complete"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_to_s3_verifies_reads_from_s3_and_survives_gc() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let out = run(lpdrop(&moto).args([
        "demo",
        "--per-day",
        "300",
        "--out",
        &format!("s3://{BUCKET}/thrive-air-folder"),
    ]));
    assert!(out.status.success());
    let roots = committed_roots(&moto, "thrive-air-folder/").await;
    assert_eq!(roots.len(), 1);
    let uri = format!("s3://{BUCKET}/{}", roots[0]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&uri),
        "prints where the drop is"
    );

    let out = run(lpdrop(&moto).args(["verify", &uri]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK: drop "));

    let mut check = Command::new(python());
    check
        .arg(repo().join("tests/readers/check_s3_drop.py"))
        .arg(&uri);
    for (k, v) in moto.env() {
        check.env(k, v);
    }
    assert!(
        run(&mut check).status.success(),
        "DuckDB reads the drop from S3"
    );

    let out = run(lpdrop(&moto).args([
        "gc",
        &format!("s3://{BUCKET}/thrive-air-folder"),
        "--older-than",
        "0s",
    ]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 committed drops kept"));
    assert!(
        run(lpdrop(&moto).args(["verify", &uri])).status.success(),
        "gc kept the committed drop"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_fails_on_a_missing_drop_and_a_missing_bucket() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    let missing = format!(
        "s3://{BUCKET}/f/2026/11/21/09/2026-11-21-09-30-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001"
    );
    let out = run(lpdrop(&moto).args(["verify", &missing]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("upload.complete is missing"));

    let dir = tempfile::tempdir().unwrap();
    let out = run(lpdrop(&moto)
        .args([
            "demo",
            "--per-day",
            "50",
            "--out",
            "s3://no-such-bucket-here/x",
        ])
        .current_dir(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-bucket-here"), "{stderr}");
}

#[test]
fn plain_http_to_a_remote_s3_endpoint_is_refused() {
    let moto_env_free = Command::new(env!("CARGO_BIN_EXE_lpdrop"))
        .args(["demo", "--per-day", "10", "--out", "s3://some-bucket/x"])
        .env("AWS_ENDPOINT_URL", "http://minio.example.com:9000")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(moto_env_free.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&moto_env_free.stderr).contains("must use https"));
}

#[test]
fn prefixes_from_the_command_line_are_validated() {
    for bad in [
        "s3://bucket/../etc",
        "s3://bucket//x",
        "s3://Bucket/x",
        "s3://bucket/UPPER",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lpdrop"))
            .args(["demo", "--per-day", "10", "--out", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("invalid"), "{bad}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn write_options_and_an_assumed_role_reach_s3() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET).await;
    // moto's STS answers AssumeRole, so the assume-role path (with an external id) runs for real;
    // moto does not check which credentials then sign the S3 requests.
    let out = run(lpdrop(&moto).args([
        "demo",
        "--per-day",
        "100",
        "--out",
        &format!("s3://{BUCKET}/thrive-air-folder"),
        "--s3-sse",
        "s3",
        "--s3-storage-class",
        "STANDARD_IA",
        "--s3-bucket-owner-full-control",
        "--s3-role-arn",
        "arn:aws:iam::123456789012:role/lpdrop-writer",
        "--s3-external-id",
        "thrive-air-external-id",
    ]));
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("thrive-air-external-id"));
    let roots = committed_roots(&moto, "thrive-air-folder/").await;
    assert_eq!(roots.len(), 1);
    let s3 = moto.s3();
    for name in [
        "parquet/messages/part-00000.parquet",
        "manifest.json",
        "upload.complete",
    ] {
        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(format!("{}/{name}", roots[0]))
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.server_side_encryption().map(|s| s.as_str()),
            Some("AES256"),
            "{name}"
        );
        assert_eq!(
            head.storage_class().map(|s| s.as_str()),
            Some("STANDARD_IA"),
            "{name}"
        );
    }
    let out = run(lpdrop(&moto).args([
        "demo",
        "--per-day",
        "10",
        "--out",
        "s3://vb-thrive-air-s3-bucket/x",
        "--s3-sse",
        "des",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--s3-sse must be s3 or kms"));
}
