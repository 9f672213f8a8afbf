//! The process's allocator, and giving freed heap memory back to the operating system.
//!
//! The data plane's work comes in large transient allocations (a segment being encoded,
//! an index being built, a file being decoded) beside a steady churn of small ones (log
//! messages, requests, delete marks). With glibc's allocator, freed memory stayed in its
//! per-thread arenas, fragmented, and a long-running process's resident set grew well past
//! what it held (issue 22's steady-state run). jemalloc (Milvus's segcore uses it too)
//! keeps size classes apart, returns dirty pages after a decay time (10 s by default,
//! through its background threads even when the process is idle), and [`release_free_memory`]
//! purges at once after large transient work.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Returns every arena's free pages to the OS now (`arena.<all>.purge`).
pub fn release_free_memory() {
    // MALLCTL_ARENAS_ALL (4096) names every arena.
    let name = c"arena.4096.purge";
    // SAFETY: a void mallctl (no old or new value): jemalloc only walks its own arenas.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        log::debug!(code = rc; "jemalloc refused to purge its arenas");
    }
}
