//! Giving freed heap memory back to the operating system. The data plane's work comes in
//! large transient allocations (a segment being encoded, an index being built, a file
//! being decoded); glibc keeps what is freed in its arenas, so without this a process's
//! resident set stays at its peak.

/// Returns free heap pages to the OS (glibc's `malloc_trim`); nothing elsewhere.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
