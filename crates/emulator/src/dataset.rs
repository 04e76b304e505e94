//! The synthetic data set: conversation start times, ids, and the cheap per-conversation
//! properties that search filters look at.
//!
//! Nothing is stored. Conversation `i` starts in slot `i` of a fixed grid (`spacing` ms wide,
//! starting at [`ORIGIN_MS`]) at a hash-derived offset inside its slot. Because every slot
//! holds exactly one conversation and slots never overlap, start times are strictly
//! increasing and the conversations of any time window are found in O(1) by arithmetic.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::EmulatorConfig;
use crate::catalog::{AGENTS, SKILLS, TOPICS, TRIAGE_BOT, UNASSIGNED_ID};
use crate::rng::{Rng, key, mix};

/// 2020-01-01T00:00:00Z: no conversation starts before it.
pub const ORIGIN_MS: i64 = 1_577_836_800_000;

const DAY_MS: i64 = 86_400_000;

// Independent hash streams per concern (see `rng::key`).
const STREAM_JITTER: u64 = 1;
const STREAM_ID: u64 = 2;
const STREAM_SKELETON: u64 = 3;
pub(crate) const STREAM_DETAIL: u64 = 4;
const STREAM_FEISTEL: u64 = 5;

/// The synthetic data set. Record `i` is computed on demand from `(seed, i)`: no storage, no
/// caching, so a million conversations cost no memory, and the same `(seed, per_day, i)`
/// always gives byte-identical JSON.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub(crate) seed: u64,
    pub(crate) spacing: i64,
    /// Width of a chat's slot on the Engagement History grid (see `chat.rs`).
    pub(crate) chat_spacing: i64,
    pub(crate) account_id: String,
    /// Set once the conversations that were open have closed (see [`Dataset::close_open`]);
    /// shared by the clones a server hands to its requests.
    pub(crate) open_closed: Arc<AtomicBool>,
}

/// The properties of a conversation that search filters need, drawn from their own hash
/// stream so that filtering never builds a full record.
#[derive(Debug, Clone)]
pub(crate) struct Skeleton {
    pub open: bool,
    /// Index into [`TOPICS`].
    pub topic: usize,
    /// Who handled the conversation, in order: one segment per assignment, 1–3 of them.
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    /// Index into [`AGENTS`].
    pub agent: usize,
    /// Index into [`SKILLS`]; `None` is LivePerson's "Unassigned" (-1) skill.
    pub skill: Option<usize>,
}

impl Skeleton {
    pub(crate) fn latest(&self) -> Segment {
        *self.segments.last().expect("at least one segment")
    }

    pub(crate) fn skill_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.segments
            .iter()
            .map(|s| s.skill.map_or(UNASSIGNED_ID, |k| SKILLS[k].id))
    }

    pub(crate) fn agent_ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.segments.iter().map(|s| AGENTS[s.agent].id)
    }
}

