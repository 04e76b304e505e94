//! The process's heap as the allocator counts it, for the writer's memory limit.
//!
//! The parquet encoders' own estimate ([`parquet::arrow::ArrowWriter::memory_size`]) counts
//! the bytes they use, not the capacity they hold, nor dictionaries' hash tables and codec
//! state: about a quarter of what they really held as the job grew once hundreds of sparse columns have grown
//! (benches/RESULTS.md). The allocator knows the true figure.

/// Bytes of heap in use now (allocated and not freed, including blocks the allocator mapped
/// on their own), or `None` where the allocator cannot say.
pub fn heap_in_use() -> Option<usize> {
    imp::heap_in_use()
}

/// Blocks of at least this size get their own mapping from the allocator, returned to the
/// system when freed.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Makes glibc give blocks of [`MMAP_THRESHOLD`] bytes or more their own mapping, always.
/// By default glibc raises that threshold each time such a block is freed (up to 32 MiB),
/// after which the 2 MB pages and the encoders' large buffers come from the heap and leave
/// it fragmented: a long convert's resident memory crept up by a third more than its heap
/// (benches/RESULTS.md). Left alone when `MALLOC_MMAP_THRESHOLD_` is set: the operator's
/// own choice wins. Call before other threads start.
pub fn fix_mmap_threshold() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        imp::set_mmap_threshold(MMAP_THRESHOLD);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    pub(super) fn set_mmap_threshold(bytes: usize) {
        let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes the allocator's tuning; M_MMAP_THRESHOLD takes a
        // byte count. A refusal (0) leaves glibc's defaults, which are correct, only larger.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, bytes);
        }
    }

    pub(super) fn heap_in_use() -> Option<usize> {
        // SAFETY: mallinfo2 takes no arguments and only reads the allocator's own state
        // (under its arena locks); it exists in glibc since 2.33.
        let info = unsafe { libc::mallinfo2() };
        Some(info.uordblks.saturating_add(info.hblkhd))
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn set_mmap_threshold(_bytes: usize) {}

    pub(super) fn heap_in_use() -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn an_allocation_shows_in_the_heap() {
        let before = heap_in_use().expect("glibc counts its heap");
        let block = vec![1u8; 64 << 20];
        let during = heap_in_use().unwrap();
        assert!(
            during >= before + (60 << 20),
            "{before} then {during} with 64 MiB held"
        );
        drop(std::hint::black_box(block));
        let after = heap_in_use().unwrap();
        assert!(
            after + (60 << 20) <= during,
            "{during} then {after} once freed"
        );
    }
}
