//! From sealed spool segments to one committed drop, exactly once.
//!
//! A roll takes every sealed segment not yet published, in order. It is recorded in the state
//! before its drop is written; its rows' keys are claimed in the state right before the
//! manifest and marker (the commit fence), and the roll is marked done after the marker. On
//! start, a roll left `building` is settled: if its marker exists, it was committed; if not,
//! its keys are released and it is built again under a new drop id.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use lpdrop_drop::{ObjectStore, Prefix, SourceInfo};
use lpdrop_liveperson::window::fmt_ms;
use lpdrop_pipeline::{
    CommitFence, DropBuilder, DropPlan, DropReport, Fed, OutputSettings, PlannedDrop, Progress,
    RecordSource, api_name, run_drop_unless_empty, time_basis,
};
use lpdrop_tables::Source;
use lpdrop_tables::webhooks::RowKey;

use crate::spool::SegmentDir;
use crate::state::{Roll, State};

/// Where drops go and how they are written.
#[derive(Clone)]
pub struct Output {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Prefix,
    pub settings: OutputSettings,
}

/// `--refetch-closed`: conversations seen closing are re-read from the batch API (the record
/// of truth) by refetch jobs in this queue, into messaging drops at `dest`.
#[derive(Clone)]
pub struct Refetch {
    pub queue: Arc<lpdrop_jobs::Queue>,
    pub dest: String,
    pub max_attempts: u32,
}

impl std::fmt::Debug for Refetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refetch")
            .field("dest", &self.dest)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// The spooled notifications of a roll, as a record source of the pipeline.
struct SpooledSource {
    account_id: String,
    segments: SegmentDir,
    roll: Roll,
    state: Arc<Mutex<State>>,
    /// Keys of the rows this drop holds, to claim at the commit fence.
    claimed: Arc<Mutex<Vec<RowKey>>>,
    filters: serde_json::Value,
    refetch: Option<Refetch>,
}

impl RecordSource for SpooledSource {
    fn tables(&self) -> Source {
        Source::Webhooks
    }

    fn account_id(&self) -> &str {
        &self.account_id
    }

    fn label(&self) -> String {
        format!(
            "spool segments {}..={}",
            self.roll.first_segment, self.roll.last_segment
        )
    }

    async fn feed(self, builder: DropBuilder, _progress: Arc<dyn Progress>) -> Result<Fed> {
        let (account_id, refetch) = (self.account_id.clone(), self.refetch.clone());
        let (fed, closed) = tokio::task::spawn_blocking(move || self.feed_blocking(builder))
            .await
            .context("the drop builder thread panicked")??;
        // Remembered before the drop is committed: a crash in between re-reads them twice
        // at worst, never loses them.
        if let Some(refetch) = refetch
            && !closed.is_empty()
        {
            refetch
                .queue
                .remember_conversations(&account_id, Source::Messaging, &closed)
                .await
                .context("recording closed conversations for their refetch in the queue")?;
        }
        Ok(fed)
    }
}

impl SpooledSource {
    /// The builder fed with every notification of the roll, and the conversations seen closing.
    fn feed_blocking(self, mut builder: DropBuilder) -> Result<(Fed, Vec<String>)> {
        let state = self.state.lock().expect("state lock");
        let mut in_roll: HashSet<RowKey> = HashSet::new();
        let mut claimed = Vec::new();
        let mut lookup_error = None;
        let mut received = None::<(i64, i64)>;
        let mut closed = Vec::new();
        for segment in self.roll.first_segment..=self.roll.last_segment {
            let records = match self.segments.read(segment) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("reading spool segment {segment}"));
                }
            };
            for (i, record) in records.iter().enumerate() {
                let origin = format!("spool segment {segment} record {i}");
                let mut is_new = |key: RowKey| {
                    if in_roll.contains(&key) {
                        return false;
                    }
                    match state.seen(&key) {
                        Ok(true) => false,
                        Ok(false) => {
                            in_roll.insert(key);
                            claimed.push(key);
                            true
                        }
                        Err(e) => {
                            lookup_error.get_or_insert(e);
                            false
                        }
                    }
                };
                let appended = builder.webhook_notification(
                    record.received_ms,
                    &record.body,
                    &origin,
                    &mut is_new,
                )?;
                closed.extend(appended.closed);
                if let Some(e) = lookup_error.take() {
                    return Err(e).context("reading the listener's de-duplication state");
                }
                let at = record.received_ms;
                received = Some(received.map_or((at, at), |(lo, hi)| (lo.min(at), hi.max(at))));
            }
        }
        *self.claimed.lock().expect("claimed lock") = claimed;
        // The window is the receive times of what the drop holds: half-open, so one past the
        // last.
        let (from, to) = builder
            .start_range
            .or(received)
            .unwrap_or((self.roll.created_at_ms, self.roll.created_at_ms));
        let source = SourceInfo {
            account_id: self.account_id,
            api: api_name(Source::Webhooks).into(),
            window_from: fmt_ms(from),
            window_to: fmt_ms(to + 1),
            time_basis: time_basis(Source::Webhooks).into(),
            filters: self.filters,
            conversations: 0,
            open_conversations: 0,
        };
        Ok((Fed { builder, source }, closed))
    }
}

/// What every roll of a listener shares.
pub(crate) struct Publishing {
    pub account_id: String,
    pub segments: SegmentDir,
    pub state: Arc<Mutex<State>>,
    pub output: Output,
    /// The manifest's `source.filters`.
    pub filters: serde_json::Value,
    pub refetch: Option<Refetch>,
}

/// Publishes a roll: `None` when it held nothing new (only redeliveries).
pub(crate) async fn publish_roll(
    roll: &Roll,
    with: &Publishing,
    progress: Arc<dyn Progress>,
) -> Result<Option<DropReport>> {
    let claimed = Arc::new(Mutex::new(Vec::new()));
    let (state, output) = (&with.state, &with.output);
    let source = SpooledSource {
        account_id: with.account_id.clone(),
        segments: with.segments.clone(),
        roll: roll.clone(),
        state: state.clone(),
        claimed: claimed.clone(),
        filters: with.filters.clone(),
        refetch: with.refetch.clone(),
    };
    let fence: CommitFence = {
        let (state, roll) = (state.clone(), roll.clone());
        Arc::new(move || {
            let keys = std::mem::take(&mut *claimed.lock().expect("claimed lock"));
            if keys.is_empty() {
                return Ok(());
            }
            let now = chrono::Utc::now().timestamp_millis();
            state
                .lock()
                .expect("state lock")
                .claim(&roll, &keys, now)
                .map_err(|e| format!("cannot record the drop's rows as published: {e}"))
        })
    };
    let plan = DropPlan {
        drop: planned(roll),
        prefix: output.prefix.clone(),
        job: None,
        output: output.settings.clone(),
    };
    run_drop_unless_empty(source, plan, output.store.clone(), Some(fence), progress).await
}

/// The drop a roll publishes: its id and creation time decide its folder.
pub(crate) fn planned(roll: &Roll) -> PlannedDrop {
    PlannedDrop {
        id: roll.drop_id,
        created_at: chrono::DateTime::from_timestamp_millis(roll.created_at_ms)
            .expect("a creation time in range"),
    }
}

/// A new roll over `first..=last`, created now.
pub(crate) fn new_roll(first_segment: u64, last_segment: u64) -> Roll {
    let drop = PlannedDrop::new();
    Roll {
        drop_id: drop.id,
        created_at_ms: drop.created_at.timestamp_millis(),
        first_segment,
        last_segment,
    }
}
