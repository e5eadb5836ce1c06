//! Fault injection for the soak benchmark, compiled only with the `fault-injection` feature
//! (never in a release build): a model served under the name in `MLSHIP_FAULT_PANIC_MODEL`
//! panics inside the guarded scoring section on every request, as a model with a bug would.

use std::sync::{Arc, Mutex, Weak};

use mlship_model::Model;

/// The marked models (weak: an entry does not keep a model alive, and its address is not reused
/// while the entry exists).
static MARKED: Mutex<Vec<Weak<Model>>> = Mutex::new(Vec::new());

/// Marks `model` when `name` is the one the environment names.
pub(crate) fn mark(name: &str, model: &Arc<Model>) {
    if std::env::var("MLSHIP_FAULT_PANIC_MODEL").is_ok_and(|n| n == name) {
        let mut m = MARKED.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|w| w.strong_count() > 0);
        m.push(Arc::downgrade(model));
    }
}

/// Panics when `model` is marked.
pub(crate) fn check(model: &Model) {
    let marked = MARKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|w| std::ptr::eq(w.as_ptr(), model));
    if marked {
        panic!("a fault injected into this model (MLSHIP_FAULT_PANIC_MODEL)");
    }
}
