//! `lpdrop emulator --webhook-url …`: the emulator also POSTs signed Connector API webhook
//! notifications of its synthetic conversations to a listener (`lpdrop_emulator::webhooks`).

use anyhow::{Context, Result};
use clap::ValueEnum;
use lpdrop_emulator::webhooks::{WebhookConfig, WebhookFaults, WebhookSender};
use lpdrop_emulator::{Dataset, EmulatorConfig};
use lpdrop_liveperson::webhook::signature::{Algorithm, Encoding};
use lpdrop_settings::Duration;

use crate::out::outln;

/// Webhook flags of `lpdrop emulator`.
#[derive(clap::Args)]
pub struct WebhookArgs {
    /// Also send LivePerson webhook notifications of the synthetic conversations to this
    /// endpoint (http:// or https://), signed with --webhook-secret.
    /// Example: --webhook-url http://127.0.0.1:8090/webhooks
    #[arg(long, value_name = "URL", requires = "webhook_secret")]
    pub webhook_url: Option<String>,
    /// The app installation's client secret that signs X-LivePerson-Signature.
    #[arg(
        long,
        env = "LPDROP_EMULATOR_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub webhook_secret: Option<String>,
    /// X-LivePerson-Client-Id of the notifications.
    #[arg(
        long,
        default_value = "lpdrop-emulator",
        value_name = "ID",
        requires = "webhook_url"
    )]
    pub webhook_client_id: String,
    /// Send this many conversations, print one JSON summary line on stdout and exit
    /// (default: stream until interrupted).
    #[arg(long, value_name = "N", requires = "webhook_url")]
    pub webhook_conversations: Option<u64>,
    /// The index of the first conversation sent (conversations start 2020-01-01, --per-day a
    /// day).
    #[arg(
        long,
        default_value_t = 0,
        value_name = "INDEX",
        requires = "webhook_url"
    )]
    pub webhook_first_index: u64,
    /// Changes (events) per second over all conversations (default: as fast as the listener
    /// answers).
    #[arg(long, value_name = "EPS", requires = "webhook_url")]
    pub webhook_rate: Option<f64>,
    /// Conversations in flight at once; each sends its notifications in order.
    #[arg(
        long,
        default_value_t = 16,
        value_name = "N",
        requires = "webhook_url",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub webhook_concurrency: u32,
    /// Sender faults, e.g. "duplicate=0.05,delay=0.02:300ms,reorder=0.1,drop=0.01,seed=7"
    /// (see the emulator crate's webhooks module).
    #[arg(
        long,
        default_value = "none",
        value_name = "SPEC",
        requires = "webhook_url"
    )]
    pub webhook_faults: WebhookFaults,
    /// The longest wait between two attempts of a failed notification (LivePerson: 5m).
    #[arg(
        long,
        default_value = "5m",
        value_name = "DURATION",
        requires = "webhook_url"
    )]
    pub webhook_max_backoff: Duration,
    /// How long a failed notification is retried before it is dropped (LivePerson: at most
    /// 3 days).
    #[arg(
        long,
        default_value = "3d",
        value_name = "DURATION",
        requires = "webhook_url"
    )]
    pub webhook_retention: Duration,
    /// Write the acknowledged messages, statuses and conversation changes to this file, one
    /// JSON object a line: the ground truth a listener's drops are checked against.
    #[arg(long, value_name = "FILE", requires = "webhook_url")]
    pub webhook_ledger: Option<std::path::PathBuf>,
    /// The signature's hash (LivePerson's default: sha1).
    #[arg(
        long,
        value_enum,
        default_value_t = SignatureHash::Sha1,
        requires = "webhook_url"
    )]
    pub webhook_algorithm: SignatureHash,
    /// The signature's encoding (LivePerson's default: base64).
    #[arg(
        long,
        value_enum,
        default_value_t = SignatureEncoding::Base64,
        requires = "webhook_url"
    )]
    pub webhook_encoding: SignatureEncoding,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignatureHash {
    Sha1,
    Sha256,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignatureEncoding {
    Base64,
    Hex,
}

impl WebhookArgs {
    /// True when a bounded run keeps stdout for its one summary line.
    pub fn summary_only_on_stdout(&self) -> bool {
        self.webhook_url.is_some() && self.webhook_conversations.is_some()
    }

    /// The sender's configuration for an emulator serving `emulator`; `None` without a URL.
    pub fn sender_config(&self, emulator: &EmulatorConfig) -> Result<Option<WebhookConfig>> {
        let Some(url) = &self.webhook_url else {
            return Ok(None);
        };
        let secret = self
            .webhook_secret
            .clone()
            .context("--webhook-url needs --webhook-secret (or LPDROP_EMULATOR_WEBHOOK_SECRET)")?;
        if let Some(rate) = self.webhook_rate
            && !(rate.is_finite() && rate > 0.0)
        {
            anyhow::bail!("--webhook-rate must be a positive number of events per second");
        }
        let mut config =
            WebhookConfig::new(url, secret, &self.webhook_client_id, &emulator.account_id);
        config.algorithm = match self.webhook_algorithm {
            SignatureHash::Sha1 => Algorithm::Sha1,
            SignatureHash::Sha256 => Algorithm::Sha256,
        };
        config.encoding = match self.webhook_encoding {
            SignatureEncoding::Base64 => Encoding::Base64,
            SignatureEncoding::Hex => Encoding::Hex,
        };
        config.first_index = self.webhook_first_index;
        config.conversations = self.webhook_conversations;
        config.rate = self.webhook_rate;
        config.concurrency = self.webhook_concurrency as usize;
        config.faults = self.webhook_faults.clone();
        config.max_backoff = self.webhook_max_backoff.get();
        config.initial_backoff = config.initial_backoff.min(config.max_backoff);
        config.retention = self.webhook_retention.get();
        config.ledger = self.webhook_ledger.clone();
        Ok(Some(config))
    }
}

/// Runs the sender beside the emulator's API: until all conversations are sent (bounded) or
/// until Ctrl-C. Without a sender, waits for Ctrl-C. Prints the report as one JSON line.
pub async fn run(dataset: Dataset, sender: Option<WebhookConfig>) -> Result<()> {
    let Some(config) = sender else {
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        return Ok(());
    };
    let (conversations, first, concurrency) =
        (config.conversations, config.first_index, config.concurrency);
    let faults = config.faults.to_string();
    let mut sender =
        WebhookSender::start(dataset, config).context("cannot start the webhook sender")?;
    tracing::info!(
        "sending webhooks: {} conversations from index {first}, {concurrency} at once, faults {faults}",
        conversations.map_or("endless".to_string(), |n| n.to_string()),
    );
    let mut progress = tokio::time::interval(std::time::Duration::from_secs(10));
    progress.tick().await;
    let report = loop {
        tokio::select! {
            done = sender.wait() => break done.context("webhook sender")?,
            interrupted = tokio::signal::ctrl_c() => {
                interrupted.context("waiting for Ctrl-C")?;
                break sender.stop().await;
            }
            _ = progress.tick() => {
                let r = sender.report();
                tracing::info!(
                    conversations = r.conversations,
                    notifications_acked = r.notifications_acked,
                    retries = r.retries,
                    expired = r.expired,
                    "webhooks sent so far"
                );
            }
        }
    };
    outln!(
        "{}",
        serde_json::to_string(&report).expect("a report serializes")
    );
    Ok(())
}
