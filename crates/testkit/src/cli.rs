//! Running the `lpdrop` binary in tests: a clean environment, output echoed for the test log,
//! long-running processes whose lines are collected as they come, and the committed drops
//! under a folder.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A command for `bin` (the test's `env!("CARGO_BIN_EXE_lpdrop")`) that inherits none of the
/// `LP_*` and `LPDROP_*` variables of the developer's shell: each test sets its own.
pub fn clean_command(bin: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(bin);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("LP_") || text.starts_with("LPDROP_") {
            cmd.env_remove(&name);
        }
    }
    cmd
}

/// Points `cmd` at an emulator at `url` with its default account and keys (all four
/// `emulator`).
pub fn emulator_credentials(cmd: &mut Command, url: &str) {
    cmd.env("LP_DOMAIN", url)
        .env("LP_ACCOUNT_ID", "12345678")
        .env("LP_APP_KEY", "emulator")
        .env("LP_APP_SECRET", "emulator")
        .env("LP_ACCESS_TOKEN", "emulator")
        .env("LP_ACCESS_TOKEN_SECRET", "emulator");
}

/// Every file under `root`, in no particular order.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Runs `cmd` to the end; its stdout and stderr go to the test log.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the command starts");
    eprintln!("stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Stdout and stderr (the logs) together.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every committed drop (folder holding `upload.complete`) under `root`, sorted.
pub fn committed_drops(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "upload.complete") {
                found.push(dir.clone());
            }
        }
    }
    found.sort();
    found
}

/// A child process whose stdout and stderr lines are collected as they come (and echoed to
/// the test log). Killed when dropped.
pub struct Spawned {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Spawned {
    pub fn new(mut cmd: Command) -> Spawned {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the process starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("piped"));
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("piped"));
        for stream in [stdout, stderr] {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[child] {line}");
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Spawned { child, lines }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    fn find(&self, needle: &str) -> Option<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(needle))
            .cloned()
    }

    /// Whether a line holding `needle` has been printed.
    pub fn saw(&self, needle: &str) -> bool {
        self.find(needle).is_some()
    }

    /// The first line holding `needle`, waiting up to `timeout` for it; panics when the
    /// process exits without printing it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.find(needle) {
                return line;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // the readers drain the pipes
                return self.find(needle).unwrap_or_else(|| {
                    panic!("the process exited ({status}) before printing {needle:?}")
                });
            }
            assert!(Instant::now() < deadline, "no {needle:?} in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, no clean-up of any kind, and waits for the process to be gone.
    pub fn kill(mut self) {
        self.child.kill().expect("the process can be killed");
        self.child.wait().expect("the killed process is reaped");
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits up to `timeout` for the process to exit: its status and every line it printed.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // the readers drain the pipes
                let lines = self.lines.lock().unwrap().clone();
                return (status, lines);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the process did not exit in time");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
