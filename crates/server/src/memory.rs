//! When the allocator gives freed memory back to the system.
//!
//! The server's allocator is mimalloc (set in `main`). It gives freed memory back lazily,
//! on a later call of the thread that owns it: a block freed by another thread waits in
//! its page until the owner looks, and an emptied page is purged only after a delay, when
//! the owner next allocates. A runtime worker that went quiet after a burst of large
//! batches so held 130–220 MiB for as long as it stayed quiet. Each worker now collects
//! its heap as it parks (README, "Memory under the burst"), and so does each code
//! evaluator thread as it starts to wait — while the process holds more than
//! [`KEEP_RESIDENT_BYTES`]: below that a collect gave back pages the next batch faulted in
//! again (a fifth of a busy judge worker's time went to that).

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Below this much allocated resident memory ([`allocated_resident_bytes`]) a parking
/// thread keeps its free memory for the next batch; a quiet process holds at most this
/// much, or what it uses when that is more.
pub const KEEP_RESIDENT_BYTES: u64 = 96 * 1024 * 1024;

/// How long mimalloc keeps a freed page before it gives the page back by itself in a
/// worker-only process (its default, kept where the API is served, is 10 ms). A busy
/// worker frees and reuses its batches' memory every few milliseconds; given back that
/// soon, each page was faulted in again by the next batch (~1.8 faults and ~6 µs of CPU per
/// code judgement). A worker's memory is bounded by its batches in flight; the API's by
/// request bodies, which a longer delay let pile up (a burst's peak, 290–315 MiB in five
/// runs at 10 ms, reached 434 MiB in one of five at 250 ms; the target is 400). A quiet process
/// gives memory back through [`give_back_thread_memory`], whose collect does not wait.
const WORKER_PURGE_DELAY_MS: std::os::raw::c_long = 250;

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, v2).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// `/proc/self/statm` counts pages of this size (x86-64 Linux, where the service runs).
const PAGE_BYTES: u64 = 4096;

/// Sets the allocator's options for a process that serves no API (`serve --worker-only`);
/// called before its runtime starts.
pub fn configure_allocator_for_worker() {
    #[allow(unsafe_code)]
    // SAFETY: sets one option's value; mimalloc reads it on its next purge decision.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, WORKER_PURGE_DELAY_MS);
    }
}

/// When the process holds more than [`KEEP_RESIDENT_BYTES`] (or that cannot be read), gives
/// what the calling thread's heap holds free back to the system. A runtime worker calls it
/// as it parks, so a worker that goes quiet holds nothing it does not use above the floor.
pub fn give_back_thread_memory() {
    if allocated_resident_bytes().is_none_or(|resident| resident > KEEP_RESIDENT_BYTES) {
        collect_thread_heap();
    }
}

/// The process's resident set, from `/proc/self/statm` (its second field, in pages).
pub fn resident_bytes() -> Option<u64> {
    statm().map(|(resident, _)| resident * PAGE_BYTES)
}

/// Of the resident set, what the process allocated: `statm`'s resident pages less its
/// shared ones (the binary's and libraries' file pages, which the kernel can drop at will
/// and which are no allocator's to give back: ~16 MiB of a running server).
pub fn allocated_resident_bytes() -> Option<u64> {
    statm().map(|(resident, shared)| resident.saturating_sub(shared) * PAGE_BYTES)
}

/// `/proc/self/statm`'s resident and shared pages, read through a file each thread keeps
/// open: one `pread` a call.
fn statm() -> Option<(u64, u64)> {
    thread_local! {
        static STATM: Option<File> = File::open("/proc/self/statm").ok();
    }
    STATM.with(|statm| {
        let mut text = [0u8; 128];
        let read = statm.as_ref()?.read_at(&mut text, 0).ok()?;
        let mut fields = std::str::from_utf8(&text[..read]).ok()?.split_whitespace().skip(1);
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// Gives what the calling thread's heap holds free back to the system: blocks other threads
/// freed into it, empty pages, and segments left by threads that ended.
pub fn collect_thread_heap() {
    #[allow(unsafe_code)]
    // SAFETY: takes no pointer; mimalloc only walks the calling thread's own heap, and its
    // shared arenas under their own locks.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}
