//! The builder every driver shares: `(|| call()).retry(&policy)…`.

use core::borrow::Borrow;
use core::fmt;
use core::time::Duration;

use crate::adaptive::AdaptiveThrottle;
use crate::breaker::CircuitBreaker;
use crate::budget::{Budget, NoBudget};
use crate::call::Call;
use crate::driver::{
    AnyError, Clock, NoNotify, SetAClockOrUseARuntimeAdapter, SetASleeperOrUseARuntimeAdapter,
};
use crate::idempotency::Idempotency;
use crate::policy::RetryPolicy;
use crate::random::Random;

/// A retried call being configured.
///
/// Built by a `RetryExt::retry` — the core's [`RetryExt`](crate::driver::RetryExt)
/// or a runtime adapter's for an async operation, then `.await` it (it is
/// [`IntoFuture`](core::future::IntoFuture)); or
/// [`BlockingRetryExt::retry`](crate::driver::BlockingRetryExt) for a
/// blocking one, then [`.call()`](Retrying::call). The call — its deadline
/// included — starts with its first attempt. Every setting has a safe
/// default: no shared budget ([`NoBudget`]), no breaker, every error
/// transient ([`AnyError`]), no hook, no per-attempt timeout (the policy's
/// deadline still bounds every attempt), the policy's idempotency, and —
/// with `std` — a fresh random seed per call.
///
/// Without `std` there is no entropy to seed jitter from, so a call that was
/// not given [`.seed(...)`](Retrying::seed) does not compile: identical
/// devices rebooting together after a power cut must not retry in
/// lock-step.
///
/// ```
/// use core::time::Duration;
/// use stormguard::driver::RetryExt;
/// use stormguard::{CircuitBreaker, Failure, RetryPolicy, Throttle};
///
/// let policy = RetryPolicy::default();
/// let throttle = Throttle::new(10, 0.1)?;
/// let breaker = CircuitBreaker::default();
/// let call = (|| async { Err::<(), u16>(503) })
///     .retry(&policy)
///     .budget(&throttle)
///     .breaker(&breaker)
///     .when(|status| if *status >= 500 { Failure::transient() } else { Failure::permanent() })
///     .attempt_timeout(Duration::from_secs(2));
/// # let _ = call;
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[must_use = "a retried call does nothing until it is awaited (or, blocking, called)"]
pub struct Retrying<'a, Op, S, C, R, B = NoBudget, K = AnyError, N = NoNotify> {
    pub(crate) op: Op,
    pub(crate) sleeper: S,
    pub(crate) clock: C,
    pub(crate) budget: B,
    pub(crate) classify: K,
    pub(crate) notify: N,
    pub(crate) seed: R,
    pub(crate) settings: Settings<'a>,
}

/// The settings of a [`Retrying`] whose types never change.
pub(crate) struct Settings<'a> {
    pub(crate) policy: &'a RetryPolicy,
    pub(crate) breaker: Option<&'a CircuitBreaker>,
    pub(crate) throttle: Option<&'a AdaptiveThrottle>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) idempotency: Option<Idempotency>,
}

/// Where a retried call's jitter comes from: [`FreshSeed`] (the default,
/// only with `std`) or a [`Seed`] given with
/// [`.seed(...)`](Retrying::seed).
#[diagnostic::on_unimplemented(
    message = "this retried call has no seed for its jitter",
    label = "needs `.seed(...)`",
    note = "without `std` there is no entropy to draw a seed from: give each call a seed unique to the device and the call with `.seed(...)`, so that a fleet does not retry in lock-step"
)]
pub trait SeedSource {
    /// The generator.
    fn into_rng(self) -> Random;
}

/// A fresh seed per call, drawn from the thread's generator (with `std`).
///
/// ```
/// use stormguard::driver::{FreshSeed, SeedSource};
/// assert_ne!(FreshSeed.into_rng(), FreshSeed.into_rng());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FreshSeed;

#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl SeedSource for FreshSeed {
    fn into_rng(self) -> Random {
        Random::new()
    }
}

