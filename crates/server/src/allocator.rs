//! The allocator: mimalloc allocates faster than glibc's malloc on the request path. When
//! it gives memory back is `llm_analytics::memory`'s.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use llm_analytics::memory::{
        KEEP_RESIDENT_BYTES, allocated_resident_bytes, collect_thread_heap, configure_allocator_for_worker,
        give_back_thread_memory, resident_bytes,
    };

    /// The tests that measure the resident set run one at a time.
    static MEASURING: Mutex<()> = Mutex::new(());

    /// The resident set with `mib` MiB of blocks written (so resident) and, after another
    /// thread freed them and this one called `give_back`, the resident set then.
    fn resident_with_blocks_and_after(mib: usize, give_back: fn()) -> (u64, u64) {
        let resident = || resident_bytes().unwrap();
        let blocks: Vec<Vec<u8>> = (0..mib * 16).map(|_| vec![1u8; 64 * 1024]).collect();
        let with_blocks = resident();
        std::thread::spawn(move || drop(blocks)).join().unwrap();
        give_back();
        (with_blocks, resident())
    }

    #[test]
    fn memory_freed_on_another_thread_goes_back_when_its_owner_collects() {
        let _alone = MEASURING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (with_blocks, after) = resident_with_blocks_and_after(64, collect_thread_heap);
        assert!(
            after + 48 * 1024 * 1024 < with_blocks,
            "at least 48 of the 64 MiB went back: {with_blocks} bytes resident with the blocks, {after} after"
        );
    }

    #[test]
    fn the_resident_set_is_read_as_the_kernel_counts_it() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib = |field: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .map(|rest| rest.trim().trim_end_matches("kB").trim().parse().unwrap())
                .unwrap()
        };
        let read = resident_bytes().expect("statm is readable");
        let allocated = allocated_resident_bytes().expect("statm is readable");
        // The same counters; other test threads may allocate in between.
        let (rss, anon) = (kib("VmRSS:") * 1024, kib("RssAnon:") * 1024);
        assert!(read.abs_diff(rss) < 16 * 1024 * 1024, "statm {read} bytes, status {rss}");
        assert!(allocated.abs_diff(anon) < 16 * 1024 * 1024, "statm less shared {allocated} bytes, status {anon}");
        assert!(allocated < read, "the binary's pages are not counted as allocated");
    }

    #[test]
    fn a_workers_longer_purge_delay_does_not_hold_back_what_a_collect_gives_back() {
        let _alone = MEASURING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        configure_allocator_for_worker();
        let (with_blocks, after) = resident_with_blocks_and_after(64, collect_thread_heap);
        assert!(
            after + 48 * 1024 * 1024 < with_blocks,
            "at least 48 of the 64 MiB went back: {with_blocks} bytes resident with the blocks, {after} after"
        );
    }

    #[test]
    fn memory_above_the_floor_goes_back_as_a_thread_parks() {
        let _alone = MEASURING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (with_blocks, after) = resident_with_blocks_and_after(128, give_back_thread_memory);
        assert!(with_blocks > KEEP_RESIDENT_BYTES, "{with_blocks} bytes resident with 128 MiB of blocks");
        assert!(
            after + 96 * 1024 * 1024 < with_blocks,
            "at least 96 of the 128 MiB went back: {with_blocks} bytes resident with the blocks, {after} after"
        );
    }
}
