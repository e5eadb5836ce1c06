//! How many threads one scoring call may use for a large batch: the caller's choice. A server
//! that answers many requests at once caps it (its own concurrency already fills the cores); a
//! command-line batch takes every core, up to eight.

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
}