/// The seed of a call that was not given one: a [`FreshSeed`] with `std`;
/// without `std`, [`WithoutStdSetASeed`], which is no seed at all — the call
/// does not compile until `.seed(...)` gives one.
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub type DefaultSeed = FreshSeed;
/// The seed of a call that was not given one: a [`FreshSeed`] with `std`;
/// without `std`, [`WithoutStdSetASeed`], which is no seed at all — the call
/// does not compile until `.seed(...)` gives one.
#[cfg(not(feature = "std"))]
#[cfg_attr(docsrs, doc(cfg(not(feature = "std"))))]
pub type DefaultSeed = WithoutStdSetASeed;

/// The seed of a call made without `std` and without `.seed(...)`: not a
/// [`SeedSource`], so the call does not compile, and the compiler's error
/// ("`Retrying<…, WithoutStdSetASeed>` is not a future") names what to do.
/// There is no entropy to draw a seed from without `std`, and a silent
/// default would make identical devices retry in lock-step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WithoutStdSetASeed;

/// A seed given with [`.seed(...)`](Retrying::seed): the same seed, the
/// same delays.
///
/// ```
/// use stormguard::driver::{Seed, SeedSource};
/// assert_eq!(Seed(7).into_rng(), Seed(7).into_rng());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Seed(pub u64);

impl SeedSource for Seed {
    fn into_rng(self) -> Random {
        Random::with_seed(self.0)
    }
}

/// A retried call just made by `RetryExt::retry`, before a runtime is
/// given: the sleeper and clock slots hold placeholders whose names, in a
/// compiler error, say what is missing.
pub type Unconfigured<'a, Op> =
    Retrying<'a, Op, SetASleeperOrUseARuntimeAdapter, SetAClockOrUseARuntimeAdapter, DefaultSeed>;

impl<'a, Op> Unconfigured<'a, Op> {
    /// A retried call of `op` under `policy`, with every setting at its
    /// default and no runtime yet.
    pub(crate) fn new(op: Op, policy: &'a RetryPolicy) -> Self {
        Retrying {
            op,
            sleeper: SetASleeperOrUseARuntimeAdapter,
            clock: SetAClockOrUseARuntimeAdapter,
            budget: NoBudget,
            classify: AnyError,
            notify: NoNotify,
            seed: DefaultSeed::default(),
            settings: Settings {
                policy,
                breaker: None,
                throttle: None,
                attempt_timeout: None,
                idempotency: None,
            },
        }
    }
}

