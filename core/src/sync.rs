//! The atomics every shared structure is built on, and the one CAS loop they
//! all use.
//!
//! Normal builds use `portable-atomic`, which is `core::sync::atomic` on
//! targets with native atomics and an emulation on targets without
//! compare-and-swap (`thumbv6m-none-eabi`; enable the crate's
//! `critical-section` feature there). Under `--cfg loom` the same code runs on
//! loom's model-checked atomics.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};
#[cfg(not(loom))]
pub(crate) use portable_atomic::{AtomicU128, AtomicU32, AtomicU64};

/// Loom has no 128-bit atomic: under loom, one is modelled as a word behind
/// a loom mutex, whose every load and compare-and-swap is one indivisible
/// step — what the hardware instruction gives, and all the algorithm relies
/// on.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct AtomicU128(loom::sync::Mutex<u128>);

#[cfg(loom)]
impl AtomicU128 {
    pub(crate) fn new(value: u128) -> Self {
        AtomicU128(loom::sync::Mutex::new(value))
    }

    pub(crate) fn load(&self, _: Ordering) -> u128 {
        *self.0.lock().unwrap()
    }

    pub(crate) fn compare_exchange_weak(
        &self,
        current: u128,
        new: u128,
        _: Ordering,
        _: Ordering,
    ) -> Result<u128, u128> {
        let mut word = self.0.lock().unwrap();
        if *word == current {
            *word = new;
            Ok(current)
        } else {
            Err(*word)
        }
    }
}

pub(crate) use core::sync::atomic::Ordering;

/// Defines a `const fn`, except under loom, whose atomics cannot be built in
/// a constant.
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis const fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])* $vis fn $($rest)*
    };
}
pub(crate) use const_unless_loom;

macro_rules! transition_fn {
    ($name:ident, $atomic:ty, $int:ty) => {
        /// Applies a pure transition to `word` in a compare-and-swap loop and
        /// returns its output; `Err` leaves the word untouched.
        ///
        /// The transition sees one consistent value and its result is
        /// installed only if the word did not change meanwhile, so a check
        /// and the update it allows are one atomic step — never a load
        /// followed by a separate store. A transition that returns the
        /// value unchanged writes nothing.
        pub(crate) fn $name<T, E>(
            word: &$atomic,
            mut transition: impl FnMut($int) -> Result<(T, $int), E>,
        ) -> Result<T, E> {
            let mut current = word.load(Ordering::Acquire);
            loop {
                let (output, next) = transition(current)?;
                if next == current {
                    return Ok(output);
                }
                match word.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return Ok(output),
                    Err(actual) => current = actual,
                }
            }
        }
    };
}

transition_fn!(transition_u32, AtomicU32, u32);
transition_fn!(transition_u64, AtomicU64, u64);
transition_fn!(transition_u128, AtomicU128, u128);
