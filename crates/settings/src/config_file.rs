//! The optional TOML configuration file, the third layer of every setting after flags and the
//! environment.
//!
//! The file is applied by setting, before the command line is parsed, every environment
//! variable it names that is not set already; a front end then reads flags first and the
//! environment second, so one mechanism serves all three layers and every setting has exactly
//! one name per layer:
//!
//! | file                          | environment                |
//! |-------------------------------|----------------------------|
//! | `queue = ...` (top level)     | `LPDROP_QUEUE`             |
//! | `[liveperson] app_key = ...`  | `LP_APP_KEY`               |
//! | `[s3] role_arn = ...`         | `LPDROP_S3_ROLE_ARN`       |
//! | `[aws] region = ...`          | `AWS_REGION`               |
//!
//! The known keys are given by the front end (the variables its flags declare); any other key
//! is an error. Values shown to people go through [`redact`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A configuration file that cannot be used: its path (when read from one) and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

fn bail<T>(message: String) -> Result<T, ConfigError> {
    Err(ConfigError(message))
}

/// Where each setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Environment,
    File,
}

/// The configuration file as applied: which variables it set, and which it left alone because
/// the environment already had them.
#[derive(Debug, Default)]
pub struct Applied {
    pub path: Option<PathBuf>,
    /// Variable name -> where its value comes from, for every variable the file names.
    pub origins: BTreeMap<String, Origin>,
}

/// The environment variable a file key names: `[section] key` or a top-level `key`.
pub fn var_of(section: Option<&str>, key: &str) -> Option<String> {
    let key = key.to_ascii_uppercase();
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    match section {
        None => Some(format!("LPDROP_{key}")),
        Some("liveperson") => Some(format!("LP_{key}")),
        Some("s3") => Some(format!("LPDROP_S3_{key}")),
        Some("aws") => Some(format!("AWS_{key}")),
        Some(_) => None,
    }
}

/// The file key of an environment variable (the inverse of [`var_of`]), for messages and docs.
pub fn key_of(var: &str) -> String {
    if let Some(rest) = var.strip_prefix("LPDROP_S3_") {
        format!("[s3] {}", rest.to_ascii_lowercase())
    } else if let Some(rest) = var.strip_prefix("LPDROP_") {
        rest.to_ascii_lowercase()
    } else if let Some(rest) = var.strip_prefix("LP_") {
        format!("[liveperson] {}", rest.to_ascii_lowercase())
    } else if let Some(rest) = var.strip_prefix("AWS_") {
        format!("[aws] {}", rest.to_ascii_lowercase())
    } else {
        var.to_string()
    }
}

/// Parses a configuration file into variable -> value, refusing unknown keys, unknown sections
/// and values that are not a string, number or boolean.
pub fn parse(text: &str, known: &[String]) -> Result<BTreeMap<String, String>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e| ConfigError(format!("not valid TOML: {e}")))?;
    let mut out = BTreeMap::new();
    let mut unknown = Vec::new();
    let mut put =
        |section: Option<&str>, key: &str, value: &toml::Value| -> Result<(), ConfigError> {
            let name = match section {
                Some(s) => format!("[{s}] {key}"),
                None => key.to_string(),
            };
            let var = var_of(section, key).filter(|v| known.contains(v));
            let Some(var) = var else {
                unknown.push(name);
                return Ok(());
            };
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return bail(format!(
                        "{name}: expected a string, number or boolean, found {}",
                        other.type_str()
                    ));
                }
            };
            out.insert(var, text);
            Ok(())
        };
    for (key, value) in &table {
        match value {
            toml::Value::Table(section) => {
                for (k, v) in section {
                    put(Some(key), k, v)?;
                }
            }
            other => put(None, key, other)?,
        }
    }
    if !unknown.is_empty() {
        let mut valid: Vec<String> = known.iter().map(|v| key_of(v)).collect();
        valid.sort();
        return bail(format!(
            "unknown key(s) {}; the keys are: {}",
            unknown.join(", "),
            valid.join(", ")
        ));
    }
    Ok(out)
}

