//! Output-buffer accounting of one replica link: the bytes queued for the link's task and not
//! yet written to its socket, which `client-output-buffer-limit replica` is checked against.
//!
//! The discipline, shared by the producer (the command path, under the store lock) and the
//! consumer (the link's task): count bytes *before* queueing them, and uncount them only
//! *after* the socket write returned. So the count never goes below zero, never misses bytes
//! that are queued, and reaches zero exactly when everything queued was written. The loom
//! model below checks that under every interleaving of a producer, the consumer and the
//! limit checker; the queue itself (tokio's mpsc) is FIFO and loom-tested by tokio, and
//! the model stands it in with a mutex-protected deque.
//!
//! Built with `RUSTFLAGS="--cfg verdis_loom"`, the atomics are loom's (scripts/test.sh runs it).

#[cfg(verdis_loom)]
use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(verdis_loom))]
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes queued on a replica link and not yet written.
#[derive(Debug, Default)]
pub struct OutputAccount {
    queued_bytes: AtomicU64,
}

impl OutputAccount {
    pub fn new() -> Self {
        OutputAccount {
            queued_bytes: AtomicU64::new(0),
        }
    }

    /// Called before `n` bytes are queued for the link.
    pub fn enqueued(&self, n: u64) {
        self.queued_bytes.fetch_add(n, Ordering::AcqRel);
    }

    /// Called after `n` bytes were written to the socket.
    pub fn written(&self, n: u64) {
        let before = self.queued_bytes.fetch_sub(n, Ordering::AcqRel);
        // Ours to uphold: a write never exceeds what was queued.
        debug_assert!(before >= n, "wrote {n} bytes with only {before} queued");
    }

    /// The bytes queued and not yet written.
    pub fn pending(&self) -> u64 {
        self.queued_bytes.load(Ordering::Acquire)
    }
}

#[cfg(all(test, verdis_loom))]
mod loom_tests {
    use super::OutputAccount;
    use loom::sync::{Arc, Mutex};
    use std::collections::VecDeque;

    /// Every interleaving (up to three preemptions, loom's usual bound) of the producer
    /// (the command path: one at a time, it holds the store lock), the link task and the limit
    /// checker: the count never exceeds what was queued, never underflows, the consumer gets
    /// the chunks in order, exactly once, and the count ends at zero.
    #[test]
    fn accounting_holds_under_every_interleaving() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let account = Arc::new(OutputAccount::new());
            let queue: Arc<Mutex<VecDeque<u64>>> = Arc::new(Mutex::new(VecDeque::new()));
            let producer = {
                let (account, queue) = (account.clone(), queue.clone());
                loom::thread::spawn(move || {
                    for len in [3u64, 5] {
                        account.enqueued(len);
                        queue.lock().unwrap().push_back(len);
                    }
                })
            };
            let consumer = {
                let (account, queue) = (account.clone(), queue.clone());
                loom::thread::spawn(move || {
                    let mut seen = Vec::new();
                    while seen.len() < 2 {
                        let next = queue.lock().unwrap().pop_front();
                        match next {
                            Some(len) => {
                                // The socket write happens here, then the bytes are uncounted.
                                account.written(len);
                                let now = account.pending();
                                assert!(now <= 8, "count {now} after a write: underflow");
                                seen.push(len);
                            }
                            None => loom::thread::yield_now(),
                        }
                    }
                    seen
                })
            };
            // The limit checker reads the count at any moment.
            let pending = account.pending();
            assert!(pending <= 8, "count {pending} above everything ever queued");
            producer.join().unwrap();
            let seen = consumer.join().unwrap();
            assert_eq!(seen, vec![3, 5], "chunks out of order, lost or duplicated");
            assert_eq!(account.pending(), 0);
        });
    }
}
