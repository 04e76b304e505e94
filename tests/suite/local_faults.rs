//! Local sink faults, with the real binary on real file systems (no mocks): a full disk and
//! permission denied, at different stages of a drop.
//!
//! - Disk full: `lpdrop demo` writes into a tiny tmpfs mounted in a private mount namespace
//!   (`unshare -m`: the mount is gone with the process, nothing leaks to the host). The sizes
//!   are chosen so that the disk fills while the parquet files are written (during the fetch,
//!   and during the final flush with spill files), while `manifest.json` is written, and
//!   while `upload.complete` is written. The last two are measured first: a successful run in
//!   a big tmpfs gives the room that the parquet files, the manifest and the marker take.
//! - Permission denied: as root, permission bits are ignored, so `lpdrop` runs as `nobody`
//!   (`setpriv --reuid=65534`) against an output folder it may not write, an hour folder of
//!   the drop layout it may not write, and, mid-run (the process is stopped with SIGSTOP while
//!   root takes the write permission away, then continued), the drop's table folders, where
//!   the local sink stages its files in place (parquet files and their unnamed spill files),
//!   and the drop's root, where `manifest.json` goes. A control run shows that the local sink
//!   stages nothing in `TMPDIR`.
//!
//! Every failure must exit 1 with exactly one `error:` line that names the path and the OS's
//! reason once, panic nowhere, and leave no `upload.complete` and no temporary file behind.
//!
//! Needs root (to mount and to switch user), as here and in CI. Without it the tests fail,
//! saying why: they never skip.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const NOBODY: &str = "65534";
const ENOSPC: &str = "No space left on device";
const EACCES: &str = "Permission denied";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lpdrop"))
}

/// Removes the variables the binary reads, so that the caller's environment cannot change
/// where or how it writes.
fn clean_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("LPDROP_")
            || k.starts_with("LP_")
            || k.starts_with("AWS_")
            || k == "RUST_LOG"
            || k == "RUST_BACKTRACE"
        {
            cmd.env_remove(&*k);
        }
    }
    cmd
}

/// A temporary folder that `nobody` can enter (tempfile makes them 0700).
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    dir
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
}

fn require_root() {
    let id = Command::new("id").arg("-u").output().expect("runs id -u");
    assert_eq!(
        String::from_utf8_lossy(&id.stdout).trim(),
        "0",
        "the local fault tests need root: to mount a tmpfs in a private mount namespace \
         (unshare -m) and to run lpdrop as another user (setpriv); they run as root in CI"
    );
}

/// What one run left: the binary's exit code, its stderr, and what the shell around it found
/// in the output folder (lines `::KEY VALUE` on stdout).
struct Run {
    rc: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        let run = Run {
            rc: None,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let rc = run.values("rc").first().and_then(|v| v.parse().ok());
        Run { rc, ..run }
    }

    /// The values of the `::KEY` lines the shell printed.
    fn values(&self, key: &str) -> Vec<String> {
        let tag = format!("::{key}");
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&tag))
            .filter(|rest| rest.is_empty() || rest.starts_with(' '))
            .map(|rest| rest.trim().to_string())
            .collect()
    }

    fn describe(&self) -> String {
        format!(
            "exit code {:?}\n--- stdout\n{}--- stderr\n{}",
            self.rc, self.stdout, self.stderr
        )
    }

    /// The contract for a failed run: exit 1, one `error:` line naming a path under `under`
    /// (and containing `names`) with the OS's `reason` said once, no panic, no marker, no
    /// temporary file left. Returns the error line.
    fn assert_clean_failure(&self, under: &Path, names: &str, reason: &str) -> String {
        let all = self.describe();
        assert_eq!(self.rc, Some(1), "lpdrop must exit 1:\n{all}");
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("RUST_BACKTRACE"),
            "lpdrop panicked:\n{all}"
        );
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "expected one `error:` line:\n{all}");
        let line = errors[0].to_string();
        let under = under.display().to_string();
        assert!(
            line.contains(&under),
            "the error must name the path (under {under}):\n{all}"
        );
        assert!(line.contains(names), "the error must name {names}:\n{all}");
        assert_eq!(
            line.matches(reason).count(),
            1,
            "the error must give the OS's reason ({reason}) once:\n{all}"
        );
        assert!(
            self.values("marker").is_empty(),
            "a failed run left an upload.complete:\n{all}"
        );
        assert!(
            self.values("tmp").is_empty(),
            "a failed run left temporary files:\n{all}"
        );
        assert!(
            self.values("found").iter().any(|v| v == "done"),
            "the shell did not look for leftovers:\n{all}"
        );
        line
    }
}

