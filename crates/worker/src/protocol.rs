//! The exactly-once job protocol: the drop is decided and recorded on the job before the first
//! byte is written; a later attempt reuses it, and only marks the job uploaded when its
//! `upload.complete` exists already, else clears what an earlier attempt left and writes the
//! drop again. A job's error is retried or not by its cause's own retryability.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use lpdrop_drop::{Destination, JobRef, Manifest, open_to_write};
use lpdrop_jobs::{Counts, DropRecord, Lease, Queue};
use lpdrop_liveperson::{SearchFilters, Window};
use lpdrop_pipeline::{
    AccountConfig, ById, CommitFence, DropPlan, DropReport, NoProgress, PlannedDrop, Search,
    run_drop,
};
use lpdrop_tables::Source;

use crate::Settings;
use crate::job::{Done, JobError};

/// Counts of a committed drop, from its manifest.
fn counts_of(manifest: &Manifest) -> Counts {
    Counts {
        conversations: manifest.source.conversations,
        open_conversations: manifest.source.open_conversations,
        rows: manifest.totals.rows,
        files: manifest.totals.files,
        bytes: manifest.totals.bytes,
    }
}

/// Conversations one refetch job re-reads at most (10 by-id calls); more wait for the next.
const REFETCH_BATCH: u32 = 1000;

pub(crate) async fn execute(
    queue: &Queue,
    settings: &Settings,
    lease: &Lease,
    may_commit: Arc<AtomicBool>,
) -> Result<Done, JobError> {
    let job = &lease.job;
    let dest = Destination::parse(&job.spec.dest)
        .map_err(|e| JobError::Permanent(format!("destination {}: {e:#}", job.spec.dest)))?;
    let window = Window::try_new(job.spec.window_from_ms, job.spec.window_to_ms)
        .map_err(|e| JobError::Permanent(e.to_string()))?;

    // The drop: decided once, recorded before anything is written, reused by later attempts.
    let planned = match &job.drop {
        Some(d) => planned_from(d)?,
        None => PlannedDrop::new(),
    };
    let record = DropRecord {
        id: planned.id.to_string(),
        created_at_ms: planned.created_at.timestamp_millis(),
        root: planned.layout(dest.prefix()).root(),
    };
    let record = queue.record_drop(lease, &record).await?;
    let planned = planned_from(&record)?;

    let (store, _) = open_to_write(&dest, &settings.store)
        .await
        .map_err(JobError::Retryable)?;
    let marker_key = format!("{}/{}", record.root, lpdrop_drop::MARKER_NAME);
    let manifest_key = format!("{}/{}", record.root, lpdrop_drop::MANIFEST_NAME);
    let marker = store
        .get_bytes(&marker_key)
        .await
        .context("checking for an earlier commit")
        .map_err(JobError::Retryable)?;
    if marker.is_some() {
        // An earlier attempt committed the drop (and died before saying so): done.
        let counts = match store.get_bytes(&manifest_key).await {
            Ok(Some(bytes)) => serde_json::from_slice::<Manifest>(&bytes)
                .ok()
                .map(|m| counts_of(&m)),
            _ => None,
        };
        queue.uploaded(lease, counts.as_ref()).await?;
        // The attempt that committed may have died before registering: registering again
        // is harmless (every step is idempotent).
        if settings.glue_database.is_some()
            && let Ok(Some(bytes)) = store.get_bytes(&manifest_key).await
            && let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes)
        {
            register(queue, settings, job.id, &dest, &manifest).await;
        }
        return Ok(Done {
            counts,
            location: store.location(&record.root),
            already_committed: true,
        });
    }
    // What an earlier attempt left there is not trusted (no marker): start the drop afresh.
    let leftovers = store
        .list(&record.root)
        .await
        .context("listing an earlier attempt's leftovers")
        .map_err(JobError::Retryable)?;
    if !leftovers.is_empty() {
        let keys: Vec<String> = leftovers.into_iter().map(|o| o.key).collect();
        store
            .delete(&keys)
            .await
            .context("removing an earlier attempt's leftovers")
            .map_err(JobError::Retryable)?;
        tracing::info!(
            "job {}: removed {} objects an earlier attempt left in {}",
            job.id,
            keys.len(),
            store.location(&record.root)
        );
    }

    // Late data: a refetch job re-reads the conversations earlier jobs saw open. It takes them
    // under its own name, so a retried attempt gets the same ones back.
    let refetch_ids = if job.spec.origin == lpdrop_jobs::REFETCH_ORIGIN {
        let ids = queue
            .take_open_conversations(
                &job.spec.account_id,
                job.spec.source,
                REFETCH_BATCH,
                &format!("job:{}", job.id),
            )
            .await?;
        tracing::info!(
            "job {}: re-reading {} conversations that were open when first read",
            job.id,
            ids.len()
        );
        Some(ids)
    } else {
        None
    };

    let fence: CommitFence = Arc::new(move || {
        if may_commit.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("this worker no longer holds the job's lease".to_string())
        }
    });
    let report = run_job_drop(settings, lease, window, refetch_ids, &dest, planned, fence)
        .await
        .map_err(by_retryability)?;
    // The drop is committed: count what it holds.
    for table in &report.drop.manifest.tables {
        let bytes: u64 = table.files.iter().map(|f| f.bytes).sum();
        lpdrop_metrics::ROWS_WRITTEN.add(&[&table.name], table.rows as f64);
        lpdrop_metrics::BYTES_WRITTEN.add(&[&table.name], bytes as f64);
    }
    let counts = Counts {
        conversations: report.stats.conversations,
        open_conversations: report.stats.open_conversations,
        ..counts_of(&report.drop.manifest)
    };
    // Conversations still OPEN are remembered, so that a later job fetches them again once closed.
    if !report.open_conversation_ids.is_empty() {
        queue
            .add_open_conversations(job.id, &report.open_conversation_ids)
            .await
            .context("recording the job's open conversations")
            .map_err(JobError::Retryable)?;
    }
    queue.finish(lease, &counts).await?;

    // Confirm the commit where readers look for it before calling the job done.
    let committed = store
        .get_bytes(&marker_key)
        .await
        .context("confirming upload.complete")
        .map_err(JobError::Retryable)?
        .is_some();
    if !committed {
        return Err(JobError::Retryable(anyhow::anyhow!(
            "the sync reported a commit, but {} is missing",
            store.location(&marker_key)
        )));
    }
    queue.uploaded(lease, None).await?;
    register(queue, settings, job.id, &dest, &report.drop.manifest).await;
    Ok(Done {
        counts: Some(counts),
        location: report.drop.location,
        already_committed: false,
    })
}

