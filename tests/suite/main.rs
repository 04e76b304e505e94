//! The end-to-end tests of the real `lpdrop` binary, in one test binary (linked once instead of
//! once per file, as ripgrep does), one module per area. Helpers that do not need this
//! package's binary live in `lpdrop-testkit`; the few that do are here.
//!
//! | module | what it covers |
//! |---|---|
//! | `e2e` | demo, sync of every source, convert, verify, gc, schema, column mapping, parquet flags |
//! | `jobs` | the queue from the command line and workers, on SQLite and Postgres |
//! | `listen` | `lpdrop listen`: vendor notifications, refusals, the emulator's sender against killed listeners |
//! | `metrics` | a long-running worker's Prometheus metrics, liveness and readiness |
//! | `operability` | the configuration file, `config check`, logs, secrets, progress, completions |
//! | `azure` | drops on Azure Blob Storage (Azurite): write, verify, gc, faults, a worker job |
//! | `catalog` | drops registered in the Glue Data Catalog (moto): `--glue-database`, `catalog sync` |
//! | `api_faults` | LivePerson's bad days (429, 5xx, resets, partial records) end to end |
//! | `crash_points` | a worker killed at every step: one committed drop per job |
//! | `local_faults` | a full disk and unwritable folders |
//! | `s3` | drops on S3 (moto): write, verify, gc, encryption, roles |
//! | `s3_faults` | S3 writes that fail or lose their answers |

mod api_faults;
mod azure;
mod catalog;
mod crash_points;
mod e2e;
mod jobs;
mod listen;
mod local_faults;
mod metrics;
mod operability;
mod s3;
mod s3_faults;

use std::path::Path;
use std::process::Command;

/// The `lpdrop` binary under test.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lpdrop"))
}

/// The binary with none of the developer's `LP_*` and `LPDROP_*` variables.
pub fn lpdrop() -> Command {
    lpdrop_testkit::cli::clean_command(bin())
}

/// `lpdrop --queue QUEUE ...` with the emulator's account and keys (a job's account comes from
/// the job, the secrets from this environment).
pub fn with_queue(queue: &str, emulator_url: &str) -> Command {
    let mut cmd = lpdrop();
    cmd.env("LPDROP_QUEUE", queue);
    lpdrop_testkit::cli::emulator_credentials(&mut cmd, emulator_url);
    cmd
}

/// `lpdrop emulator` on a free port, stopped when dropped.
pub struct RunningEmulator(lpdrop_testkit::EmulatorProcess);

impl RunningEmulator {
    pub fn start(per_day: u32) -> Self {
        RunningEmulator(lpdrop_testkit::EmulatorProcess::start(
            bin(),
            &["--per-day", &per_day.to_string()],
        ))
    }

    pub fn url(&self) -> &str {
        &self.0.url
    }
}