/// Prints, after the run, what a reader would see: markers (or anything named like one),
/// temporary files, and every file with its size on disk in KiB.
const INSPECT: &str = r#"
find "$dir" -name '*upload.complete*' | sed 's/^/::marker /'
find "$dir" -name '*.tmp' | sed 's/^/::tmp /'
find "$dir" -type f -printf '::file %k %P\n'
echo "::found done"
"#;

/// `lpdrop demo --out DIR --per-day N` in a tmpfs of `size_kib` mounted on DIR in a private
/// mount namespace. What the run left is inspected inside the namespace, since the tmpfs is
/// gone with it.
fn demo_in_tmpfs(size_kib: u64, per_day: u32) -> (Run, tempfile::TempDir) {
    let mount_point = tempfile::tempdir().unwrap();
    let script = format!(
        r#"dir=$0
mount -t tmpfs -o size={size_kib}k lpdrop-faults "$dir" || {{ echo "::mount-failed"; exit 97; }}
"$@"
echo "::rc $?"
{INSPECT}"#
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(mount_point.path())
        .arg(bin())
        .args(["demo", "--out"])
        .arg(mount_point.path())
        .args(["--per-day", &per_day.to_string()]);
    clean_env(&mut cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run unshare (util-linux): {e}"));
    let run = Run::from(out);
    assert!(
        run.values("mount-failed").is_empty() && run.rc.is_some(),
        "cannot mount a {size_kib} KiB tmpfs in a private mount namespace (unshare -m, then \
         mount -t tmpfs): these tests need root or CAP_SYS_ADMIN, which CI has:\n{}",
        run.describe()
    );
    // Private: nothing of the tmpfs shows on the host.
    let leaked: Vec<_> = std::fs::read_dir(mount_point.path()).unwrap().collect();
    assert!(
        leaked.is_empty(),
        "the tmpfs leaked to the host: {leaked:?}"
    );
    (run, mount_point)
}

/// Room the drop takes on a tmpfs, in KiB: its parquet files (and anything else but the
/// manifest and the marker), its manifest, its marker.
struct Footprint {
    /// How many parquet files the drop has.
    files: usize,
    data: u64,
    manifest: u64,
    marker: u64,
}

fn footprint(per_day: u32) -> Footprint {
    let (run, _dir) = demo_in_tmpfs(64 << 10, per_day);
    assert_eq!(
        run.rc,
        Some(0),
        "the measuring run failed:\n{}",
        run.describe()
    );
    assert_eq!(run.values("marker").len(), 1, "{}", run.describe());
    let mut fp = Footprint {
        files: 0,
        data: 0,
        manifest: 0,
        marker: 0,
    };
    for file in run.values("file") {
        let (kib, path) = file.split_once(' ').unwrap();
        let kib: u64 = kib.parse().unwrap();
        if path.ends_with("/manifest.json") {
            fp.manifest += kib;
        } else if path.ends_with("/upload.complete") {
            fp.marker += kib;
        } else {
            fp.files += usize::from(path.ends_with(".parquet"));
            fp.data += kib;
        }
    }
    assert!(
        fp.data > 0 && fp.manifest > 0 && fp.marker > 0,
        "{}",
        run.describe()
    );
    fp
}

/// Sizes in whole pages.
fn pages(kib: u64) -> u64 {
    kib / 4 * 4
}

/// Small drops (20 conversations): their spill files never reach the disk (pages are buffered
/// in memory first), so the room used only grows, and each stage can be aimed at exactly.
const SMALL: u32 = 20;

#[test]
fn disk_full_at_each_stage_of_a_small_drop() {
    require_root();
    let fp = footprint(SMALL);
    eprintln!(
        "a drop of {SMALL} conversations takes {} KiB of parquet, {} KiB of manifest, {} KiB of marker",
        fp.data, fp.manifest, fp.marker
    );
    let stages = [
        // Half the parquet files fit.
        ("parquet files", pages(fp.data / 2), ".parquet"),
        // Every parquet file fits, the manifest does not (one page short).
        ("manifest", fp.data + fp.manifest - 4, "manifest.json"),
        // Everything but the last page of the marker fits.
        (
            "marker",
            fp.data + fp.manifest + fp.marker - 4,
            "upload.complete",
        ),
    ];
    for (stage, size, names) in stages {
        let (run, dir) = demo_in_tmpfs(size, SMALL);
        eprintln!("{stage}: {size} KiB:\n{}", run.describe());
        let line = run.assert_clean_failure(dir.path(), names, ENOSPC);
        if stage != "parquet files" {
            // Every data file was written: the failure is the commit's.
            let files = run.values("file");
            let parquet = files.iter().filter(|f| f.ends_with(".parquet")).count();
            assert_eq!(parquet, fp.files, "{stage}: {line}\n{}", run.describe());
        }
        if stage == "marker" {
            let files = run.values("file");
            assert!(
                files.iter().any(|f| f.ends_with("/manifest.json")),
                "the manifest was written before the marker failed: {}",
                run.describe()
            );
        }
    }
}

#[test]
fn disk_full_while_encoding_a_larger_drop() {
    require_root();
    // 2,000 conversations: 64 KiB fills during the fetch (tables' files are written as pages
    // arrive), 256 KiB and 2 MiB during the commit, while the tables flush their spilled pages.
    for size in [64, 256, 2048] {
        let (run, dir) = demo_in_tmpfs(size, 2000);
        eprintln!("{size} KiB:\n{}", run.describe());
        run.assert_clean_failure(dir.path(), ".parquet", ENOSPC);
    }
}

/// The binary, where `nobody` can run it: in place when every folder above it can be entered,
/// else a copy in a temporary folder.
fn nobody_bin() -> &'static Path {
    static BIN: OnceLock<(PathBuf, Option<tempfile::TempDir>)> = OnceLock::new();
    let (path, _keep) = BIN.get_or_init(|| {
        let status = Command::new("setpriv")
            .args(as_nobody_args())
            .arg("test")
            .arg("-x")
            .arg(bin())
            .status()
            .unwrap_or_else(|e| panic!("cannot run setpriv (util-linux): {e}"));
        if status.success() {
            return (bin().to_path_buf(), None);
        }
        let dir = open_tempdir();
        let copy = dir.path().join("lpdrop");
        std::fs::copy(bin(), &copy).unwrap();
        chmod(&copy, 0o755);
        (copy, Some(dir))
    });
    path
}

fn as_nobody_args() -> [String; 3] {
    [
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".to_string(),
    ]
}

/// `lpdrop demo --out OUT` as `nobody`, with `TMPDIR` set. With `freeze`, a shell running as
/// root waits for the drop's `parquet` folder, stops lpdrop (SIGSTOP), runs `freeze` with
/// `$drop` set to the drop's root, and lets it go on (SIGCONT).
fn demo_as_nobody(out: &Path, per_day: u32, tmpdir: &Path, freeze: Option<&str>) -> Run {
    let watch = match freeze {
        None => String::new(),
        Some(action) => format!(
            r#"while kill -0 $pid 2>/dev/null; do
  parquet=$(find "$dir" -mindepth 6 -maxdepth 6 -type d -name parquet 2>/dev/null | head -n 1)
  if [ -n "$parquet" ]; then
    kill -STOP $pid
    drop=$(dirname "$parquet")
    {action}
    echo "::frozen $(find "$drop" | wc -l) entries"
    kill -CONT $pid
    break
  fi
  sleep 0.005
done"#
        ),
    };
    let script = format!(
        r#"dir=$0
setpriv {} "$@" &
pid=$!
{watch}
wait $pid
echo "::rc $?"
{INSPECT}"#,
        as_nobody_args().join(" ")
    );
    let home = open_tempdir();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script])
        .arg(out)
        .arg(nobody_bin())
        .args(["demo", "--out"])
        .arg(out)
        .args(["--per-day", &per_day.to_string()])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("TMPDIR", tmpdir);
    clean_env(&mut cmd);
    let run = Run::from(cmd.output().unwrap());
    if freeze.is_some() {
        assert_eq!(
            run.values("frozen").len(),
            1,
            "the run ended before its drop folder could be made read-only:\n{}",
            run.describe()
        );
    }
    run
}

