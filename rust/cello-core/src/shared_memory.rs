//! Memory that every worker process of one server shares.
//!
//! `run(workers=N)` forks the workers from one master, so a mapping made
//! with `MAP_SHARED | MAP_ANONYMOUS` before the fork is the same memory in
//! all of them. Middleware whose state must hold across the workers (a rate
//! limit of 100 a minute means 100 for the whole server, not 100 per worker;
//! a cache invalidation must reach every worker's cache) keeps it here, in
//! atomics, so no lock is ever held across processes and a worker that dies
//! mid-update leaves nothing locked.
//!
//! A layer creates its region when it is built (the app is configured before
//! `run()` forks), so workers started later, restarts included, inherit it.
//! Processes that are not forked from one master (`uvicorn --workers`, which
//! spawns) each get their own region.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// A fixed array of `AtomicU64` slots in memory shared with forked children.
pub struct SharedSlots {
    base: NonNull<AtomicU64>,
    len: usize,
}

// The slots are atomics: any thread (or process) may use them at once.
unsafe impl Send for SharedSlots {}
unsafe impl Sync for SharedSlots {}

impl SharedSlots {
    /// `len` zeroed slots. Fails only when the system refuses the mapping.
    pub fn new(len: usize) -> io::Result<Self> {
        let len = len.max(1);
        let bytes = len
            .checked_mul(std::mem::size_of::<AtomicU64>())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "too many slots"))?;
        // SAFETY: an anonymous mapping with no address hint; the result is
        // checked before use and unmapped exactly once, in `drop`.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast::<AtomicU64>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(SharedSlots { base, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn slots(&self) -> &[AtomicU64] {
        // SAFETY: the mapping holds `len` zero-initialised u64s (anonymous
        // mappings are zero-filled, and zero is a valid AtomicU64), aligned
        // to a page, and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }
}

impl Drop for SharedSlots {
    fn drop(&mut self) {
        // SAFETY: unmaps the region `new` mapped, once.
        unsafe {
            libc::munmap(
                self.base.as_ptr().cast(),
                self.len * std::mem::size_of::<AtomicU64>(),
            );
        }
    }
}

impl std::fmt::Debug for SharedSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedSlots({})", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn slots_start_zeroed_and_hold_values() {
        let shared = SharedSlots::new(1024).unwrap();
        assert_eq!(shared.len(), 1024);
        assert!(shared
            .slots()
            .iter()
            .all(|s| s.load(Ordering::Relaxed) == 0));
        shared.slots()[1023].store(7, Ordering::Relaxed);
        assert_eq!(shared.slots()[1023].fetch_add(1, Ordering::Relaxed), 7);
    }

    #[test]
    fn a_forked_child_writes_what_the_parent_reads() {
        let shared = SharedSlots::new(4).unwrap();
        // SAFETY: the child only touches the atomics and exits with _exit,
        // running no destructors and taking no locks.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            shared.slots()[2].fetch_add(41, Ordering::SeqCst);
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        shared.slots()[2].fetch_add(1, Ordering::SeqCst);
        assert_eq!(shared.slots()[2].load(Ordering::SeqCst), 42);
    }
}
