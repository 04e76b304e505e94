//! Completing the Glue registrations left pending by uploaded jobs (`schedule
//! --glue-database`): what `catalog sync` does, from the jobs' recorded drops instead of a
//! listing of the whole prefix.

use anyhow::{Context, Result, bail};
use lpdrop_drop::{Destination, MANIFEST_NAME, Manifest, StoreSettings};
use lpdrop_jobs::Queue;

/// Pending registrations completed per call, at most: a scheduled run stays short, and the
/// next run does the rest.
pub const REGISTRATIONS_PER_RUN: u64 = 500;

/// What [`complete_registrations`] did.
#[derive(Debug, Default)]
pub struct Completed {
    pub registered: u64,
    /// Jobs whose registration (or manifest read) failed again, with why; they stay pending.
    pub still_pending: Vec<(i64, String)>,
}

/// Registers the drops of `account_id`'s uploaded jobs whose registration is pending in Glue
/// database `database`, and clears their marks. A registration that fails again stays pending
/// and is reported; it is no error. A manifest that is missing or unreadable as JSON is one:
/// the job's drop is not what the queue says.
pub async fn complete_registrations(
    queue: &Queue,
    account_id: &str,
    database: &str,
    settings: &StoreSettings,
    mapping: Option<&lpdrop_tables::ColumnMapping>,
) -> Result<Completed> {
    let mut done = Completed::default();
    for job in queue
        .catalog_pending_jobs(account_id, REGISTRATIONS_PER_RUN)
        .await?
    {
        let Some(root) = job.drop.as_ref().map(|d| d.root.clone()) else {
            continue;
        };
        let dest = Destination::parse(&job.spec.dest)?;
        let (store, _) = lpdrop_drop::open(&dest, settings).await?;
        let key = format!("{root}/{MANIFEST_NAME}");
        let manifest: Manifest = match store.get_bytes(&key).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a manifest", store.location(&key)))?,
            Ok(None) => bail!("job {}: {} is missing", job.id, store.location(&key)),
            Err(e) => {
                done.still_pending
                    .push((job.id, format!("cannot read its manifest ({e})")));
                continue;
            }
        };
        match lpdrop_catalog::register_or_pending(&settings.s3, database, &dest, &manifest, mapping)
            .await
        {
            lpdrop_catalog::Outcome::Registered(_) => {
                queue.catalog_registered(&[root]).await?;
                done.registered += 1;
            }
            lpdrop_catalog::Outcome::Pending { error, .. } => {
                done.still_pending.push((job.id, error));
            }
        }
    }
    Ok(done)
}
