//! How the process keeps the memory it frees, set once at start-up by the binaries.
//!
//! A training step on long sequences allocates and frees buffers of tens to hundreds of megabytes
//! (the saved gate activations of every step, their gradients). glibc's malloc serves each one above
//! 32 MiB with a fresh `mmap` and returns it to the kernel on free, so the next step faults every page
//! back in, zeroed by the kernel: a third of the time of a 784-step GRU epoch went there. Serving them
//! from the heap and never trimming it lets each step reuse the last one's pages.

/// Bytes the heap grows by beyond each request, so that it grows in few large steps.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_GROWTH_PAD: libc::c_int = 256 << 20;

/// Keeps freed memory in the process for reuse instead of returning it to the kernel (glibc: no
/// `mmap`ed chunks, no heap trimming). The resident size stays at the peak of a step. Elsewhere the
/// allocator's own policy stays, and this does nothing. Returns whether the policy was applied.
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes malloc's tuning parameters; it is called before the
        // binaries start any thread, and each value is one glibc documents for its parameter.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
                && libc::mallopt(libc::M_TOP_PAD, HEAP_GROWTH_PAD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_every_setting_of_the_policy() {
        assert!(super::retain_freed_memory());
        let kept: Vec<Vec<f32>> = (0..3).map(|i| vec![i as f32; 40 << 20 >> 2]).collect();
        assert!(
            kept.iter()
                .enumerate()
                .all(|(i, v)| v[v.len() - 1] == i as f32)
        );
    }
}
