//! Allocator settings for tensor work. Every tensor operation allocates its output, and
//! glibc serves blocks above its mmap threshold with a fresh `mmap` and returns them with
//! `munmap` — each one page faults, zeroes its pages in the kernel and, on free, makes every
//! core flush its TLB. In a training step that churn took more time than the arithmetic.
//! [`tune`] keeps blocks of up to 32 MiB on the heap and stops the heap from being trimmed,
//! so freed tensor memory is reused.

/// Applies the settings (glibc on Linux; elsewhere nothing). Call early in `main`; a second
/// call changes nothing.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes the allocator's own lock and only changes its parameters; any
    // values are valid (out-of-range ones are refused with a return code).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
