//! A cost-based retry bucket: the AWS SDKs' "standard" retry quota.

use crate::budget::{Budget, Withdrawal};
use crate::config::{preset, ConfigError, ConfigErrorKind};
use crate::failure::{Failure, FailureClass};
use crate::sync::{const_unless_loom, transition_u32, AtomicU32, Ordering};
use crate::time::Instant;

/// A bucket where each retry costs tokens by failure class, a successful
/// retry refunds its cost, and a first-try success earns a little back.
///
/// This is the retry quota of the AWS SDKs' "standard" retry mode
/// ([`CostBucket::aws_standard`]: capacity 500, a retry costs 5, a timeout
/// retry 10, a first-try success adds 1, a success after retries refunds the
/// last retry's cost; failures refund nothing). Timeouts cost more because a
/// timed-out server is likely still working on the request. The bucket
/// starts full; when it cannot pay for a retry, the call gives up with
/// [`GiveUp::BudgetExhausted`](crate::GiveUp::BudgetExhausted).
///
/// One `AtomicU32`; a withdrawal is one compare-and-swap. 16 bytes.
///
/// ```
/// use stormguard::{Budget, CostBucket, Failure, Instant};
///
/// let quota = CostBucket::aws_standard();
/// let now = Instant::ZERO;
/// let paid = quota.try_retry(&Failure::timeout(), now).unwrap();
/// assert_eq!((paid.cost(), quota.tokens()), (10, 490));
/// quota.on_success(Some(paid), now); // the retry succeeded: refunded
/// assert_eq!(quota.tokens(), 500);
/// ```
#[derive(Debug)]
pub struct CostBucket {
    tokens: AtomicU32,
    capacity: u32,
    retry_cost: u16,
    timeout_cost: u16,
    throttling_cost: u16,
    success_reward: u16,
}

impl CostBucket {
    const_unless_loom! {
        /// A full bucket of `capacity` tokens. A retry costs `retry_cost`,
        /// or `timeout_cost` after a [`FailureClass::Timeout`], or
        /// `throttling_cost` after a [`FailureClass::Overloaded`]; a
        /// first-try success adds `success_reward`.
        ///
        /// # Errors
        /// `capacity` zero; any cost zero (a free retry makes the bucket
        /// pointless) or above `capacity`.
        ///
        /// ```
        /// use stormguard::CostBucket;
        /// let b = CostBucket::new(100, 5, 10, 5, 1)?;
        /// assert_eq!(b.tokens(), 100);
        /// assert_eq!(CostBucket::new(100, 0, 10, 5, 1).unwrap_err().field(), "retry_cost");
        /// # Ok::<(), stormguard::ConfigError>(())
        /// ```
        pub const fn new(
            capacity: u32,
            retry_cost: u16,
            timeout_cost: u16,
            throttling_cost: u16,
            success_reward: u16,
        ) -> Result<CostBucket, ConfigError> {
            match CostBucket::validate(capacity, retry_cost, timeout_cost, throttling_cost, success_reward) {
                Ok(()) => Ok(CostBucket::new_unchecked(capacity, retry_cost, timeout_cost, throttling_cost, success_reward)),
                Err(error) => Err(error),
            }
        }
    }

    /// The checks of [`CostBucket::new`]; any `success_reward` is valid.
    const fn validate(
        capacity: u32,
        retry_cost: u16,
        timeout_cost: u16,
        throttling_cost: u16,
        _success_reward: u16,
    ) -> Result<(), ConfigError> {
        if capacity == 0 {
            return Err(ConfigError::new("capacity", ConfigErrorKind::Zero));
        }
        let costs = [
            ("retry_cost", retry_cost),
            ("timeout_cost", timeout_cost),
            ("throttling_cost", throttling_cost),
        ];
        let mut i = 0;
        while i < costs.len() {
            let (field, cost) = costs[i];
            if cost == 0 {
                return Err(ConfigError::new(field, ConfigErrorKind::Zero));
            }
            if cost as u32 > capacity {
                return Err(ConfigError::new(
                    field,
                    ConfigErrorKind::OutOfRange("at most capacity"),
                ));
            }
            i += 1;
        }
        Ok(())
    }

    const_unless_loom! {
        /// A full bucket, from settings [`CostBucket::validate`] accepted.
        const fn new_unchecked(
            capacity: u32,
            retry_cost: u16,
            timeout_cost: u16,
            throttling_cost: u16,
            success_reward: u16,
        ) -> CostBucket {
            CostBucket {
                tokens: AtomicU32::new(capacity),
                capacity,
                retry_cost,
                timeout_cost,
                throttling_cost,
                success_reward,
            }
        }
    }