/// Reads the file and sets every variable it names that the environment does not set yet.
///
/// Must run before any other thread starts (it changes the process environment).
pub fn apply(path: &Path, known: &[String]) -> Result<Applied, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "cannot read the configuration file {}: {e}",
            path.display()
        ))
    })?;
    let values = parse(&text, known)
        .map_err(|e| ConfigError(format!("configuration file {}: {e}", path.display())))?;
    let mut applied = Applied {
        path: Some(path.to_path_buf()),
        ..Applied::default()
    };
    for (var, value) in values {
        if std::env::var_os(&var).is_some() {
            applied.origins.insert(var, Origin::Environment);
        } else {
            // SAFETY: called from `main` before the async runtime or any other thread exists,
            // so nothing reads the environment concurrently.
            unsafe { std::env::set_var(&var, value) };
            applied.origins.insert(var, Origin::File);
        }
    }
    Ok(applied)
}

/// True for variables whose values are secrets: never printed, only "set".
pub fn is_secret(var: &str) -> bool {
    ["SECRET", "TOKEN", "PASSWORD", "APP_KEY", "EXTERNAL_ID"]
        .iter()
        .any(|s| var.contains(s))
}

/// A value fit to print: secrets hidden, and the secrets a URL carries (a Postgres queue's
/// password, in its user info or as a query parameter) masked.
pub fn redact(var: &str, value: &str) -> String {
    if is_secret(var) {
        return "******** (set)".to_string();
    }
    crate::redact_url(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        [
            "LPDROP_QUEUE",
            "LPDROP_OUT",
            "LP_APP_KEY",
            "LPDROP_S3_ROLE_ARN",
            "AWS_REGION",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn keys_map_to_variables_by_section() {
        let text = r#"
            queue = "postgres://lpdrop@db/q"
            out = "s3://bucket/folder"
            [liveperson]
            app_key = "k"
            [s3]
            role_arn = "arn:aws:iam::1:role/x"
            [aws]
            region = "eu-west-1"
        "#;
        let values = parse(text, &known()).unwrap();
        assert_eq!(values["LPDROP_QUEUE"], "postgres://lpdrop@db/q");
        assert_eq!(values["LP_APP_KEY"], "k");
        assert_eq!(values["LPDROP_S3_ROLE_ARN"], "arn:aws:iam::1:role/x");
        assert_eq!(values["AWS_REGION"], "eu-west-1");
        assert_eq!(values.len(), 5);
        for var in known() {
            let key = key_of(&var);
            let (section, key) = match key.split_once("] ") {
                Some((s, k)) => (Some(s.trim_start_matches('[')), k),
                None => (None, key.as_str()),
            };
            assert_eq!(var_of(section, key).as_deref(), Some(var.as_str()));
        }
    }

    #[test]
    fn unknown_keys_sections_and_types_are_errors() {
        let err = parse("queu = \"x\"", &known()).unwrap_err().to_string();
        assert!(
            err.contains("unknown key(s) queu") && err.contains("queue"),
            "{err}"
        );
        let err = parse("[liveperson]\napp_kee = \"x\"", &known())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[liveperson] app_kee"), "{err}");
        let err = parse("[nope]\nqueue = \"x\"", &known())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[nope] queue"), "{err}");
        let err = parse("out = [1, 2]", &known()).unwrap_err().to_string();
        assert!(err.contains("expected a string"), "{err}");
        assert!(parse("queue = ", &known()).is_err());
    }

    #[test]
    fn secrets_and_url_passwords_are_redacted() {
        assert_eq!(redact("LP_APP_SECRET", "s3cret"), "******** (set)");
        assert_eq!(redact("LP_ACCESS_TOKEN", "t"), "******** (set)");
        assert_eq!(
            redact(
                "LPDROP_QUEUE",
                "postgres://me:pa:ss@db.example.com:5432/q?sslmode=require"
            ),
            "postgres://me:***@db.example.com:5432/q?sslmode=require"
        );
        // A password may also come as a query parameter (issue 13, bug 1).
        assert_eq!(
            redact(
                "LPDROP_QUEUE",
                "postgres://u@db.example.com/q?password=hunter2&sslmode=require"
            ),
            "postgres://u@db.example.com/q?password=***&sslmode=require"
        );
        assert_eq!(redact("LPDROP_QUEUE", "./lpdrop.db"), "./lpdrop.db");
        assert_eq!(
            redact("LPDROP_QUEUE", "postgres://me@db/q"),
            "postgres://me@db/q"
        );
        assert_eq!(
            redact("LP_DOMAIN", "https://api.liveperson.net"),
            "https://api.liveperson.net"
        );
    }
}
