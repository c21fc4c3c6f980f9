//! One way to take a lock: recover it when poisoned.
//!
//! A mutex is poisoned when a thread panicked while holding it. Every lock in
//! lookout guards plain values that each critical section leaves whole (a
//! map insert, a counter), so the data is still good; refusing it instead
//! would let one panic switch a guard off for good (a poisoned throttle that
//! answers "no wait" lets a guesser through, a poisoned status freezes
//! `/status`). So every lock is taken through [`lock`], never with `unwrap`
//! and never with an `if let Ok` that quietly skips the work.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, recovering the data if a panic poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _guard = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
    }
}