/// Registers the job's committed drop in the Glue catalog (`--glue-database`, S3 only). The
/// job is uploaded already and stays so: a failure is recorded on the job as a pending
/// registration (`jobs show`, `jobs list --json`, a metric) for `lpdrop catalog sync`.
async fn register(
    queue: &Queue,
    settings: &Settings,
    job_id: i64,
    dest: &Destination,
    manifest: &Manifest,
) {
    let (Some(database), Destination::S3(_)) = (&settings.glue_database, dest) else {
        return;
    };
    let outcome = lpdrop_catalog::register_or_pending(
        &settings.store.s3,
        database,
        dest,
        manifest,
        settings.output.column_mapping.as_deref(),
    )
    .await;
    let pending = match outcome {
        lpdrop_catalog::Outcome::Registered(done) => {
            tracing::info!(
                "job {job_id}: drop registered in Glue database {database} ({} partitions added)",
                done.partitions_created
            );
            None
        }
        lpdrop_catalog::Outcome::Pending { error, retry } => {
            tracing::warn!(
                "job {job_id}: the drop is committed, but its Glue catalog registration is \
                 pending: {error}; complete it with: {retry}"
            );
            Some(error)
        }
    };
    if let Err(e) = queue.set_catalog_pending(job_id, pending.as_deref()).await {
        tracing::warn!("job {job_id}: cannot record the catalog registration on the job: {e}");
    }
}

/// A job's error by its cause's own retryability: a request the LivePerson API refused (a
/// rejected key, a missing permission) fails the same way on every attempt, so the job ends
/// dead at once, with what to check; anything else may pass on a later attempt.
fn by_retryability(e: anyhow::Error) -> JobError {
    let refused = e
        .chain()
        .filter_map(|c| c.downcast_ref::<lpdrop_liveperson::client::Error>())
        .find(|api| api.is_permanent());
    match refused {
        Some(api) => {
            let status = api
                .status()
                .map_or_else(String::new, |s| format!(" (HTTP {s})"));
            let hint = api.hint().map_or_else(String::new, |h| format!(": {h}"));
            JobError::Permanent(format!(
                "{e:#}; not retried: the API refused the request{status}{hint}"
            ))
        }
        None => JobError::Retryable(e),
    }
}

/// The job's drop: its source read into the planned drop on the job's destination.
async fn run_job_drop(
    settings: &Settings,
    lease: &Lease,
    window: Window,
    refetch_ids: Option<Vec<String>>,
    dest: &Destination,
    planned: PlannedDrop,
    fence: CommitFence,
) -> Result<DropReport> {
    let job = &lease.job;
    let tables = job.spec.source;
    let client = settings
        .clients
        .get(&settings.client, &job.spec.account_id)
        .await
        .context("cannot reach the LivePerson Domain API")?;
    let (store, _) = open_to_write(dest, &settings.store).await?;
    let plan = DropPlan {
        drop: planned,
        prefix: dest.prefix(),
        job: Some(JobRef {
            id: job.id.to_string(),
            attempt: lease.attempt,
        }),
        output: settings.output.clone(),
    };
    let filters = SearchFilters {
        skill_ids: job.spec.skill_ids.clone(),
        status: Vec::new(),
    };
    let progress = Arc::new(NoProgress);
    let fence = Some(fence);
    match (refetch_ids, tables) {
        (Some(ids), Source::Messaging) => {
            let source = ById {
                client,
                ids,
                window,
            };
            run_drop(source, plan, store, fence, progress).await
        }
        (Some(_), other) => anyhow::bail!(
            "only messaging conversations can be re-read by id, not {}",
            lpdrop_pipeline::api_name(other)
        ),
        (None, Source::Dimensions) => {
            let source = AccountConfig {
                client,
                window,
                filters,
            };
            run_drop(source, plan, store, fence, progress).await
        }
        (None, Source::Webhooks) => {
            anyhow::bail!("webhooks are received by `lpdrop listen`; a job cannot fetch them")
        }
        (None, Source::Messaging | Source::Chat) => {
            let source = Search::new(client, tables, window, filters);
            run_drop(source, plan, store, fence, progress).await
        }
    }
}

fn planned_from(d: &DropRecord) -> Result<PlannedDrop, JobError> {
    let id = uuid::Uuid::parse_str(&d.id)
        .map_err(|e| JobError::Permanent(format!("recorded drop id {:?}: {e}", d.id)))?;
    let created_at = chrono::DateTime::from_timestamp_millis(d.created_at_ms).ok_or_else(|| {
        JobError::Permanent(format!("recorded drop time {} is invalid", d.created_at_ms))
    })?;
    Ok(PlannedDrop { id, created_at })
}
