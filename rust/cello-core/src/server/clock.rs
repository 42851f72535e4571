//! A cheap monotonic millisecond clock for deadlines that are only checked
//! now and then (connection phases, a sync handler's overrun).
//!
//! Every request reads the clock a few times, and `Instant::now()` reads the
//! TSC, which is slow on many VMs. Linux's coarse clock returns the time of
//! the last scheduler tick (1-4 ms resolution) from shared memory instead.
//! Deadlines read with it are enforced to within that resolution, which is
//! far finer than the timeouts they guard (the sweeper itself looks every
//! 10 ms at best).

/// Milliseconds on a monotonic clock with an arbitrary origin.
#[cfg(target_os = "linux")]
pub fn coarse_ms() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the call only fails for
    // an unknown clock id, which CLOCK_MONOTONIC_COARSE is not on Linux.
    let failed = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) } != 0;
    if failed {
        return precise_ms();
    }
    now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000
}

/// Milliseconds on a monotonic clock with an arbitrary origin.
#[cfg(not(target_os = "linux"))]
pub fn coarse_ms() -> u64 {
    precise_ms()
}

fn precise_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::coarse_ms;
    use std::time::Duration;

    #[test]
    fn advances_with_real_time_to_within_its_resolution() {
        let before = coarse_ms();
        std::thread::sleep(Duration::from_millis(60));
        let waited = coarse_ms() - before;
        // The coarse clock ticks every 1-4 ms (up to 10 ms with HZ=100).
        assert!(waited >= 50, "waited {waited} ms");
    }

    #[test]
    fn never_goes_back() {
        let mut last = coarse_ms();
        for _ in 0..10_000 {
            let now = coarse_ms();
            assert!(now >= last);
            last = now;
        }
    }
}
