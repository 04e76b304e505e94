//! From sealed spool segments to one committed drop, exactly once.
//!
//! A roll takes every sealed segment not yet published, in order. It is recorded in the state
//! before its drop is written; its rows' keys are claimed in the state right before the
//! manifest and marker (the commit fence), and the roll is marked done after the marker. On
//! start, a roll left `building` is settled: if its marker exists, it was committed; if not,
//! its keys are released and it is built again under a new drop id.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
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

use lpdrop_metrics::WEBHOOK_FILTERED;

use crate::skills::{Decisions, SkillFilter, Verdict};
use crate::spool::{self, SegmentDir, Spooled};
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
    /// Notifications earlier rolls held (`--skill`), read before the segments.
    held: Vec<PathBuf>,
    state: Arc<Mutex<State>>,
    skills: Option<SkillFilter>,
    outcome: Arc<Mutex<RollOutcome>>,
    filters: serde_json::Value,
    refetch: Option<Refetch>,
}

/// What a roll's feed leaves for its commit and its end.
#[derive(Default)]
pub(crate) struct RollOutcome {
    /// Keys of the rows the drop holds, to claim at the commit fence.
    pub claimed: Vec<RowKey>,
    /// Notifications read (held ones included).
    pub read: u64,
    /// Notifications held again for the next roll (`--skill`).
    pub held: u64,
}

/// Where a roll writes the notifications it holds for the next one.
pub(crate) fn held_path(spool_held: &Path, roll: &Roll) -> PathBuf {
    spool_held.join(format!("{}.seg", roll.drop_id))
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
    /// Every notification of the roll: held ones first, then the segments, each with its
    /// name in errors and quarantine.
    fn inputs(&self) -> Result<Vec<(String, Vec<Spooled>)>> {
        let mut inputs = Vec::new();
        for path in &self.held {
            let records = spool::read_file(path)
                .with_context(|| format!("reading held notifications {}", path.display()))?;
            inputs.push((format!("held {}", path.display()), records));
        }
        for segment in self.roll.first_segment..=self.roll.last_segment {
            match self.segments.read(segment) {
                Ok(records) => inputs.push((format!("spool segment {segment}"), records)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("reading spool segment {segment}"));
                }
            }
        }
        Ok(inputs)
    }

    /// The builder fed with every notification of the roll, and the conversations seen closing.
    fn feed_blocking(self, mut builder: DropBuilder) -> Result<(Fed, Vec<String>)> {
        let inputs = self.inputs()?;
        let mut state = self.state.lock().expect("state lock");
        let now_ms = chrono::Utc::now().timestamp_millis();
        // With --skill, what is known of each conversation, learnt from the whole roll first:
        // a conversation's skill may come after its first messages.
        let mut decisions = match &self.skills {
            Some(filter) => {
                let mut d = Decisions::new(state.skill_decisions()?);
                for (_, records) in &inputs {
                    for record in records {
                        d.learn_from(filter, &record.body);
                    }
                }
                state.record_decisions(&d.learnt, now_ms)?;
                Some(d)
            }
            None => None,
        };
        let mut in_roll: HashSet<RowKey> = HashSet::new();
        let mut claimed = Vec::new();
        let mut lookup_error = None;
        let mut received = None::<(i64, i64)>;
        let mut closed = Vec::new();
        let mut held = Vec::new();
        let mut read = 0;
        for (name, records) in &inputs {
            for (i, record) in records.iter().enumerate() {
                read += 1;
                if let (Some(filter), Some(d)) = (&self.skills, decisions.as_mut()) {
                    match d.verdict(filter, &record.body, record.received_ms, now_ms) {
                        Verdict::Publish => {}
                        Verdict::Hold => {
                            held.push(record);
                            continue;
                        }
                        Verdict::Discard => {
                            WEBHOOK_FILTERED.inc(&["other_skill"]);
                            continue;
                        }
                        Verdict::Expired => {
                            WEBHOOK_FILTERED.inc(&["skill_unknown"]);
                            continue;
                        }
                    }
                }
                let origin = format!("{name} record {i}");
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
        // Held notifications are durable before the roll can finish, so the segments they
        // came from may then be removed.
        if !held.is_empty() {
            let path = held_path(&self.segments.held_dir(), &self.roll);
            spool::write_file(&path, &held)
                .with_context(|| format!("writing held notifications {}", path.display()))?;
        }
        *self.outcome.lock().expect("outcome lock") = RollOutcome {
            claimed,
            read,
            held: held.len() as u64,
        };
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
    pub skills: Option<SkillFilter>,
}

/// Publishes a roll, taking the held notifications in `held` too: the drop (`None` when the
/// roll held nothing new, only redeliveries) and what the roll read and held.
pub(crate) async fn publish_roll(
    roll: &Roll,
    held: Vec<PathBuf>,
    with: &Publishing,
    progress: Arc<dyn Progress>,
) -> Result<(Option<DropReport>, Arc<Mutex<RollOutcome>>)> {
    let outcome = Arc::new(Mutex::new(RollOutcome::default()));
    let (state, output) = (&with.state, &with.output);
    let source = SpooledSource {
        account_id: with.account_id.clone(),
        segments: with.segments.clone(),
        roll: roll.clone(),
        held,
        state: state.clone(),
        skills: with.skills.clone(),
        outcome: outcome.clone(),
        filters: with.filters.clone(),
        refetch: with.refetch.clone(),
    };
    let fence: CommitFence = {
        let (state, roll, outcome) = (state.clone(), roll.clone(), outcome.clone());
        Arc::new(move || {
            let keys = std::mem::take(&mut outcome.lock().expect("outcome lock").claimed);
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
    let report =
        run_drop_unless_empty(source, plan, output.store.clone(), Some(fence), progress).await?;
    Ok((report, outcome))
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
