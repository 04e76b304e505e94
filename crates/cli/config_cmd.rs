//! `lpdrop config check`: the effective configuration (secrets redacted) and a test of every
//! connection that can be tried: the job queue, the destination, and LivePerson (Domain API and
//! an authenticated search, so a wrong key shows here and not at 3 a.m. in a worker).

use std::time::Duration;

use anyhow::{Context, Result};
use lpdrop_liveperson::client::DEFAULT_DOMAIN;
use lpdrop_liveperson::oauth1::ApiKey;
use lpdrop_liveperson::{Client, ClientConfig};

use crate::config::{Applied, Origin, key_of, redact};
use lpdrop_drop::{Destination, open};

use crate::out::outln;
use crate::s3_args::S3Args;

/// Settings `config check` tests; all optional, so it can report what is missing.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The destination to test: a local folder or s3://bucket/prefix.
    #[arg(long, env = "LPDROP_OUT", value_name = "DEST")]
    out: Option<String>,
    /// The LivePerson account to test the key against.
    #[arg(long, env = "LP_ACCOUNT_ID", value_name = "ID")]
    account_id: Option<String>,
    /// Domain API base URL; https, or http on loopback only.
    #[arg(long, env = "LP_DOMAIN", default_value = DEFAULT_DOMAIN, value_name = "URL")]
    domain: String,
    #[arg(long, env = "LP_APP_KEY", hide_env_values = true)]
    app_key: Option<String>,
    #[arg(long, env = "LP_APP_SECRET", hide_env_values = true)]
    app_secret: Option<String>,
    #[arg(long, env = "LP_ACCESS_TOKEN", hide_env_values = true)]
    access_token: Option<String>,
    #[arg(long, env = "LP_ACCESS_TOKEN_SECRET", hide_env_values = true)]
    access_token_secret: Option<String>,
    /// Give up on each connection test after this long.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    timeout: String,
    /// `lpdrop listen`'s app installation client id.
    #[arg(long, env = "LP_WEBHOOK_CLIENT_ID", value_name = "ID")]
    webhook_client_id: Option<String>,
    /// `lpdrop listen`'s app installation client secret.
    #[arg(long, env = "LP_WEBHOOK_CLIENT_SECRET", hide_env_values = true)]
    webhook_client_secret: Option<String>,
    /// `lpdrop listen`'s spool folder.
    #[arg(
        long,
        env = "LPDROP_SPOOL",
        default_value = "./lpdrop-spool",
        value_name = "DIR"
    )]
    spool: std::path::PathBuf,
    /// `lpdrop listen`'s certificate chain and key, when it serves HTTPS itself.
    #[arg(long, env = "LPDROP_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<std::path::PathBuf>,
    #[arg(long, env = "LPDROP_TLS_KEY", value_name = "FILE")]
    tls_key: Option<std::path::PathBuf>,
    #[command(flatten)]
    s3: S3Args,
}

/// One line of the connection report.
enum Outcome {
    Ok(String),
    Fail(String),
    Skipped(String),
}

pub async fn check(
    queue: &str,
    args: CheckArgs,
    applied: &Applied,
    known: &[String],
) -> Result<()> {
    print_settings(queue, applied, known);
    let timeout = lpdrop_settings::parse_duration(&args.timeout)
        .map_err(anyhow::Error::msg)
        .context("--timeout")?;
    outln!();
    outln!("Connections");
    let checks = [
        ("queue", bounded(timeout, check_queue(queue)).await),
        (
            "destination",
            bounded(timeout, check_destination(&args)).await,
        ),
        (
            "LivePerson",
            bounded(timeout, check_liveperson(&args)).await,
        ),
        ("webhooks", check_listener(&args)),
    ];
    let mut failed = Vec::new();
    for (what, outcome) in &checks {
        match outcome {
            Outcome::Ok(m) => outln!("  ok    {what:<12} {m}"),
            Outcome::Skipped(m) => outln!("  skip  {what:<12} {m}"),
            Outcome::Fail(m) => {
                outln!("  FAIL  {what:<12} {m}");
                failed.push(*what);
            }
        }
    }
    if failed.is_empty() {
        outln!("\nAll configured connections work.");
        Ok(())
    } else {
        anyhow::bail!("configuration check failed: {}", failed.join(", "))
    }
}

/// Every known setting that has a value, where the value comes from, secrets hidden.
fn print_settings(queue: &str, applied: &Applied, known: &[String]) {
    match &applied.path {
        Some(p) => outln!("Configuration (flags > environment > {})", p.display()),
        None => outln!("Configuration (flags > environment; no --config file)"),
    }
    let mut rows = vec![(
        "LPDROP_QUEUE".to_string(),
        redact("LPDROP_QUEUE", queue),
        origin_of("LPDROP_QUEUE", applied),
    )];
    for var in known.iter().filter(|v| v.as_str() != "LPDROP_QUEUE") {
        if let Ok(value) = std::env::var(var) {
            rows.push((var.clone(), redact(var, &value), origin_of(var, applied)));
        }
    }
    let width = rows.iter().map(|(v, _, _)| v.len()).max().unwrap_or(0);
    for (var, value, origin) in rows {
        outln!(
            "  {var:<width$}  {value}   ({origin}; file key {})",
            key_of(&var)
        );
    }
}

fn origin_of(var: &str, applied: &Applied) -> &'static str {
    match (applied.origins.get(var), std::env::var_os(var).is_some()) {
        (Some(Origin::File), _) => "file",
        (_, true) => "environment",
        _ => "default or flag",
    }
}

