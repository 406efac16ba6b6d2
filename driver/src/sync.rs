//! The synchronisation primitives of the driver: std's, or loom's when the crate is
//! built with `--cfg loom` so the model checker can explore every interleaving.

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

/// Locks, recovering the data if another thread panicked while holding the lock:
/// the state stays consistent because every critical section is panic-free by
/// construction, and a poisoned connection must still be able to close.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
