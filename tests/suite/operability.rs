//! Operability of the real binary: the configuration file and its precedence, `config check`
//! against a real S3 (moto) and the emulator, structured logs, secrets kept out of everything a
//! run leaves behind, progress on a terminal (a pty, through `script`), and shell completions.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lpdrop_testkit::{EmulatorProcess, Moto};

/// Distinctive secrets: any of them found in output or files is a leak.
const APP_KEY: &str = "appkey-Q7X2";
const APP_SECRET: &str = "appsecret-ZK93LW";
const ACCESS_TOKEN: &str = "accesstoken-M4PB8";
const TOKEN_SECRET: &str = "tokensecret-V81RT";
const SECRETS: [&str; 4] = [APP_KEY, APP_SECRET, ACCESS_TOKEN, TOKEN_SECRET];

use crate::bin;

/// The binary with a clean environment for the variables it reads.
fn lpdrop() -> Command {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("LPDROP_") || k.starts_with("LP_") || k.starts_with("AWS_") {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("runs");
    eprintln!("stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An emulator that accepts only the distinctive key above.
fn emulator(per_day: u32) -> EmulatorProcess {
    let key = SECRETS.join(":");
    EmulatorProcess::start(
        bin(),
        &["--per-day", &per_day.to_string(), "--api-key", &key],
    )
}

/// A configuration file with every LivePerson setting, the queue and the destination.
fn write_config(dir: &Path, domain: &str, out: &str, secret: &str) -> PathBuf {
    let path = dir.join("lpdrop.toml");
    let queue = dir.join("queue.db");
    std::fs::write(
        &path,
        format!(
            r#"# lpdrop settings for this test
queue = "{}"
out = "{out}"

[liveperson]
account_id = "12345678"
domain = "{domain}"
app_key = "{APP_KEY}"
app_secret = "{secret}"
access_token = "{ACCESS_TOKEN}"
access_token_secret = "{TOKEN_SECRET}"
"#,
            queue.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn config_check_passes_then_names_a_wrong_bucket_and_a_wrong_key() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(moto.create_bucket("lpdrop-config-check"));
    let emulator = emulator(50);
    let dir = tempfile::tempdir().unwrap();
    let with_moto = |cmd: &mut Command| {
        for (k, v) in moto.env() {
            cmd.env(k, v);
        }
    };

    let good = write_config(
        dir.path(),
        &emulator.url,
        "s3://lpdrop-config-check/folder",
        APP_SECRET,
    );
    let mut cmd = lpdrop();
    with_moto(&mut cmd);
    let out = run(cmd.arg("--config").arg(&good).args(["config", "check"]));
    assert!(out.status.success());
    let all = text(&out);
    for line in ["ok    queue", "ok    destination", "ok    LivePerson"] {
        assert!(all.contains(line), "{line}: {all}");
    }
    assert!(
        all.contains("(file; file key [liveperson] app_secret)"),
        "{all}"
    );
    for s in SECRETS {
        assert!(!all.contains(s), "secret {s} printed: {all}");
    }

    // A bucket that does not exist, and a wrong secret: both named, exit 1.
    let bad = write_config(
        dir.path(),
        &emulator.url,
        "s3://no-such-lpdrop-bucket/folder",
        "wrong-secret-8JQ",
    );
    let mut cmd = lpdrop();
    with_moto(&mut cmd);
    let out = run(cmd.arg("--config").arg(&bad).args(["config", "check"]));
    assert_eq!(out.status.code(), Some(1));
    let all = text(&out);
    assert!(
        all.contains("FAIL  destination")
            && all.contains("s3://no-such-lpdrop-bucket/folder/")
            && all.contains("NoSuchBucket"),
        "{all}"
    );
    assert!(
        all.contains("FAIL  LivePerson") && all.contains("account 12345678") && all.contains("401"),
        "{all}"
    );
    assert!(
        all.contains("configuration check failed: destination, LivePerson"),
        "{all}"
    );
    assert!(!all.contains("wrong-secret-8JQ"), "{all}");
    // The SDK's raw responses stay out of the message: one readable line per problem.
    assert!(
        !all.contains("SdkBody") && !all.contains("raw: Response"),
        "{all}"
    );
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    let from_file = dir.path().join("file.db");
    let from_env = dir.path().join("env.db");
    let from_flag = dir.path().join("flag.db");
    std::fs::write(&file, format!("queue = \"{}\"\n", from_file.display())).unwrap();
    let check = |cmd: &mut Command| {
        let out = run(cmd.arg("--config").arg(&file).args(["config", "check"]));
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = check(&mut lpdrop());
    assert!(
        out.contains(&format!("sqlite queue {}", from_file.display())),
        "{out}"
    );
    let out = check(lpdrop().env("LPDROP_QUEUE", &from_env));
    assert!(
        out.contains(&format!("sqlite queue {}", from_env.display())),
        "{out}"
    );
    let out = check(
        lpdrop()
            .env("LPDROP_QUEUE", &from_env)
            .arg("--queue")
            .arg(&from_flag),
    );
    assert!(
        out.contains(&format!("sqlite queue {}", from_flag.display())),
        "{out}"
    );
    // LPDROP_CONFIG names the file too.
    let out = run(lpdrop()
        .env("LPDROP_CONFIG", &file)
        .args(["config", "check"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&from_file.display().to_string()));
}

#[test]
fn unknown_keys_and_unreadable_files_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "queue = \"q.db\"\n[liveperson]\napp_sekret = \"x\"\n",
    )
    .unwrap();
    let out = run(lpdrop().arg("--config").arg(&file).args(["jobs", "list"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown key(s) [liveperson] app_sekret")
            && err.contains("[liveperson] app_secret"),
        "{err}"
    );
    let out = run(lpdrop()
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .args(["jobs", "list"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration file"));
}

/// Everything a sync and a worker run print (as JSON logs at the most verbose level), and every
/// file they leave (drops, manifests, the queue database), is searched for the secrets.
#[test]
fn secrets_never_reach_logs_errors_manifests_or_files() {
    let emulator = emulator(200);
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("drops");
    let config = write_config(
        dir.path(),
        &emulator.url,
        &out_dir.display().to_string(),
        APP_SECRET,
    );
    let mut everything = String::new();
    let mut step = |cmd: &mut Command, must_succeed: bool| {
        let out = run(cmd);
        if must_succeed {
            assert!(out.status.success(), "{}", text(&out));
        }
        let all = text(&out);
        everything.push_str(&all);
        all
    };
    let lp = || {
        let mut cmd = lpdrop();
        cmd.arg("--config")
            .arg(&config)
            .args(["--log-format", "json", "-vv"]);
        cmd
    };
    step(
        lp().args(["sync", "--from", "2026-03-01", "--to", "2026-03-02"])
            .arg("--out")
            .arg(&out_dir),
        true,
    );
    step(
        lp().args([
            "jobs",
            "add",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-02T06:00:00Z",
        ])
        .args(["--split", "3h"]),
        true,
    );
    step(lp().args(["worker", "--once"]), true);
    step(lp().args(["config", "check"]), true);
    // A failing run: the wrong secret in the environment wins over the file's.
    let failed = step(
        lp().env("LP_APP_SECRET", "wrong-secret-8JQ").args([
            "sync",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
        ]),
        false,
    );
    assert!(failed.contains("401"), "{failed}");
    assert!(!failed.contains("wrong-secret-8JQ"), "{failed}");
    for s in SECRETS {
        assert!(
            !everything.contains(s),
            "secret {s} in the output:\n{everything}"
        );
    }
    let mut files = 0;
    for path in walk(dir.path()) {
        if path == config {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        files += 1;
        for s in SECRETS {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "secret {s} in {}",
                path.display()
            );
        }
    }
    assert!(
        files > 30,
        "the runs left drops and a queue to search ({files} files)"
    );
}

#[test]
fn json_logs_are_one_object_per_line_with_job_spans() {
    let emulator = emulator(100);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &emulator.url,
        &dir.path().join("drops").display().to_string(),
        APP_SECRET,
    );
    let lp = || {
        let mut cmd = lpdrop();
        cmd.arg("--config").arg(&config);
        cmd
    };
    assert!(
        run(lp().args([
            "jobs",
            "add",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-02T02:00:00Z",
            "--split",
            "1h"
        ]))
        .status
        .success()
    );
    let out = run(lp().args(["--log-format", "json", "worker", "--once"]));
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut events = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        events.push(v);
    }
    let uploaded: Vec<_> = events
        .iter()
        .filter(|e| e["span"]["job"].is_number() && e.to_string().contains("uploaded"))
        .collect();
    assert_eq!(
        uploaded.len(),
        2,
        "one 'uploaded' event per job, in its job span: {stderr}"
    );
}

#[test]
fn a_terminal_sees_a_progress_bar_and_the_summary_and_a_pipe_does_not() {
    let emulator = emulator(4000);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &emulator.url,
        &dir.path().join("drops").display().to_string(),
        APP_SECRET,
    );
    let sync = format!(
        "{} --config {} sync --from 2026-03-01 --to 2026-03-08",
        bin().display(),
        config.display()
    );
    // `script` gives the command a pseudo-terminal and records what it shows.
    let typescript = dir.path().join("typescript");
    let out = run(Command::new("script")
        .args(["-qfec", &sync])
        .arg(&typescript)
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "160"));
    assert!(out.status.success(), "{}", text(&out));
    let screen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(
        screen.contains("% of the window") && screen.contains("conversations, ETA"),
        "no progress bar on the terminal:\n{screen}"
    );
    assert!(screen.contains("Committed drop"), "{screen}");
    assert!(screen.contains("conversations 28000"), "{screen}");
    // Through a pipe: the summary only, no bar.
    let out = run(lpdrop().arg("--config").arg(&config).args([
        "sync",
        "--from",
        "2026-03-08",
        "--to",
        "2026-03-09",
    ]));
    assert!(out.status.success());
    let all = text(&out);
    assert!(
        all.contains("Committed drop") && !all.contains("% of the window"),
        "{all}"
    );
}

#[test]
fn shell_completions_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(lpdrop().args(["completions", shell]));
        assert!(out.status.success());
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("lpdrop") && script.contains("worker") && script.contains("queue"),
            "{shell}"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