async fn bounded(timeout: Duration, check: impl Future<Output = Outcome>) -> Outcome {
    tokio::time::timeout(timeout, check)
        .await
        .unwrap_or_else(|_| Outcome::Fail(format!("no answer within {}s", timeout.as_secs())))
}

async fn check_queue(url: &str) -> Outcome {
    match lpdrop_jobs::Queue::open(url).await {
        Err(e) => Outcome::Fail(format!("{e}")),
        Ok(q) => match q.summary().await {
            Ok(s) => Outcome::Ok(format!(
                "{} queue {}: {} jobs",
                q.backend(),
                redact("LPDROP_QUEUE", url),
                s.by_state.values().sum::<u64>()
            )),
            Err(e) => Outcome::Fail(format!("{} queue: {e}", q.backend())),
        },
    }
}

async fn check_destination(args: &CheckArgs) -> Outcome {
    let Some(out) = args.out.as_deref().filter(|o| !o.is_empty()) else {
        return Outcome::Skipped("no --out / LPDROP_OUT".into());
    };
    match Destination::parse(out) {
        Err(e) => Outcome::Fail(format!("{e:#}")),
        Ok(Destination::Local(path)) => {
            // A local folder is fine if it exists and is writable, or can be created.
            let probe = path.join(format!(".lpdrop-config-check-{}", std::process::id()));
            let result = std::fs::create_dir_all(&path)
                .and_then(|()| std::fs::write(&probe, b"probe"))
                .and_then(|()| std::fs::remove_file(&probe));
            match result {
                Ok(()) => Outcome::Ok(format!("local folder {} is writable", path.display())),
                Err(e) => Outcome::Fail(format!("local folder {}: {e}", path.display())),
            }
        }
        Ok(dest @ Destination::S3(_)) => match open(&dest, &args.s3.settings()).await {
            Ok(_) => Outcome::Ok(format!("{out} is reachable (listing allowed)")),
            Err(e) => Outcome::Fail(format!("{e:#}")),
        },
        Ok(dest @ Destination::Azure(_)) => {
            let method = lpdrop_drop::azure::credential_source();
            match open(&dest, &args.s3.settings()).await {
                Ok(_) => Outcome::Ok(format!(
                    "{out} is reachable (listing allowed) with {method}"
                )),
                Err(e) => Outcome::Fail(format!("{e:#} (credential: {method})")),
            }
        }
    }
}

/// `lpdrop listen`'s settings: the app installation's credentials, a writable spool, and the
/// certificate when it serves HTTPS itself. Nothing to connect to: LivePerson calls it.
fn check_listener(args: &CheckArgs) -> Outcome {
    let id = args.webhook_client_id.as_deref().filter(|v| !v.is_empty());
    let secret = args
        .webhook_client_secret
        .as_deref()
        .filter(|v| !v.is_empty());
    let (id, _) = match (id, secret) {
        (None, None) => {
            return Outcome::Skipped(
                "no LP_WEBHOOK_CLIENT_ID / LP_WEBHOOK_CLIENT_SECRET (only `lpdrop listen` needs them)"
                    .into(),
            );
        }
        (Some(_), None) => return Outcome::Fail("LP_WEBHOOK_CLIENT_SECRET is not set".into()),
        (None, Some(_)) => return Outcome::Fail("LP_WEBHOOK_CLIENT_ID is not set".into()),
        (Some(id), Some(secret)) => (id, secret),
    };
    let spool = &args.spool;
    let probe = spool.join(format!(".lpdrop-config-check-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(spool)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::remove_file(&probe))
    {
        return Outcome::Fail(format!(
            "the spool {} is not writable: {e}",
            spool.display()
        ));
    }
    let serving = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match lpdrop_listener::tls::server_config(cert, key) {
            Ok(_) => format!("HTTPS with {}", cert.display()),
            Err(e) => return Outcome::Fail(format!("{e:#}")),
        },
        (None, None) => "plain HTTP (TLS terminated in front)".to_string(),
        _ => return Outcome::Fail("LPDROP_TLS_CERT and LPDROP_TLS_KEY go together".into()),
    };
    Outcome::Ok(format!(
        "client id {id}, secret set, spool {} writable, {serving}",
        spool.display()
    ))
}

async fn check_liveperson(args: &CheckArgs) -> Outcome {
    let Some(account) = args.account_id.as_deref().filter(|a| !a.is_empty()) else {
        return Outcome::Skipped("no --account-id / LP_ACCOUNT_ID".into());
    };
    let keys = [
        ("LP_APP_KEY", &args.app_key),
        ("LP_APP_SECRET", &args.app_secret),
        ("LP_ACCESS_TOKEN", &args.access_token),
        ("LP_ACCESS_TOKEN_SECRET", &args.access_token_secret),
    ];
    let missing: Vec<&str> = keys
        .iter()
        .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Outcome::Fail(format!("account {account}: {} not set", missing.join(", ")));
    }
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let config = ClientConfig::new(
        args.domain.clone(),
        account,
        ApiKey {
            app_key: value(&args.app_key),
            app_secret: value(&args.app_secret),
            access_token: value(&args.access_token),
            access_token_secret: value(&args.access_token_secret),
        },
    );
    let client = match Client::connect(config).await {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("account {account}: Domain API: {e}")),
    };
    match client.check_key().await {
        Ok(()) => Outcome::Ok(format!(
            "account {account} at {}: the key reads Messaging Interactions",
            args.domain
        )),
        Err(e) => Outcome::Fail(format!("account {account}: {e}")),
    }
}
