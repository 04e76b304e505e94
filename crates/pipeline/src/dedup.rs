//! De-duplication of records by id: per sub-window for searches, across the whole input for
//! saved pages.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use lpdrop_liveperson::Window;

/// How repeated conversations are recognised.
pub(crate) enum Dedup {
    /// Sync: each conversation belongs to exactly one sub-window (by its start time), so
    /// duplicates can only occur within one; the set is emptied when the sub-window changes.
    PerWindow {
        current: Option<Window>,
        seen: HashSet<String>,
    },
    /// Convert: saved pages may overlap anywhere, so every id is remembered: the one part of
    /// convert's memory that grows with the input, at 8 bytes per conversation (see
    /// [`SeenHashes`]).
    Global(SeenHashes),
}

impl Dedup {
    pub(crate) fn per_window() -> Self {
        Dedup::PerWindow {
            current: None,
            seen: HashSet::new(),
        }
    }

    pub(crate) fn global() -> Self {
        Dedup::Global(SeenHashes::default())
    }

    /// True the first time a conversation id is seen (in its window, for sync).
    pub(crate) fn first_sighting(&mut self, window: Option<Window>, id: &str) -> bool {
        match self {
            Dedup::PerWindow { current, seen } => {
                if *current != window {
                    *current = window;
                    seen.clear();
                }
                seen.insert(id.to_string())
            }
            Dedup::Global(seen) => seen.insert(id),
        }
    }
}

/// The 64-bit hashes of every id seen (a false match is about 1 in 10^7 at a billion ids):
/// most in one sorted vector, 8 bytes each, and the latest in a small hash set that is merged
/// into it when it fills. A `HashSet<u64>` of them all took 18 to 27 bytes per id (buckets
/// at 7/8 load, a control byte each, and the old table beside the new while it grows), about
/// 27 MB at a million conversations; this takes 8 MB, plus at most [`SeenHashes::RECENT`]
/// recent ones.
#[derive(Default)]
pub(crate) struct SeenHashes {
    hasher: RandomState,
    /// Sorted, without repeats, allocated to its exact length.
    sorted: Vec<u64>,
    /// Seen since the last merge, none of them in `sorted`.
    recent: HashSet<u64>,
}

impl SeenHashes {
    /// Recent hashes held before they are merged into the sorted vector (about 1 MB); a
    /// merge moves every hash once, so a million conversations take 16 merges.
    const RECENT: usize = 1 << 16;

    /// True when `id` was not seen before (it is now).
    fn insert(&mut self, id: &str) -> bool {
        let hash = self.hasher.hash_one(id);
        if self.sorted.binary_search(&hash).is_ok() || !self.recent.insert(hash) {
            return false;
        }
        // Past a few million ids, merge less often (at most 1/64 more memory), so that the
        // merges stay a small share of the work.
        if self.recent.len() >= Self::RECENT.max(self.sorted.len() / 64) {
            self.merge();
        }
        true
    }

    /// Moves the recent hashes into the sorted vector, merging from the back in place.
    fn merge(&mut self) {
        let mut fresh: Vec<u64> = self.recent.drain().collect();
        fresh.sort_unstable();
        let old = self.sorted.len();
        self.sorted.reserve_exact(fresh.len());
        self.sorted.resize(old + fresh.len(), 0);
        let (mut i, mut j) = (old, fresh.len());
        for k in (0..self.sorted.len()).rev() {
            if j == 0 {
                break; // the rest of the old hashes are already in place
            }
            if i > 0 && self.sorted[i - 1] > fresh[j - 1] {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = fresh[j - 1];
                j -= 1;
            }
        }
    }
}

#[cfg(test)]
mod dedup_tests {
    use super::*;

    #[test]
    fn seen_hashes_know_every_id_across_merges() {
        let mut seen = SeenHashes::default();
        let n = 3 * SeenHashes::RECENT as u64 + 123;
        for i in 0..n {
            assert!(seen.insert(&format!("conv-{i}")), "{i} is new");
            // Repeats of a recent id and of a long-merged one.
            assert!(!seen.insert(&format!("conv-{i}")));
            assert!(!seen.insert(&format!("conv-{}", i / 2)));
        }
        assert_eq!(seen.sorted.len() + seen.recent.len(), n as usize);
        assert!(seen.sorted.len() >= 3 * SeenHashes::RECENT);
        assert!(seen.sorted.windows(2).all(|w| w[0] < w[1]));
        for i in (0..n).step_by(997) {
            assert!(!seen.insert(&format!("conv-{i}")));
        }
        assert!(seen.insert("another"));
    }
}
