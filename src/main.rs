fn main() -> std::process::ExitCode {
    keep_freed_memory();
    studentsim::cli::main()
}

/// The model's forward pass allocates and frees tensors of megabytes per layer. glibc returns such memory to
/// the kernel (large blocks are mapped one by one, and the heap top is trimmed), so each pass faults every page
/// in again and the kernel zeroes it: ~15% of prefill time. Keep freed memory for reuse instead; the most
/// the process keeps is its peak, which the model sets anyway.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it runs before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
