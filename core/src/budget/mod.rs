//! Retry budgets: the limit on retries shared by every call of a client.
//!
//! A per-call attempt limit bounds one call; it does nothing against a
//! brownout, where *every* call fails and retries at once and the offered
//! load multiplies. A budget is shared by all calls (`&self`) and refuses
//! retries once they become too large a share of the traffic.
//!
//! [`Retry`](crate::Retry) (and so [`Call`](crate::Call)) talks to a budget through the [`Budget`] trait, at
//! four moments of a logical call:
//!
//! 1. its first outcome is reported → [`Budget::on_request`] (ratio budgets
//!    deposit here);
//! 2. an attempt failed with a failure that counts (a retryable class, or a
//!    server that said stop) → [`Budget::on_failure`] (gRPC's throttle takes a
//!    token here, whether or not the call will retry);
//! 3. every other gate has allowed a retry → [`Budget::try_retry`], which
//!    withdraws in one step and may refuse;
//! 4. the call succeeded → [`Budget::on_success`], with the cost of the last
//!    retry when the success came after one (the AWS bucket refunds it).
//!
//! Which budget to pick when: see the table in the [crate docs](crate#which-budget-to-pick).
//!
//! All are `Sync`, take `&self` and `now`, allocate nothing, and are one or
//! two atomic words changed by compare-and-swap (lock-free on targets with
//! atomic CAS; on `thumbv6m-none-eabi` enable the `critical-section`
//! feature). A withdrawal is one compare-and-swap that checks and takes
//! together.

use crate::failure::Failure;
use crate::time::Instant;

mod cost;
mod rate;
mod ratio;
mod throttle;

pub use cost::CostBucket;
pub use rate::RateBudget;
pub use ratio::RetryBudget;
pub use throttle::Throttle;

/// What a granted retry cost, handed back to [`Budget::on_success`] so a
/// budget can refund it (AWS SDK "standard" mode refunds the last retry's
/// cost when the call succeeds).
///
/// ```
/// use stormguard::Withdrawal;
/// assert_eq!(Withdrawal::new(5).cost(), 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Withdrawal {
    cost: u16,
}

impl Withdrawal {
    /// A withdrawal of `cost` units of the budget's own currency.
    ///
    /// ```
    /// assert_eq!(stormguard::Withdrawal::new(10).cost(), 10);
    /// ```
    pub const fn new(cost: u16) -> Self {
        Withdrawal { cost }
    }

    /// A withdrawal that cost nothing (budgets that refund nothing use it).
    ///
    /// ```
    /// assert_eq!(stormguard::Withdrawal::FREE.cost(), 0);
    /// ```
    pub const FREE: Withdrawal = Withdrawal { cost: 0 };

    /// The cost, in the budget's own units.
    ///
    /// ```
    /// assert_eq!(stormguard::Withdrawal::new(1).cost(), 1);
    /// ```
    pub const fn cost(self) -> u16 {
        self.cost
    }
}

/// A limit on retries shared by every call of a client.
///
/// Implementations take `&self` and must be safe to share between threads
/// when they are `Sync`. Every method takes `now` so a budget never reads a
/// clock. Only [`try_retry`](Budget::try_retry) is required; the hooks
/// default to doing nothing.
///
/// ```
/// use core::cell::Cell;
/// use stormguard::{Budget, Failure, Instant, Withdrawal};
///
/// /// At most `n` retries in the lifetime of the program (single-threaded).
/// struct Lifetime(Cell<u32>);
///
/// impl Budget for Lifetime {
///     fn try_retry(&self, _: &Failure, _: Instant) -> Option<Withdrawal> {
///         let left = self.0.get();
///         (left > 0).then(|| { self.0.set(left - 1); Withdrawal::new(1) })
///     }
/// }
///
/// let budget = Lifetime(Cell::new(1));
/// assert!(budget.try_retry(&Failure::transient(), Instant::ZERO).is_some());
/// assert!(budget.try_retry(&Failure::transient(), Instant::ZERO).is_none());
/// ```
pub trait Budget {
    /// A logical call reported its first outcome. Ratio budgets deposit
    /// here. Called once per call, before any `on_failure` or `on_success`
    /// of that call.
    fn on_request(&self, now: Instant) {
        let _ = now;
    }

    /// An attempt failed with a failure that counts against the budget: a
    /// retryable class, or a server that said stop. Called whether or not
    /// the call will retry — gRPC's throttle takes a token for every such
    /// failure.
    fn on_failure(&self, failure: &Failure, now: Instant) {
        let _ = (failure, now);
    }

    /// Asks to spend one retry, after every other gate allowed it. Returns
    /// what it cost, or `None` to refuse (the call gives up with
    /// [`GiveUp::BudgetExhausted`](crate::GiveUp::BudgetExhausted)).
    ///
    /// Must check and withdraw in one atomic step: a check followed by a
    /// separate withdrawal lets racing retries overdraw the budget.
    fn try_retry(&self, failure: &Failure, now: Instant) -> Option<Withdrawal>;

    /// The call succeeded. `last_retry` is the cost of the retry that led to
    /// this success, or `None` when the first attempt succeeded.
    fn on_success(&self, last_retry: Option<Withdrawal>, now: Instant) {
        let _ = (last_retry, now);
    }

