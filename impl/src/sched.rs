//! A scheduling hint for the threads that serve clients.
//!
//! Since Linux 6.12 a thread under the normal policy may ask for a shorter time slice
//! (`sched_setattr` with `sched_runtime`; 0.1 ms to 100 ms, the default is 0.7-3 ms by core
//! count). A thread with a short slice that wakes may preempt one with a longer slice at once;
//! without it, a woken thread waits until the running thread's slice is used up, which is
//! noticed at the next scheduler tick (up to 4 ms at 250 Hz). That wait is what a client's
//! request meets when the cores are busy, for example while the snapshot thread encodes a
//! full sync: the worker's wakeup then waits out the encoder's slice.
//!
//! The runtime's threads ask for it as they start (`main.rs`): the workers, and tokio's
//! blocking threads, which only run one-shot jobs. The snapshot and BGSAVE threads keep the
//! default slice, so they are the ones preempted. The hint changes no priority (a thread keeps
//! its nice value and its share of the processor); it only makes the worker's turns shorter
//! and earlier. Older kernels accept the call and ignore the field; where the call fails
//! (another system, a sandbox), the thread runs as before. Nothing here is needed for
//! correctness. Measured in docs/performance.md ("Write stall").

/// The slice asked for: the kernel's smallest, 0.1 ms. A worker's turn for one connection at
/// -P 16 (one read, sixteen requests, one write) takes tens of microseconds.
pub const WORKER_SLICE_NS: u64 = 100_000;

/// Asks the kernel for a `WORKER_SLICE_NS` time slice for the calling thread. Returns whether
/// the kernel accepted it. A thread under another policy than the normal one (an operator's
/// `chrt` to a real-time or batch policy) is left as it is.
#[cfg(target_os = "linux")]
pub fn prefer_short_slice() -> bool {
    /// `struct sched_attr` of `include/uapi/linux/sched/types.h` (the first version, 48 bytes).
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    // SAFETY: sched_getscheduler reads no memory of ours; pid 0 is the calling thread.
    if unsafe { libc::sched_getscheduler(0) } != libc::SCHED_OTHER {
        return false;
    }
    // SAFETY: getpriority reads no memory of ours.
    let nice = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, 0)
    };
    // SAFETY: reads the thread's errno.
    if nice == -1 && unsafe { *libc::__errno_location() } != 0 {
        return false;
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        // sched_setattr sets the nice value too: keep the thread's own.
        nice,
        priority: 0,
        runtime: WORKER_SLICE_NS,
        deadline: 0,
        period: 0,
    };
    // SAFETY: `attr` is a valid `struct sched_attr` whose `size` field gives its length; pid 0
    // is the calling thread; the kernel only reads it.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
pub fn prefer_short_slice() -> bool {
    false
}

/// Whether the running kernel keeps a per-thread slice (Linux 6.12 and later), so that
/// [`prefer_short_slice`] has an effect. For tests and diagnostics.
pub fn kernel_keeps_custom_slices() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (6, 12)
}

/// A thread's slice in nanoseconds as Linux reports it (`se.slice` in `<task>/sched`, where
/// `task` is a `/proc/<pid>/task/<tid>` directory); `None` where the kernel shows none. For
/// tests and diagnostics.
pub fn reported_slice(task: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(task.join("sched")).ok()?;
    let line = text.lines().find(|l| l.starts_with("se.slice"))?;
    line.split(':').nth(1)?.trim().parse().ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The calling thread's slice as /proc reports it.
    fn own_slice() -> Option<u64> {
        // SAFETY: gettid has no arguments.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        super::reported_slice(std::path::Path::new(&format!("/proc/self/task/{tid}")))
    }

    #[test]
    fn the_hint_sets_the_slice_and_keeps_the_nice_value() {
        std::thread::spawn(|| {
            // SAFETY: setpriority on the calling thread.
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 3) }, 0);
            let before = own_slice();
            assert!(super::prefer_short_slice(), "sched_setattr refused");
            // SAFETY: getpriority reads no memory of ours.
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, 3);
            // Kernels before 6.12 accept the call and keep their own slice.
            if super::kernel_keeps_custom_slices() {
                assert_ne!(before, Some(super::WORKER_SLICE_NS));
                assert_eq!(own_slice(), Some(super::WORKER_SLICE_NS));
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_under_another_policy_keeps_it() {
        std::thread::spawn(|| {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: sets the calling thread's policy; `param` is a valid sched_param.
            assert_eq!(
                unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) },
                0
            );
            assert!(!super::prefer_short_slice());
            // SAFETY: reads the calling thread's policy.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_BATCH);
        })
        .join()
        .unwrap();
    }
}
