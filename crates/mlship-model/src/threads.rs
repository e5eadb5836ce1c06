//! How many threads one scoring call may use for a large batch (the caller's choice: a server
//! that answers many requests at once caps it, its own concurrency already filling the cores; a
//! command-line batch takes every core, up to eight), and how they share the batch.

use std::cell::Cell;

thread_local! {
    /// The cap the caller set for calls made on this thread (`None`: the default).
    static CAP: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Runs `f` (a scoring call) with at most `max` threads per large batch (at least 1); the
/// setting applies to calls `f` makes on this thread and ends with it.
pub fn with_threads<R>(max: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CAP.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CAP.with(|c| c.replace(Some(max.max(1)))));
    f()
}

/// The threads a batch of `rows` rows may take here: one below [`PARALLEL_ROWS`] rows, else the
/// machine's cores (up to eight) within the caller's cap.
pub fn batch_threads(rows: usize) -> usize {
    if rows < PARALLEL_ROWS {
        return 1;
    }
    // Found once: finding them reads the cgroup's quota, which cost 4% of a 10,000-row batch.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(8)
    });
    CAP.with(Cell::get).map_or(cores, |cap| cores.min(cap))
}

/// Batches at least this large are split across threads.
pub const PARALLEL_ROWS: usize = 4096;

/// Runs `f(index, chunk)` on every `len`-long chunk of `out` (the last may be shorter) on up to
/// `threads` threads, the calling thread among them. Each thread takes the next chunk when it
/// finishes one, so a helper that starts late (an idle core can take a while to wake, in a VM
/// most of all) does less of the work instead of holding the whole call back.
pub(crate) fn share_chunks<T: Send>(
    out: &mut [T],
    len: usize,
    threads: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    use std::sync::{Mutex, PoisonError, atomic::AtomicUsize, atomic::Ordering};
    let chunks: Vec<Mutex<Option<&mut [T]>>> = out
        .chunks_mut(len.max(1))
        .map(|c| Mutex::new(Some(c)))
        .collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = chunks.get(i) else {
                return;
            };
            let taken = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(chunk) = taken {
                f(i, chunk);
            }
        }
    };
    let helpers = threads.min(chunks.len()).saturating_sub(1);
    std::thread::scope(|s| {
        for _ in 0..helpers {
            s.spawn(work);
        }
        work();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_caps_a_large_batch_and_the_cap_ends_with_its_call() {
        let default = batch_threads(100_000);
        assert!(default >= 1);
        assert_eq!(batch_threads(10), 1);
        assert_eq!(with_threads(1, || batch_threads(100_000)), 1);
        assert_eq!(with_threads(0, || batch_threads(100_000)), 1);
        assert_eq!(with_threads(64, || batch_threads(100_000)), default);
        assert_eq!(
            with_threads(1, || with_threads(2, || batch_threads(100_000))),
            default.min(2)
        );
        assert_eq!(batch_threads(100_000), default);
    }

    #[test]
    fn every_chunk_is_done_once_whatever_the_threads() {
        for threads in [1, 2, 3, 8] {
            for (n, len) in [(0, 4), (1, 4), (10, 3), (96, 96), (1000, 7)] {
                let mut out = vec![0usize; n];
                share_chunks(&mut out, len, threads, |i, chunk| {
                    for (j, o) in chunk.iter_mut().enumerate() {
                        *o += i * len + j + 1;
                    }
                });
                assert_eq!(
                    out,
                    (1..=n).collect::<Vec<_>>(),
                    "{threads} threads, {n} by {len}"
                );
            }
        }
    }
}