impl<'a, Op, S, C, B, K, N, R> Retrying<'a, Op, S, C, R, B, K, N> {
    /// The same call with its runtime, budget, hooks and seed passed
    /// through `f` (the builder methods that change a type use it).
    #[allow(clippy::type_complexity)]
    pub(crate) fn map<S2, C2, B2, K2, N2, R2>(
        self,
        f: impl FnOnce((S, C, B, K, N, R)) -> (S2, C2, B2, K2, N2, R2),
    ) -> Retrying<'a, Op, S2, C2, R2, B2, K2, N2> {
        let parts = (
            self.sleeper,
            self.clock,
            self.budget,
            self.classify,
            self.notify,
            self.seed,
        );
        let (sleeper, clock, budget, classify, notify, seed) = f(parts);
        Retrying {
            op: self.op,
            sleeper,
            clock,
            budget,
            classify,
            notify,
            seed,
            settings: self.settings,
        }
    }

    /// Reads the time from `clock` (the adapters set this for you).
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::{Clock, RetryExt};
    /// struct Zero;
    /// impl Clock for Zero { fn now(&self) -> stormguard::Instant { stormguard::Instant::ZERO } }
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).clock(Zero);
    /// # let _ = call;
    /// ```
    pub fn clock<C2: Clock>(self, clock: C2) -> Retrying<'a, Op, S, C2, R, B, K, N> {
        self.map(|(s, _, b, k, n, r)| (s, clock, b, k, n, r))
    }

    /// Shares `budget` (usually `&` a budget every call of the client
    /// shares) with the other calls; an `Option` of one is a budget too.
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// let policy = stormguard::RetryPolicy::default();
    /// let budget = stormguard::RetryBudget::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).budget(&budget);
    /// # let _ = call;
    /// ```
    pub fn budget<B2: Budget>(self, budget: B2) -> Retrying<'a, Op, S, C, R, B2, K, N> {
        self.map(|(s, c, _, k, n, r)| (s, c, budget, k, n, r))
    }

    /// Asks `breaker` before every attempt and tells it how the attempt
    /// went, by the rules of [`Call`]: a retryable failure counts against
    /// the service, a success for it; a permanent failure or an unsafe
    /// replay is neither. A refused attempt gives up at once with
    /// [`GiveUp::CircuitOpen`](crate::GiveUp::CircuitOpen).
    ///
    /// Takes `&breaker` or an `Option` of one, so a breaker chosen at run
    /// time needs no second call chain.
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// use stormguard::CircuitBreaker;
    /// let policy = stormguard::RetryPolicy::default();
    /// let breaker = CircuitBreaker::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).breaker(&breaker);
    /// let maybe: Option<&CircuitBreaker> = None;
    /// let other = (|| ready(Ok::<(), ()>(()))).retry(&policy).breaker(maybe);
    /// # let _ = (call, other);
    /// ```
    pub fn breaker(mut self, breaker: impl Into<Option<&'a CircuitBreaker>>) -> Self {
        self.settings.breaker = breaker.into();
        self
    }

    /// Asks the adaptive client `throttle` before every attempt (see
    /// [`AdaptiveThrottle`]): an attempt it rejects locally ends the call
    /// with [`GiveUp::ClientThrottled`](crate::GiveUp::ClientThrottled).
    /// Takes `&throttle` or an `Option` of one.
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// use stormguard::AdaptiveThrottle;
    /// let policy = stormguard::RetryPolicy::default();
    /// let throttle = AdaptiveThrottle::sre();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).throttle(&throttle);
    /// # let _ = call;
    /// ```
    pub fn throttle(mut self, throttle: impl Into<Option<&'a AdaptiveThrottle>>) -> Self {
        self.settings.throttle = throttle.into();
        self
    }

    /// This call's idempotency instead of the policy's (one non-idempotent
    /// method under a policy shared by a client).
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// use stormguard::Idempotency;
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).idempotency(Idempotency::NonIdempotent);
    /// # let _ = call;
    /// ```
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.settings.idempotency = Some(idempotency);
        self
    }

    /// Draws the jitter from `seed`: the same seed, the same delays. With
    /// `std` each call is otherwise seeded freshly; without `std` a seed is
    /// required (there is no entropy to draw on): give each call one unique
    /// to the device and the call.
    ///
    /// ```
    /// use core::future::ready;
    /// use stormguard::driver::RetryExt;
    /// let policy = stormguard::RetryPolicy::default();
    /// let call = (|| ready(Ok::<(), ()>(()))).retry(&policy).seed(42);
    /// # let _ = call;
    /// ```
    pub fn seed(self, seed: u64) -> Retrying<'a, Op, S, C, Seed, B, K, N> {
        self.map(|(s, c, b, k, n, _)| (s, c, b, k, n, Seed(seed)))
    }
}

impl<'a> Settings<'a> {
    /// The call's lifecycle, with everything the builder was given but
    /// its seed (see [`LazySeed`]).
    #[inline]
    pub(crate) fn start_call<B: Budget>(
        &self,
        budget: B,
    ) -> Call<&'a RetryPolicy, B, &'a CircuitBreaker, &'a AdaptiveThrottle> {
        let mut call = Call::from_parts(
            self.policy,
            Random::with_seed(0),
            budget,
            self.breaker,
            self.throttle,
        );
        if let Some(idempotency) = self.idempotency {
            call.set_idempotency(idempotency);
        }
        call
    }
}

/// The classifier and hook setters, whose closures' argument types are
/// inferred from the operation (`.when(|status| …)` needs no annotation).
/// Written once for the async and the blocking builder, which differ only
/// in where the error type comes from.
macro_rules! hook_setters {
    ($error:ty, $op:ty, $ext:literal, $call:literal, $end:literal) => {
        #[doc = concat!("Classifies errors with `classify` (a closure `&E -> Failure`;
see [`classify`](crate::classify) for HTTP and gRPC). Returning a
[`Failure`] lets it say what a `bool` cannot: whether the request may have
run, and what the server said about retrying.

```
use stormguard::classify::http;
use stormguard::driver::", $ext, ";
use stormguard::Failure;
let policy = stormguard::RetryPolicy::default();
let call = (", $call, ")
    .retry(&policy)
    .when(|status| http::failure_for_status(*status).unwrap_or(Failure::permanent()))", $end, ";
```")]
        pub fn when<K2>(self, classify: K2) -> Retrying<'a, $op, S, C, R, B, K2, N>
        where
            K2: FnMut(&$error) -> $crate::failure::Failure,
        {
            self.map(|(s, c, b, _, n, r)| (s, c, b, classify, n, r))
        }

        #[doc = concat!("Retries the errors for which `retry` is `true` (as
[`Failure::transient`]: still not replayed when it may have run and the call
is not idempotent), and no other.

