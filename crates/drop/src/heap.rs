//! The process's allocator, and its heap as the allocator counts it, for the writer's memory
//! limit.
//!
//! The allocator is jemalloc wherever it builds (every target but MSVC): it is declared here,
//! beside the count the memory limit reads, so that every binary and test that links the drop
//! writer counts the heap of the allocator it really uses. Against glibc's malloc it made
//! `convert` about a third faster at the same peak memory (benches/RESULTS.md): the decoders'
//! many small strings come from per-thread caches, and freed pages are kept for a second and
//! reused instead of being unmapped and faulted in again.
//!
//! The parquet encoders' own estimate ([`parquet::arrow::ArrowWriter::memory_size`]) counts
//! the bytes they use, not the capacity they hold, nor dictionaries' hash tables and codec
//! state: about a quarter of what they really held as the job grew once hundreds of sparse columns have grown
//! (benches/RESULTS.md). The allocator knows the true figure.

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (an operator's own `_RJEM_MALLOC_CONF` comes after,
/// and wins). Freed pages go back to the system after a second (10 by default) and without
/// the lazy "muzzy" stage, and two arenas (rather than four per core) hold them, so that
/// resident memory follows the heap closely: measured, the same peak as glibc's malloc with
/// the 1 MiB mapping threshold this crate used to set. Small blocks come from per-thread
/// caches before any arena, so few arenas cost the decoding threads nothing measurable.
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf =
    MallocConf(c"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A C string pointer that jemalloc reads once; `static` needs `Sync`.
#[cfg(not(target_env = "msvc"))]
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a string literal, never written.
#[cfg(not(target_env = "msvc"))]
unsafe impl Sync for MallocConf {}

/// Bytes of heap in use now (allocated and not freed), or `None` where the allocator cannot
/// say.
pub fn heap_in_use() -> Option<usize> {
    imp::heap_in_use()
}

#[cfg(not(target_env = "msvc"))]
mod imp {
    use tikv_jemalloc_ctl::{epoch, stats};

    pub(super) fn heap_in_use() -> Option<usize> {
        // jemalloc's statistics are a snapshot taken when the epoch advances.
        epoch::advance().ok()?;
        stats::allocated::read().ok()
    }
}

#[cfg(target_env = "msvc")]
mod imp {
    pub(super) fn heap_in_use() -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(target_env = "msvc"))]
    #[test]
    fn an_allocation_shows_in_the_heap() {
        let before = heap_in_use().expect("jemalloc counts its heap");
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