    /// Whether the budget uses the `now` it is given. A driver may skip
    /// reading a clock for a budget that does not (see
    /// [`Call::needs_clock`](crate::Call::needs_clock)). `true` unless a
    /// budget says otherwise, which is always safe.
    ///
    /// ```
    /// use stormguard::{Budget, NoBudget, RetryBudget, Throttle};
    /// assert!(RetryBudget::default().needs_time());
    /// assert!(!Throttle::new(10, 0.1)?.needs_time());
    /// assert!(!NoBudget.needs_time());
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    fn needs_time(&self) -> bool {
        true
    }
}

/// A budget that allows every retry: per-call limits only.
///
/// The right choice when one client cannot overload its server (a single
/// device talking to a large service), or in tests.
///
/// ```
/// use stormguard::{Budget, Failure, Instant, NoBudget};
/// assert!(NoBudget.try_retry(&Failure::overloaded(), Instant::ZERO).is_some());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoBudget;

impl Budget for NoBudget {
    #[inline]
    fn try_retry(&self, _: &Failure, _: Instant) -> Option<Withdrawal> {
        Some(Withdrawal::FREE)
    }

    #[inline]
    fn needs_time(&self) -> bool {
        false
    }
}

/// `None` is no budget ([`NoBudget`]): a budget chosen at run time.
///
/// ```
/// use stormguard::{Budget, Failure, Instant, Throttle};
/// let none: Option<&Throttle> = None;
/// assert!(none.try_retry(&Failure::transient(), Instant::ZERO).is_some());
/// ```
impl<B: Budget> Budget for Option<B> {
    #[inline]
    fn on_request(&self, now: Instant) {
        if let Some(b) = self {
            b.on_request(now)
        }
    }

    #[inline]
    fn on_failure(&self, failure: &Failure, now: Instant) {
        if let Some(b) = self {
            b.on_failure(failure, now)
        }
    }

    #[inline]
    fn try_retry(&self, failure: &Failure, now: Instant) -> Option<Withdrawal> {
        match self {
            Some(b) => b.try_retry(failure, now),
            None => NoBudget.try_retry(failure, now),
        }
    }

    #[inline]
    fn on_success(&self, last_retry: Option<Withdrawal>, now: Instant) {
        if let Some(b) = self {
            b.on_success(last_retry, now)
        }
    }

    #[inline]
    fn needs_time(&self) -> bool {
        self.as_ref().is_some_and(B::needs_time)
    }
}

/// A budget behind a reference — or, with `std`, a smart pointer
/// (`Arc<Throttle>`, `Rc<dyn Budget>`, `Box<dyn Budget>`) — is a budget.
macro_rules! forward_budget {
    ($(#[$attr:meta])* $pointer:ty) => {
        $(#[$attr])*
        impl<B: Budget + ?Sized> Budget for $pointer {
            #[inline]
            fn on_request(&self, now: Instant) {
                (**self).on_request(now)
            }

            #[inline]
            fn on_failure(&self, failure: &Failure, now: Instant) {
                (**self).on_failure(failure, now)
            }

            #[inline]
            fn try_retry(&self, failure: &Failure, now: Instant) -> Option<Withdrawal> {
                (**self).try_retry(failure, now)
            }

            #[inline]
            fn on_success(&self, last_retry: Option<Withdrawal>, now: Instant) {
                (**self).on_success(last_retry, now)
            }

            #[inline]
            fn needs_time(&self) -> bool {
                (**self).needs_time()
            }
        }
    };
}

forward_budget!(&B);
forward_budget!(
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    std::boxed::Box<B>
);
forward_budget!(
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    std::rc::Rc<B>
);
forward_budget!(
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    std::sync::Arc<B>
);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{RetryBudget, Throttle};
    use core::time::Duration;

    #[test]
    fn an_option_forwards_every_call_to_its_budget() {
        let now = Instant::from_secs(1);
        let f = Failure::transient();

        let throttle = Some(Throttle::new(10, 0.5).unwrap());
        let tokens = || throttle.as_ref().unwrap().tokens_milli();
        throttle.on_failure(&f, now);
        assert_eq!(tokens(), 9_000);
        throttle.on_success(None, now);
        assert_eq!(tokens(), 9_500);
        assert!(throttle.try_retry(&f, now).is_some());
        for _ in 0..5 {
            throttle.on_failure(&f, now);
        }
        assert_eq!(tokens(), 4_500);
        assert!(throttle.try_retry(&f, now).is_none());
        assert!(!throttle.needs_time());

        let ratio = Some(RetryBudget::new(0.5, 0, Duration::from_secs(10)).unwrap());
        assert!(ratio.try_retry(&f, now).is_none());
        ratio.on_request(now);
        ratio.on_request(now);
        assert!(ratio.try_retry(&f, now).is_some());
        assert!(ratio.try_retry(&f, now).is_none());
        assert!(ratio.needs_time());

        let none: Option<Throttle> = None;
        none.on_request(now);
        none.on_failure(&f, now);
        none.on_success(None, now);
        assert!(none.try_retry(&f, now).is_some());
        assert!(!none.needs_time());
    }
}
