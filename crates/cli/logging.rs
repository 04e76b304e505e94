//! Logs: `tracing` events on stderr, as readable text or one JSON object per line
//! (`--log-format json` / `LPDROP_LOG_FORMAT=json`) for log collectors.
//!
//! Logs are separate from output: summaries and tables a command prints go to stdout, while
//! logs, warnings and progress go to stderr, so `lpdrop jobs list --json | jq` stays clean.
//! `LPDROP_LOG` (or `RUST_LOG`) takes a full filter such as `lpdrop=debug,aws_config=warn`.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event, with the fields of its spans (job, window, table).
    Json,
}

/// How much to say: `-q` errors and warnings only, default informational, `-v` debug,
/// `-vv` trace (for lpdrop's own crates; dependencies stay at warnings unless `LPDROP_LOG`
/// says otherwise, and the AWS credential chain's per-provider warnings are hidden: the error
/// that follows says what failed).
pub fn init(format: LogFormat, quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // A directive's target is a prefix: `lpdrop` covers every `lpdrop_*` crate too.
    let default = format!("warn,aws_config=error,lpdrop={level}");
    let filter = std::env::var("LPDROP_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling into the binary's code) is harmless: ignore it.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(true)
            .try_init(),
        LogFormat::Text => {
            let terminal = std::io::stderr().is_terminal();
            let builder = builder.with_ansi(terminal).with_target(false);
            if terminal {
                // A person reading a terminal needs no timestamps on a short run.
                builder.without_time().try_init()
            } else {
                builder.try_init()
            }
        }
    };
}