/// A `TMPDIR` that `nobody` cannot write.
fn unwritable_tmpdir(base: &Path) -> PathBuf {
    let tmp = base.join("tmp-root-only");
    std::fs::create_dir(&tmp).unwrap();
    chmod(&tmp, 0o755);
    tmp
}

#[test]
fn control_nobody_can_write_a_drop_without_tmpdir() {
    require_root();
    // The control for the permission tests: as nobody, into a folder nobody owns, the drop is
    // committed. The local sink stages in place: a TMPDIR it cannot write does not matter.
    let base = open_tempdir();
    let out = base.path().join("out");
    std::fs::create_dir(&out).unwrap();
    chown_nobody(&out);
    let run = demo_as_nobody(&out, SMALL, &unwritable_tmpdir(base.path()), None);
    assert_eq!(run.rc, Some(0), "{}", run.describe());
    assert_eq!(run.values("marker").len(), 1, "{}", run.describe());
    assert!(run.values("tmp").is_empty(), "{}", run.describe());
}

#[test]
fn permission_denied_on_the_output_folder() {
    require_root();
    // Owned by root, 0755: nobody cannot create the drop's folders.
    let base = open_tempdir();
    let out = base.path().join("out");
    std::fs::create_dir(&out).unwrap();
    chmod(&out, 0o755);
    let run = demo_as_nobody(&out, SMALL, &unwritable_tmpdir(base.path()), None);
    eprintln!("{}", run.describe());
    run.assert_clean_failure(&out, "creating folder", EACCES);
    assert!(run.values("file").is_empty(), "{}", run.describe());
}

