//! Arbitrary numbers, durations and failures, biased towards the values
//! that break arithmetic: zero, one, the ends of every range, NaN and the
//! infinities, and durations beyond `u64` nanoseconds.

use core::time::Duration;

use arbitrary::{Arbitrary, Result, Unstructured};
use stormguard::{Failure, FailureClass, Idempotency, Replay, RetryAfter};

/// A float: often a special value, otherwise any bit pattern or a small
/// decimal.
#[derive(Clone, Copy, Debug)]
pub struct Float(pub f64);

impl<'a> Arbitrary<'a> for Float {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        const SPECIAL: [f64; 16] = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            2.0,
            0.001,
            0.000_999,
            1e-6,
            1e9,
            1000.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        Ok(Float(match u.int_in_range(0..=2u8)? {
            0 => SPECIAL[usize::from(u.int_in_range(0..=15u8)?)],
            1 => f64::from_bits(u.arbitrary()?),
            _ => f64::from(u.arbitrary::<i16>()?) / 100.0,
        }))
    }
}

/// A duration: zero, `Duration::MAX`, whole milliseconds or seconds, any
/// nanosecond count, or seconds beyond what `u64` nanoseconds hold.
#[derive(Clone, Copy, Debug)]
pub struct Span(pub Duration);

impl<'a> Arbitrary<'a> for Span {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Span(match u.int_in_range(0..=5u8)? {
            0 => Duration::ZERO,
            1 => Duration::MAX,
            2 => Duration::from_millis(u64::from(u.arbitrary::<u16>()?)),
            3 => Duration::from_secs(u64::from(u.arbitrary::<u16>()?)),
            4 => Duration::from_nanos(u.arbitrary()?),
            _ => Duration::new(u.arbitrary()?, u.int_in_range(0..=999_999_999)?),
        }))
    }
}

/// A count: small numbers most of the time, the ends of `u32` sometimes.
#[derive(Clone, Copy, Debug)]
pub struct Count(pub u32);

impl<'a> Arbitrary<'a> for Count {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Count(match u.int_in_range(0..=3u8)? {
            0 => u32::from(u.int_in_range(0..=12u8)?),
            1 => u32::from(u.arbitrary::<u16>()?),
            2 => [u32::MAX, u32::MAX - 1, 65_535, 65_536, 1000, 1001, 255, 256]
                [usize::from(u.int_in_range(0..=7u8)?)],
            _ => u.arbitrary()?,
        }))
    }
}

/// A failure as a caller or a classifier describes it: any class, replay
/// safety and server hint (no hint, stop, or a delay from zero to far
/// beyond any cap), perhaps already retried below.
#[derive(Clone, Copy, Debug)]
pub struct AnyFailure(pub Failure);

impl<'a> Arbitrary<'a> for AnyFailure {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let class = *u.choose(&[
            FailureClass::Transient,
            FailureClass::Timeout,
            FailureClass::Overloaded,
            FailureClass::Permanent,
        ])?;
        let replay = *u.choose(&[Replay::Unknown, Replay::NotSent, Replay::Rejected])?;
        let mut failure = Failure::new(class, replay);
        match u.int_in_range(0..=3u8)? {
            0 | 1 => {}
            2 => failure = failure.with_retry_after(RetryAfter::Stop),
            _ => {
                let Span(delay) = u.arbitrary()?;
                failure = failure.with_retry_after(RetryAfter::Delay(delay));
            }
        }
        if u.ratio(1, 16)? {
            failure = failure.already_retried();
        }
        Ok(AnyFailure(failure))
    }
}

/// Any idempotency.
pub fn idempotency(u: &mut Unstructured<'_>) -> Result<Idempotency> {
    Ok(*u.choose(&[
        Idempotency::Idempotent,
        Idempotency::NonIdempotent,
        Idempotency::Keyed,
    ])?)
}
