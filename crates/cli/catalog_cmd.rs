//! The Glue Data Catalog: `--glue-database` on the commands that commit drops to S3 (each
//! committed drop is registered right after its `upload.complete`), and `lpdrop catalog sync`
//! for drops committed without it or whose registration is pending.

use anyhow::{Result, bail};
use lpdrop_catalog::{Catalog, Outcome};
use lpdrop_drop::{Destination, open};
use lpdrop_tables::ColumnMapping;

use crate::out::outln;
use crate::s3_args::S3Args;

/// Register committed drops in the AWS Glue Data Catalog.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlueArgs {
    /// Register each committed drop in this AWS Glue database (created when absent), so that
    /// Athena can query it at once: its tables, from the definitions `lpdrop schema --format
    /// athena` prints, and one partition per table. Same credentials and role as S3. A failed
    /// registration never fails the drop: `lpdrop catalog sync` completes it.
    #[arg(
        long = "glue-database",
        env = "LPDROP_GLUE_DATABASE",
        value_name = "NAME"
    )]
    pub glue_database: Option<String>,
}

impl GlueArgs {
    /// The database, checked against the destination: S3 only.
    pub fn check(&self, dest: &Destination) -> Result<Option<&str>> {
        let Some(db) = self.glue_database.as_deref().filter(|d| !d.is_empty()) else {
            return Ok(None);
        };
        lpdrop_catalog::check_database_name(db).map_err(anyhow::Error::msg)?;
        if !matches!(dest, Destination::S3(_)) {
            bail!("--glue-database needs an s3:// destination: Athena reads drops from S3");
        }
        Ok(Some(db))
    }
}

/// The catalog lines of a one-shot command's summary; a pending registration is a warning on
/// stderr too, and the command still exits 0: the drop is committed.
pub fn print_outcome(database: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Registered(done) => outln!(
            "  catalog       registered in Glue database {database}: {} partitions added, {} already there{}{}",
            done.partitions_created,
            done.partitions_existing,
            if done.tables_created.is_empty() {
                String::new()
            } else {
                format!(", {} tables created", done.tables_created.len())
            },
            if done.columns_added.is_empty() {
                String::new()
            } else {
                format!(", columns added: {}", done.columns_added.join(", "))
            },
        ),
        Outcome::Pending { error, retry } => {
            outln!("  catalog       registration pending (the drop is committed): {error}");
            outln!("                complete it with: {retry}");
            tracing::warn!(
                "the drop is committed, but its Glue catalog registration is pending: {error}; \
                 complete it with: {retry}"
            );
        }
    }
}

/// `lpdrop catalog ...`.
#[derive(clap::Subcommand)]
pub enum CatalogCommand {
    /// Register every committed drop under an S3 prefix that is not registered yet in a Glue
    /// database (idempotent; drops without upload.complete are skipped).
    ///
    /// Example: lpdrop catalog sync s3://bucket/folder --glue-database lpdrop --dry-run
    Sync {
        /// s3://bucket/prefix that drops are published under.
        #[arg(value_name = "PREFIX")]
        prefix: String,
        /// The Glue database (created when absent).
        #[arg(
            long = "glue-database",
            env = "LPDROP_GLUE_DATABASE",
            value_name = "NAME",
            required = true
        )]
        glue_database: String,
        /// List what would be registered without registering it.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        s3: S3Args,
    },
}

pub async fn run(
    queue_url: &str,
    command: CatalogCommand,
    mapping: Option<&ColumnMapping>,
) -> Result<()> {
    let CatalogCommand::Sync {
        prefix,
        glue_database,
        dry_run,
        s3,
    } = command;
    let dest = Destination::parse(&prefix)?;
    let Destination::S3(location) = &dest else {
        bail!("catalog sync needs an s3:// prefix: Athena reads drops from S3");
    };
    lpdrop_catalog::check_database_name(&glue_database).map_err(anyhow::Error::msg)?;
    let (store, key_prefix) = open(&dest, &s3.settings()).await?;
    let catalog = Catalog::connect(&s3.settings().s3, &glue_database).await?;
    let report = lpdrop_catalog::sync(
        &catalog,
        store.as_ref(),
        &location.bucket,
        &key_prefix,
        mapping,
        dry_run,
    )
    .await?;
    let verb = if dry_run {
        "would register"
    } else {
        "registered"
    };
    for root in &report.registered {
        outln!("{verb} {}", store.location(root));
    }
    for root in &report.uncommitted {
        outln!(
            "skipped uncommitted drop {} (no upload.complete)",
            store.location(root)
        );
    }
    for (root, e) in &report.failed {
        outln!("failed {}: {e}", store.location(root));
    }
    outln!(
        "{} drops {verb} in Glue database {glue_database}, {} registered already, {} uncommitted skipped, {} failed",
        report.registered.len(),
        report.already.len(),
        report.uncommitted.len(),
        report.failed.len()
    );
    // A dry run changes nothing, not even a queue's schema version: it opens no queue.
    let queue = if dry_run {
        None
    } else {
        lpdrop_jobs::Queue::open_existing(queue_url)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("cannot open the job queue to clear pending registrations: {e}");
                None
            })
    };
    if let Some(queue) = queue {
        // Jobs whose registration was pending and whose drop is now registered: done.
        let roots: Vec<String> = report
            .registered
            .iter()
            .chain(&report.already)
            .cloned()
            .collect();
        let cleared = queue.catalog_registered(&roots).await?;
        if cleared > 0 {
            outln!("{cleared} jobs' pending catalog registrations completed");
        }
    }
    if let Some((_, e)) = report.failed.first() {
        bail!(
            "{} drop(s) could not be registered: {e}",
            report.failed.len()
        );
    }
    Ok(())
}