impl Dataset {
    pub fn new(config: &EmulatorConfig) -> Self {
        // per_day above the number of ms in a day cannot be honoured with strictly increasing
        // millisecond start times; one conversation per ms is the densest grid there is.
        let per_day = i64::from(config.per_day.max(1));
        let chats_per_day = i64::from(config.chats_per_day.max(1));
        Dataset {
            seed: config.seed,
            spacing: (DAY_MS / per_day).max(1),
            chat_spacing: (DAY_MS / chats_per_day).max(1),
            account_id: config.account_id.clone(),
            open_closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Late data: every conversation that was still open ends now. From here on they are
    /// served closed, in their final state (closing messages, end time, surveys), which is
    /// what a later fetch by id must deliver. Nothing else in the data set changes.
    pub fn close_open(&self) {
        self.open_closed.store(true, Ordering::SeqCst);
    }

    /// True once [`Dataset::close_open`] was called.
    pub fn open_have_closed(&self) -> bool {
        self.open_closed.load(Ordering::SeqCst)
    }

    /// Epoch-ms start time of conversation `index` (strictly increasing in index).
    pub fn start_time_ms(&self, index: u64) -> i64 {
        let jitter = (key(self.seed, index, STREAM_JITTER) % self.spacing as u64) as i64;
        // Saturating: absurd indices must not panic a debug build; real ones never get near.
        ORIGIN_MS
            .saturating_add(
                i64::try_from(index)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(self.spacing),
            )
            .saturating_add(jitter)
    }

    /// Indices whose start time lies in the inclusive range `[from_ms, to_ms]`, ascending.
    pub fn index_range(&self, from_ms: i64, to_ms: i64) -> Range<u64> {
        if to_ms < from_ms || to_ms < ORIGIN_MS {
            return 0..0;
        }
        // Slot `i` covers [ORIGIN + i*spacing, ORIGIN + (i+1)*spacing), and conversation `i`
        // starts inside slot `i`, so only the slots holding the two bounds need a look.
        let slot = |ms: i64| ((ms - ORIGIN_MS).max(0) / self.spacing) as u64;
        let mut first = slot(from_ms);
        if self.start_time_ms(first) < from_ms {
            first += 1;
        }
        let last = slot(to_ms);
        let end = if self.start_time_ms(last) <= to_ms {
            last + 1
        } else {
            last
        };
        first..end.max(first)
    }

    /// The conversation id of `index`: UUID v4 format. The first 74 random bits come from the
    /// hash; the last 48 bits are a keyed permutation of the index, so that an id can be
    /// mapped back to its record (get-by-id) without any storage.
    pub fn conversation_id(&self, index: u64) -> String {
        let h = key(self.seed, index, STREAM_ID);
        let h2 = mix(h);
        let tail = self.feistel(index & MASK48, false);
        uuid_string(h, h2, tail)
    }

    /// The index of a conversation id produced by [`Dataset::conversation_id`], or `None`
    /// for any other string.
    pub fn index_of(&self, conversation_id: &str) -> Option<u64> {
        let id = conversation_id.to_ascii_lowercase();
        if id.len() != 36 {
            return None;
        }
        let tail = u64::from_str_radix(id.get(24..)?, 16).ok()?;
        let index = self.feistel(tail, true);
        (self.conversation_id(index) == id).then_some(index)
    }

    /// A secondary UUID tied to a conversation (consumer id, survey dialog id...).
    pub(crate) fn derived_uuid(&self, index: u64, salt: u64) -> String {
        let h = key(
            self.seed ^ salt.wrapping_mul(0xA24B_AED4_963E_E407),
            index,
            STREAM_ID,
        );
        let h2 = mix(h);
        uuid_string(h, h2, mix(h2) & MASK48)
    }

    /// Four-round Feistel network over 48 bits: a keyed bijection, trivially inverted.
    fn feistel(&self, value: u64, inverse: bool) -> u64 {
        let round_key = |r: u64, half: u64| key(self.seed, half, STREAM_FEISTEL + r) & MASK24;
        let (mut left, mut right) = (value >> 24, value & MASK24);
        if !inverse {
            for r in 0..4 {
                (left, right) = (right, left ^ round_key(r, right));
            }
        } else {
            for r in (0..4).rev() {
                (left, right) = (right ^ round_key(r, left), left);
            }
        }
        (left << 24) | right
    }

    /// The cheap, filterable properties of conversation `index`.
    pub(crate) fn skeleton(&self, index: u64) -> Skeleton {
        let mut r = Rng::new(key(self.seed, index, STREAM_SKELETON));
        // Drawn either way, so the rest of the skeleton does not depend on the switch.
        let open = r.chance(50) && !self.open_have_closed();
        let topic = r.below(TOPICS.len() as u64) as usize;
        let mut transfers = r.weighted(&[55, 30, 15]);
        let bot_first = r.chance(300);
        // The triage bot resolves some conversations alone but hands most over to a skill.
        if bot_first && transfers == 0 && r.chance(600) {
            transfers = 1;
        }
        let mut segments: Vec<Segment> = Vec::with_capacity(transfers + 1);
        for k in 0..=transfers {
            if k == 0 && bot_first {
                segments.push(Segment {
                    agent: TRIAGE_BOT,
                    skill: None,
                });
                continue;
            }
            let previous = segments.last().copied();
            let skill = match previous {
                // The first real assignment goes to the topic's skill...
                None
                | Some(Segment {
                    skill: None,
                    agent: _,
                }) => TOPICS[topic].skill,
                // ...and a later transfer either stays on that skill or moves to another one.
                Some(Segment {
                    skill: Some(s),
                    agent: _,
                }) => {
                    if r.chance(500) {
                        s
                    } else {
                        (s + 1 + r.below(SKILLS.len() as u64 - 1) as usize) % SKILLS.len()
                    }
                }
            };
            let candidates: Vec<usize> = AGENTS
                .iter()
                .enumerate()
                .filter(|(i, a)| a.skills.contains(&skill) && Some(*i) != previous.map(|p| p.agent))
                .map(|(i, _)| i)
                .collect();
            segments.push(Segment {
                agent: *r.pick(&candidates),
                skill: Some(skill),
            });
        }
        Skeleton {
            open,
            topic,
            segments,
        }
    }
}

const MASK24: u64 = (1 << 24) - 1;
const MASK48: u64 = (1 << 48) - 1;

/// Formats 74 random bits plus a 48-bit tail as a version-4, RFC 4122 variant UUID.
fn uuid_string(a: u64, b: u64, tail: u64) -> String {
    let time_low = a >> 32;
    let time_mid = (a >> 16) & 0xFFFF;
    let version_hi = 0x4000 | (a & 0x0FFF);
    let variant_seq = 0x8000 | ((b >> 48) & 0x3FFF);
    format!("{time_low:08x}-{time_mid:04x}-{version_hi:04x}-{variant_seq:04x}-{tail:012x}")
}

/// `"yyyy-MM-dd HH:mm:ss.SSS+0000"`, LivePerson's string form of an epoch-ms time.
pub(crate) fn lp_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f+0000").to_string(),
        None => "undefined".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(seed: u64, per_day: u32) -> Dataset {
        Dataset::new(&EmulatorConfig {
            seed,
            per_day,
            ..EmulatorConfig::default()
        })
    }

    #[test]
    fn start_times_are_strictly_increasing_and_after_origin() {
        for per_day in [1, 7, 2000, 86_400_000, u32::MAX] {
            let d = dataset(42, per_day);
            let mut previous = ORIGIN_MS - 1;
            for i in 0..5_000 {
                let t = d.start_time_ms(i);
                assert!(t > previous, "per_day {per_day} index {i}");
                previous = t;
            }
        }
    }

    #[test]
    fn per_day_sets_the_density() {
        let d = dataset(42, 2000);
        let day = d.index_range(ORIGIN_MS + 10 * DAY_MS, ORIGIN_MS + 11 * DAY_MS - 1);
        assert_eq!(day.end - day.start, 2000);
    }

    /// Every index in the range starts inside the window and its neighbours start outside.
    #[test]
    fn index_range_is_exact_at_the_edges() {
        let d = dataset(7, 2000);
        let mut r = Rng::new(99);
        for _ in 0..2_000 {
            let from = ORIGIN_MS + r.range(-100_000, 30 * DAY_MS);
            let to = from + r.range(-10, DAY_MS / 3);
            let range = d.index_range(from, to);
            for i in range.clone() {
                let t = d.start_time_ms(i);
                assert!(from <= t && t <= to);
            }
            if range.start > 0 {
                assert!(d.start_time_ms(range.start - 1) < from);
            }
            assert!(d.start_time_ms(range.end) > to);
            if range.is_empty() && to >= from && to >= ORIGIN_MS {
                // Nothing inside: the conversation at the boundary really is outside.
                assert!(d.start_time_ms(range.start) > to);
            }
        }
    }

    #[test]
    fn index_range_hits_exact_start_times() {
        let d = dataset(3, 500);
        for i in [0u64, 1, 17, 4_999] {
            let t = d.start_time_ms(i);
            assert_eq!(d.index_range(t, t), i..i + 1);
            assert!(d.index_range(t + 1, t + 1).is_empty());
            assert!(d.index_range(t - 1, t - 1).is_empty());
        }
        assert_eq!(d.index_range(0, ORIGIN_MS - 1), 0..0);
        assert_eq!(d.index_range(ORIGIN_MS + 5, ORIGIN_MS), 0..0);
    }

    #[test]
    fn conversation_ids_are_uuid_v4_and_invertible() {
        let d = dataset(42, 2000);
        let other = dataset(43, 2000);
        for i in (0..1_000u64).chain([123_456_789, MASK48]) {
            let id = d.conversation_id(i);
            assert_eq!(id.len(), 36);
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'));
            assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
            assert_eq!(d.index_of(&id), Some(i));
            assert_eq!(d.index_of(&id.to_uppercase()), Some(i));
            assert_ne!(other.conversation_id(i), id);
        }
        assert_eq!(d.index_of("not-a-uuid"), None);
        assert_eq!(d.index_of("e5c58e49-e4a5-40a8-8a18-d6580d1d5630"), None);
    }

    #[test]
    fn lp_time_format() {
        assert_eq!(lp_time(ORIGIN_MS + 5), "2020-01-01 00:00:00.005+0000");
        assert_eq!(lp_time(1_709_283_605_120), "2024-03-01 09:00:05.120+0000");
    }

    #[test]
    fn skeleton_segments_are_consistent() {
        let d = dataset(42, 2000);
        for i in 0..2_000 {
            let s = d.skeleton(i);
            assert!((1..=3).contains(&s.segments.len()));
            for pair in s.segments.windows(2) {
                assert_ne!(pair[0].agent, pair[1].agent);
            }
            for seg in &s.segments {
                if let Some(k) = seg.skill {
                    assert!(AGENTS[seg.agent].skills.contains(&k));
                }
            }
        }
    }
}
