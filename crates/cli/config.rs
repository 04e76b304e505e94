//! The command line's side of the configuration file (`--config FILE` or `LPDROP_CONFIG`): its
//! path, read before clap parses, and the variables the flags declare, which are the file's
//! keys. The file format and its application are in `lpdrop_settings::config_file`.
//!
//! Precedence is flags > environment > file > defaults.

use std::path::PathBuf;

pub use lpdrop_settings::config_file::{Applied, Origin, apply, key_of, redact};

/// Environment variables read outside clap's flags that the file may set too.
const EXTRA_VARS: &[&str] = &[
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
];

/// Every environment variable the command line (any subcommand) reads, and the extras.
pub fn known_vars(command: &clap::Command) -> Vec<String> {
    fn walk(command: &clap::Command, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.push(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut vars: Vec<String> = EXTRA_VARS.iter().map(|v| v.to_string()).collect();
    walk(command, &mut vars);
    vars.retain(|v| v != "LPDROP_CONFIG");
    vars.sort();
    vars.dedup();
    vars
}

/// The `--config FILE` (or `--config=FILE`) on the command line, else `LPDROP_CONFIG`. Read
/// before clap parses, because the file's values must be in the environment by then.
pub fn path_from_args(args: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("LPDROP_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_path_comes_from_the_flag_first() {
        let args = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            path_from_args(&args(&["lpdrop", "--config", "a.toml", "sync"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            path_from_args(&args(&["lpdrop", "worker", "--config=b.toml"])),
            Some(PathBuf::from("b.toml"))
        );
        assert_eq!(
            path_from_args(&args(&["lpdrop", "sync", "--", "--config", "c"])),
            std::env::var_os("LPDROP_CONFIG").map(PathBuf::from)
        );
    }
}