#[test]
fn permission_denied_on_the_hour_folder() {
    require_root();
    // The output folder is nobody's, but the drop's hour folder (`YYYY/MM/DD/HH`, this hour and
    // the next, in case the hour turns) is root's: the drop's own folder cannot be created.
    let base = open_tempdir();
    let out = base.path().join("out");
    std::fs::create_dir(&out).unwrap();
    chown_nobody(&out);
    let now = chrono::Utc::now();
    for t in [now, now + chrono::Duration::hours(1)] {
        let mut dir = out.clone();
        for (i, part) in t.format("%Y/%m/%d/%H").to_string().split('/').enumerate() {
            dir.push(part);
            if !dir.exists() {
                std::fs::create_dir(&dir).unwrap();
                if i < 3 {
                    chown_nobody(&dir);
                }
            }
        }
        chmod(&dir, 0o755);
    }
    let run = demo_as_nobody(&out, SMALL, &unwritable_tmpdir(base.path()), None);
    eprintln!("{}", run.describe());
    let line = run.assert_clean_failure(&out, "creating folder", EACCES);
    let hours = [now, now + chrono::Duration::hours(1)].map(|t| {
        out.join(t.format("%Y/%m/%d/%H/").to_string())
            .display()
            .to_string()
    });
    assert!(
        hours.iter().any(|h| line.contains(h.as_str())),
        "the error must be about a drop folder in {hours:?}: {line}"
    );
    assert!(run.values("file").is_empty(), "{}", run.describe());
}

#[test]
fn permission_denied_on_the_staging_folders_mid_run() {
    require_root();
    // The local sink stages in place: each table's folder in the drop holds its parquet file
    // while it is written, and the writer's unnamed spill file. Once the first table folder
    // exists, the whole drop folder becomes read-only: the next folder or file fails.
    let base = open_tempdir();
    let out = base.path().join("out");
    std::fs::create_dir(&out).unwrap();
    chown_nobody(&out);
    let run = demo_as_nobody(
        &out,
        2000,
        &unwritable_tmpdir(base.path()),
        Some(r#"chmod -R a-w "$drop""#),
    );
    eprintln!("{}", run.describe());
    run.assert_clean_failure(&out, "/parquet/", EACCES);
}

#[test]
fn permission_denied_on_the_drop_root_before_the_manifest() {
    require_root();
    // Only the drop's root becomes read-only, mid-run: every parquet file is still written
    // (their folders stay writable), then `manifest.json` cannot be created.
    let base = open_tempdir();
    let out = base.path().join("out");
    std::fs::create_dir(&out).unwrap();
    chown_nobody(&out);
    let run = demo_as_nobody(
        &out,
        2000,
        &unwritable_tmpdir(base.path()),
        Some(r#"chmod a-w "$drop""#),
    );
    eprintln!("{}", run.describe());
    run.assert_clean_failure(&out, "manifest.json", EACCES);
    assert!(
        run.values("file").iter().any(|f| f.ends_with(".parquet")),
        "{}",
        run.describe()
    );
}
