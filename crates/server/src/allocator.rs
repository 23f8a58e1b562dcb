//! The allocator, and when it gives freed memory back to the system.
//!
//! mimalloc allocates faster than glibc's malloc on the request path. Memory freed in whole
//! segments (what a burst of large batches leaves) goes back to the system only on a later
//! allocator call made at least `purge_delay × arena_purge_mult` (100 ms) after the free,
//! so a server that went quiet after a burst kept 150–220 MiB for as long as it stayed
//! quiet. With the arenas' multiplier at 0, a freed segment is purged as it is freed; pages
//! inside live segments keep mimalloc's short delay, so the request path is unchanged
//! (README, "Memory under the burst").

use std::ffi::c_long;

use libmimalloc_sys::mi_option_t;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_purge_mult` in mimalloc v2's `mimalloc.h`; libmimalloc-sys names no
/// constant for it.
const ARENA_PURGE_MULT: mi_option_t = 24;
/// Its default there. Any other value was chosen by the operator
/// (`MIMALLOC_ARENA_PURGE_MULT`), and is kept.
const ARENA_PURGE_MULT_DEFAULT: c_long = 10;

/// Purges freed segments at once. Call it before any other thread starts: mimalloc's
/// options are not safe to set while other threads allocate.
pub fn purge_freed_segments_at_once() {
    if arena_purge_mult() == ARENA_PURGE_MULT_DEFAULT {
        set_arena_purge_mult(0);
    }
}

#[allow(unsafe_code)]
fn arena_purge_mult() -> c_long {
    // SAFETY: reads one integer option by index; no pointer crosses the boundary.
    unsafe { libmimalloc_sys::mi_option_get(ARENA_PURGE_MULT) }
}

#[allow(unsafe_code)]
fn set_arena_purge_mult(value: c_long) {
    // SAFETY: writes one integer option by index; the caller runs before other threads.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_PURGE_MULT, value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_the_arenas_purge_multiplier_and_is_set_to_zero() {
        // The index is right when its value is mimalloc's default for that option, and
        // the purge delay it multiplies (index 15) holds its own default.
        assert_eq!(arena_purge_mult(), ARENA_PURGE_MULT_DEFAULT);
        #[allow(unsafe_code)]
        // SAFETY: reads one integer option by index.
        let purge_delay = unsafe { libmimalloc_sys::mi_option_get(15) };
        assert_eq!(purge_delay, 10);
        purge_freed_segments_at_once();
        assert_eq!(arena_purge_mult(), 0);
    }
}