```
use stormguard::driver::", $ext, ";
let policy = stormguard::RetryPolicy::default();
let call = (", $call, ")
    .retry(&policy)
    .retry_if(|status| *status == 503)", $end, ";
```")]
        pub fn retry_if<F>(self, retry: F) -> Retrying<'a, $op, S, C, R, B, $crate::driver::RetryIf<F>, N>
        where
            F: FnMut(&$error) -> bool,
        {
            self.map(|(s, c, b, _, n, r)| (s, c, b, $crate::driver::RetryIf(retry), n, r))
        }

        #[doc = concat!("Calls `notify` before each sleep with the failed attempt and the wait
(a closure `(&LastAttempt<E>, Duration)`), e.g. to log it.

```
use stormguard::driver::", $ext, ";
let policy = stormguard::RetryPolicy::default();
let call = (", $call, ")
    .retry(&policy)
    .notify(|last, after| eprintln!(\"{last}; retrying in {after:?}\"))", $end, ";
```")]
        pub fn notify<N2>(self, notify: N2) -> Retrying<'a, $op, S, C, R, B, K, N2>
        where
            N2: FnMut(&crate::driver::LastAttempt<$error>, Duration),
        {
            self.map(|(s, c, b, k, _, r)| (s, c, b, k, notify, r))
        }
    };
}
pub(crate) use hook_setters;

impl<Op, S, C, B, K, N, R> fmt::Debug for Retrying<'_, Op, S, C, R, B, K, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrying")
            .field("policy", self.settings.policy)
            .field("breaker", &self.settings.breaker.is_some())
            .field("attempt_timeout", &self.settings.attempt_timeout)
            .field("idempotency", &self.settings.idempotency)
            .finish_non_exhaustive()
    }
}

/// A call's seed, drawn (for a [`FreshSeed`], from the thread's generator)
/// only when the first failure needs jitter: a call that succeeds at once
/// costs no entropy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LazySeed<R>(Option<R>);

impl<R: SeedSource> LazySeed<R> {
    /// The seed of `call`: drawn now if the call draws random numbers before
    /// any failure (an adaptive throttle's draw at each attempt), else at
    /// the first failure.
    pub(crate) fn new<B: Budget>(
        seed: R,
        call: &mut Call<&RetryPolicy, B, &CircuitBreaker, &AdaptiveThrottle>,
    ) -> Self {
        let mut lazy = LazySeed(Some(seed));
        if call.draws_before_failure() {
            lazy.before_failure(call);
        }
        lazy
    }

    /// Seeds `call` before its first failure is reported.
    #[inline]
    pub(crate) fn before_failure<B: Budget>(
        &mut self,
        call: &mut Call<&RetryPolicy, B, &CircuitBreaker, &AdaptiveThrottle>,
    ) {
        if let Some(seed) = self.0.take() {
            call.reseed(seed.into_rng());
        }
    }
}

/// The shared part of every driver's loop around a [`Call`]: the instant
/// to hand to an attempt, read from the clock only when the call uses it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timekeeper {
    needs_clock: bool,
    last: crate::time::Instant,
}

impl Timekeeper {
    pub(crate) fn new<
        P: Borrow<RetryPolicy>,
        B: Budget,
        K: Borrow<CircuitBreaker>,
        T: Borrow<AdaptiveThrottle>,
    >(
        call: &Call<P, B, K, T>,
    ) -> Self {
        Timekeeper {
            needs_clock: call.needs_clock(),
            last: crate::time::Instant::ZERO,
        }
    }

    /// The time to begin an attempt at: the clock's, if the call uses it.
    #[inline]
    pub(crate) fn before_attempt(&mut self, clock: &impl Clock) -> crate::time::Instant {
        if self.needs_clock {
            self.last = clock.now();
        }
        self.last
    }

    /// The time a failure was observed: always the clock's.
    #[inline]
    pub(crate) fn after_failure(&mut self, clock: &impl Clock) -> crate::time::Instant {
        self.last = clock.now();
        self.last
    }
}
