//! The breaker's two atomic words, packed and unpacked.
//!
//! The whole state of a [`CircuitBreaker`](super::CircuitBreaker) — phase,
//! generation and counters — is one `u64`, so every transition is a single
//! compare-and-swap; the open or probe deadline is a second `u64` tagged
//! with the generation it belongs to. Every bit of both layouts is defined
//! here, and nothing outside this file shifts or masks them.
//!
//! ```text
//! state:    phase (2) | generation (14) | low 48 bits, by phase:
//!             Closed:   consecutive failures (16) | calls in window (16) | failures in window (16)
//!             HalfOpen: unused (16) | probes admitted (16) | probes succeeded (16)
//!             Open:     unused
//! deadline: generation (16) | milliseconds since the origin (48)
//! ```

use crate::time::Instant;

/// The phases, as stored in the top two bits of the state word.
pub(super) const CLOSED: u64 = 0;
pub(super) const OPEN: u64 = 1;
pub(super) const HALF_OPEN: u64 = 2;

const GEN_BITS: u32 = 14;
/// The generation's bits: a generation is always `< 2^14`.
pub(super) const GEN_MASK: u16 = (1 << GEN_BITS) - 1;
const FIELD: u64 = 0xFFFF;
const MS_MASK: u64 = (1 << 48) - 1;
const NANOS_PER_MS: u64 = 1_000_000;

/// The phase of a state word: [`CLOSED`], [`OPEN`] or [`HALF_OPEN`].
pub(super) const fn phase(word: u64) -> u64 {
    word >> 62
}

/// The generation of a state word.
pub(super) const fn generation(word: u64) -> u16 {
    ((word >> 48) as u16) & GEN_MASK
}

/// The generation after `gen`, wrapping within 14 bits.
pub(super) const fn next_generation(gen: u16) -> u16 {
    gen.wrapping_add(1) & GEN_MASK
}

/// Counter `index` of a state word: 0 is the lowest 16 bits, 2 the highest.
pub(super) const fn field(word: u64, index: u32) -> u16 {
    ((word >> (16 * index)) & FIELD) as u16
}

/// A state word from its phase, generation and three counters.
pub(super) const fn word(phase: u64, gen: u16, high: u16, mid: u16, low: u16) -> u64 {
    (phase << 62) | ((gen as u64) << 48) | ((high as u64) << 32) | ((mid as u64) << 16) | low as u64
}

/// Whether `a` is `b` or a later generation (14-bit wrapping order).
pub(super) const fn not_older(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) & GEN_MASK) < (1 << (GEN_BITS - 1))
}

/// Every instant, in whole milliseconds, fits the deadline word's 48 bits
/// (u64::MAX ns is about 1.8e13 ms; 48 bits hold 2.8e14).
const _: () = assert!(u64::MAX.div_ceil(NANOS_PER_MS) <= MS_MASK);

/// The deadline word of generation `gen`: `now + timeout` (saturating),
/// rounded up to whole milliseconds.
pub(super) const fn deadline_word(gen: u16, now: Instant, timeout_nanos: u64) -> u64 {
    let nanos = now.as_nanos().saturating_add(timeout_nanos);
    ((gen as u64) << 48) | nanos.div_ceil(NANOS_PER_MS)
}

/// The generation a deadline word belongs to.
pub(super) const fn deadline_generation(deadline: u64) -> u16 {
    (deadline >> 48) as u16
}

/// The instant a deadline word holds, in nanoseconds since the origin.
pub(super) const fn deadline_nanos(deadline: u64) -> u128 {
    (deadline & MS_MASK) as u128 * NANOS_PER_MS as u128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let w = word(HALF_OPEN, GEN_MASK, 0xFFFF, 0x1234, 0xABCD);
        assert_eq!(phase(w), HALF_OPEN);
        assert_eq!(generation(w), GEN_MASK);
        assert_eq!(
            (field(w, 2), field(w, 1), field(w, 0)),
            (0xFFFF, 0x1234, 0xABCD)
        );
        assert_eq!(word(CLOSED, 0, 0, 0, 0), 0);
        assert_eq!(phase(word(OPEN, 7, 0, 0, 0)), OPEN);
    }

    #[test]
    fn generations_wrap_and_stay_ordered() {
        assert_eq!(next_generation(GEN_MASK), 0);
        assert!(not_older(0, GEN_MASK), "0 follows the last generation");
        assert!(!not_older(GEN_MASK, 0));
        assert!(not_older(5, 5));
        assert!(not_older(5 + (1 << 12), 5));
        assert!(
            !not_older(5 + (1 << 13), 5),
            "half the ring ahead reads as older"
        );
    }

    #[test]
    fn deadlines_round_up_and_hold_any_instant() {
        let d = deadline_word(3, Instant::from_nanos(1), 1_000_000);
        assert_eq!(deadline_generation(d), 3);
        assert_eq!(
            deadline_nanos(d),
            2_000_000,
            "1 ms + 1 ns rounds up to 2 ms"
        );
        let far = deadline_word(GEN_MASK, Instant::from_nanos(u64::MAX), u64::MAX);
        assert_eq!(deadline_generation(far), GEN_MASK);
        // u64::MAX ns is about 1.8e13 ms: 48 bits of milliseconds hold it.
        assert_eq!(
            deadline_nanos(far),
            u128::from(u64::MAX.div_ceil(1_000_000)) * 1_000_000
        );
    }
}
