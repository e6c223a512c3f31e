//! A global allocator that refuses any single allocation larger than a
//! limit while [`limit`]'s guard is alive, so that a size read from a
//! damaged file and trusted ("reserve n points") fails the check at once,
//! with Rust's "memory allocation of N bytes failed", instead of passing
//! whenever the machine happens to have the memory (an untouched
//! reservation costs no RSS, so `-rss_limit_mb` alone misses it).
//!
//! The binary that includes this module installs it with
//! `#[global_allocator]`. The limit is global, not per thread, because the
//! library decodes and encodes on its own threads; other checks running
//! meanwhile in the same process stay far below any limit set here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The allocator: the system's, with a ceiling.
pub struct Limited;

static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

// SAFETY: every call is forwarded to `System` unchanged, or refused with a
// null pointer, which `GlobalAlloc` allows for any request.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > LIMIT.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Limits single allocations to `bytes` until the guard is dropped (also
/// when a check panics, so that a failed check does not limit the next).
#[must_use]
pub fn limit(bytes: usize) -> Guard {
    Guard {
        previous: LIMIT.swap(bytes, Ordering::Relaxed),
    }
}

/// Restores the previous limit when dropped.
pub struct Guard {
    previous: usize,
}

impl Drop for Guard {
    fn drop(&mut self) {
        LIMIT.store(self.previous, Ordering::Relaxed);
    }
}