    const_unless_loom! {
        /// The AWS SDKs' "standard" retry mode quota: capacity 500, retry
        /// cost 5, timeout retry cost 10, first-try success +1.
        ///
        /// ```
        /// assert_eq!(stormguard::CostBucket::aws_standard().tokens(), 500);
        /// ```
        pub const fn aws_standard() -> CostBucket {
            preset!(CostBucket(500, 5, 10, 5, 1))
        }
    }

    const_unless_loom! {
        /// The newer (opt-in, 2026) AWS behaviour: retries and timeout
        /// retries cost 14, throttling retries 5, capacity 500.
        ///
        /// ```
        /// use stormguard::{Budget, CostBucket, Failure, Instant};
        /// let b = CostBucket::aws_v2_1();
        /// assert_eq!(b.try_retry(&Failure::overloaded(), Instant::ZERO).unwrap().cost(), 5);
        /// assert_eq!(b.try_retry(&Failure::transient(), Instant::ZERO).unwrap().cost(), 14);
        /// ```
        pub const fn aws_v2_1() -> CostBucket {
            preset!(CostBucket(500, 14, 14, 5, 1))
        }
    }

    /// What a retry after `class` costs.
    ///
    /// ```
    /// use stormguard::{CostBucket, FailureClass};
    /// assert_eq!(CostBucket::aws_standard().cost_of(FailureClass::Timeout), 10);
    /// ```
    pub const fn cost_of(&self, class: FailureClass) -> u16 {
        match class {
            FailureClass::Timeout => self.timeout_cost,
            FailureClass::Overloaded => self.throttling_cost,
            FailureClass::Transient | FailureClass::Permanent => self.retry_cost,
        }
    }

    /// The tokens in the bucket.
    ///
    /// ```
    /// assert_eq!(stormguard::CostBucket::aws_standard().tokens(), 500);
    /// ```
    pub fn tokens(&self) -> u32 {
        self.tokens.load(Ordering::Acquire)
    }

    #[inline]
    fn add(&self, amount: u32) {
        let capacity = self.capacity;
        let _ = transition_u32(&self.tokens, |t| {
            Ok::<_, ()>(((), t.saturating_add(amount).min(capacity)))
        });
    }
}

impl Budget for CostBucket {
    #[inline]
    fn try_retry(&self, failure: &Failure, _: Instant) -> Option<Withdrawal> {
        let cost = self.cost_of(failure.class());
        transition_u32(&self.tokens, |t| match t.checked_sub(cost as u32) {
            Some(left) => Ok((Withdrawal::new(cost), left)),
            None => Err(()),
        })
        .ok()
    }

    #[inline]
    fn on_success(&self, last_retry: Option<Withdrawal>, _: Instant) {
        match last_retry {
            Some(paid) => self.add(paid.cost() as u32),
            None => self.add(self.success_reward as u32),
        }
    }

    #[inline]
    fn needs_time(&self) -> bool {
        false
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_does_not_read_the_clock() {
        assert!(!CostBucket::aws_standard().needs_time());
    }

    #[test]
    fn aws_standard_arithmetic() {
        let b = CostBucket::aws_standard();
        let now = Instant::ZERO;
        // 100 transient retries drain it exactly.
        for _ in 0..100 {
            assert_eq!(
                b.try_retry(&Failure::transient(), now)
                    .map(Withdrawal::cost),
                Some(5)
            );
        }
        assert_eq!(b.tokens(), 0);
        assert!(b.try_retry(&Failure::transient(), now).is_none());
        // First-try successes earn 1 each; failures refund nothing.
        for _ in 0..9 {
            b.on_success(None, now);
        }
        assert_eq!(b.tokens(), 9);
        assert!(
            b.try_retry(&Failure::timeout(), now).is_none(),
            "a timeout retry needs 10"
        );
        let paid = b.try_retry(&Failure::overloaded(), now).unwrap();
        assert_eq!(b.tokens(), 4);
        b.on_success(Some(paid), now);
        assert_eq!(b.tokens(), 9);
    }

    #[test]
    fn never_above_capacity() {
        let b = CostBucket::aws_standard();
        for _ in 0..10 {
            b.on_success(None, Instant::ZERO);
            b.on_success(Some(Withdrawal::new(10)), Instant::ZERO);
        }
        assert_eq!(b.tokens(), 500);
    }

    #[test]
    fn validation() {
        assert_eq!(
            CostBucket::new(0, 5, 10, 5, 1).unwrap_err().field(),
            "capacity"
        );
        assert_eq!(
            CostBucket::new(500, 5, 0, 5, 1).unwrap_err().field(),
            "timeout_cost"
        );
        assert_eq!(
            CostBucket::new(500, 5, 10, 501, 1).unwrap_err().field(),
            "throttling_cost"
        );
        assert!(CostBucket::new(1, 1, 1, 1, 0).is_ok());
    }
}
