//! The allocator, and when it gives freed memory back to the system.
//!
//! mimalloc allocates faster than glibc's malloc on the request path. It gives freed
//! memory back lazily, on a later call of the thread that owns it: a block freed by another
//! thread waits in its page until the owner looks, and an emptied page is purged only
//! after a delay, when the owner next allocates. A runtime worker that went quiet after a
//! burst of large batches so held 130–220 MiB for as long as it stayed quiet. Each worker
//! now collects its heap as it parks (README, "Memory under the burst").

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gives what the calling thread's heap holds free back to the system: blocks other threads
/// freed into it, empty pages, and segments left by threads that ended. A runtime worker
/// calls it as it parks, so a worker that goes quiet holds nothing it does not use.
pub fn give_back_thread_memory() {
    #[allow(unsafe_code)]
    // SAFETY: takes no pointer; mimalloc only walks the calling thread's own heap, and its
    // shared arenas under their own locks.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_freed_on_another_thread_goes_back_when_its_owner_collects() {
        let resident = || {
            let status = std::fs::read_to_string("/proc/self/statm").unwrap();
            let pages: u64 = status.split_whitespace().nth(1).unwrap().parse().unwrap();
            pages * 4096
        };
        // 64 MiB in blocks of 64 KiB, written so they are resident, freed by another thread.
        let blocks: Vec<Vec<u8>> = (0..1024).map(|_| vec![1u8; 64 * 1024]).collect();
        let with_blocks = resident();
        std::thread::spawn(move || drop(blocks)).join().unwrap();

        give_back_thread_memory();

        let after = resident();
        assert!(
            after + 48 * 1024 * 1024 < with_blocks,
            "at least 48 of the 64 MiB went back: {with_blocks} bytes resident with the blocks, {after} after"
        );
    }
}
