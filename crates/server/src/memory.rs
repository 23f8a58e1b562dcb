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

/// Below this resident set a parking thread keeps its free memory for the next batch; a
/// quiet process holds at most this much, or what it uses when that is more.
pub const KEEP_RESIDENT_BYTES: u64 = 96 * 1024 * 1024;

/// `/proc/self/statm` counts pages of this size (x86-64 Linux, where the service runs).
const PAGE_BYTES: u64 = 4096;

/// When the process holds more than [`KEEP_RESIDENT_BYTES`] (or that cannot be read), gives
/// what the calling thread's heap holds free back to the system. A runtime worker calls it
/// as it parks, so a worker that goes quiet holds nothing it does not use above the floor.
pub fn give_back_thread_memory() {
    if resident_bytes().is_none_or(|resident| resident > KEEP_RESIDENT_BYTES) {
        collect_thread_heap();
    }
}

/// The process's resident set, from `/proc/self/statm` (its second field, in pages), read
/// through a file each thread keeps open: one `pread` a park.
pub fn resident_bytes() -> Option<u64> {
    thread_local! {
        static STATM: Option<File> = File::open("/proc/self/statm").ok();
    }
    STATM.with(|statm| {
        let mut text = [0u8; 128];
        let read = statm.as_ref()?.read_at(&mut text, 0).ok()?;
        let resident: u64 = std::str::from_utf8(&text[..read]).ok()?.split_whitespace().nth(1)?.parse().ok()?;
        Some(resident * PAGE_BYTES)
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
