//! What a runtime gives the drivers: a way to sleep, and a clock.

use core::future::Future;
use core::time::Duration;

use crate::time::Instant;

/// Sleeps for a `Duration`: the one thing a runtime must give the async
/// driver.
///
/// Any `Fn(Duration) -> impl Future` is a `Sleeper` — a runtime's sleep
/// function as it is (`async_io::Timer::after`, `tokio::time::sleep`), or a
/// closure. `Sleep` may have any output (async-io's `Timer` yields the
/// instant it fired); the driver ignores it. Dropping a `Sleep` must cancel
/// it.
///
/// ```
/// use core::future::{ready, Ready};
/// use core::time::Duration;
/// use stormguard::driver::Sleeper;
///
/// /// For tests: every sleep is over at once.
/// struct Instantly;
/// impl Sleeper for Instantly {
///     type Sleep = Ready<()>;
///     fn sleep(&self, _: Duration) -> Ready<()> { ready(()) }
/// }
/// let _sleep = Instantly.sleep(Duration::from_secs(1));
///
/// // A function is a sleeper too.
/// fn no_wait(_: Duration) -> Ready<()> { ready(()) }
/// let _sleep = no_wait.sleep(Duration::from_secs(1));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Sleeper`: a retried call needs a way to sleep",
    label = "no sleeper for this retried call",
    note = "give one with `.sleeper(...)` (any `Fn(Duration) -> impl Future` works, e.g. `async_io::Timer::after`), or start from a runtime adapter's `RetryExt` (`stormguard_smol::RetryExt`, `stormguard_async_std::RetryExt`), which sets it"
)]
pub trait Sleeper {
    /// The future of one sleep.
    type Sleep: Future;

    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Self::Sleep;
}

impl<F, Fut> Sleeper for F
where
    F: Fn(Duration) -> Fut,
    Fut: Future,
{
    type Sleep = Fut;

    fn sleep(&self, duration: Duration) -> Fut {
        self(duration)
    }
}

/// Reads the time, as an [`Instant`] since an origin of the clock's choosing.
///
/// Must be monotonic (`std::time::Instant`, a hardware timer); a clock that
/// goes backwards never makes the driver panic or wait longer than a backoff.
///
/// ```
/// use stormguard::driver::Clock;
/// use stormguard::Instant;
///
/// struct Fixed(Instant);
/// impl Clock for Fixed {
///     fn now(&self) -> Instant { self.0 }
/// }
/// assert_eq!(Fixed(Instant::from_secs(3)).now(), Instant::from_secs(3));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Clock`: a retried call needs a clock",
    label = "no clock for this retried call",
    note = "give one with `.clock(...)` (`stormguard::driver::StdClock` with `std`), or start from a runtime adapter's `RetryExt` (`stormguard_smol::RetryExt`, `stormguard_async_std::RetryExt`), which sets it"
)]
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// The monotonic clock of the standard library (`std::time::Instant`),
/// counted from the first time any `StdClock` is read in the process.
///
/// ```
/// use stormguard::driver::{Clock, StdClock};
/// let a = StdClock.now();
/// assert!(StdClock.now() >= a);
/// ```
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StdClock;

#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl Clock for StdClock {
    fn now(&self) -> Instant {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let origin = *ORIGIN.get_or_init(std::time::Instant::now);
        Instant::from_std(origin, std::time::Instant::now())
    }
}

/// The sleeper of a retried call that was not given one. It is not a
/// [`Sleeper`], so awaiting the call fails to compile, and its name — which
/// the compiler prints in the error ("`Retrying<…,
/// SetASleeperOrUseARuntimeAdapter, …>` is not a future") — says what to
/// do: `.sleeper(...)`, or start from a runtime adapter's `RetryExt`.
///
/// ```compile_fail
/// use core::future::ready;
/// use stormguard::driver::{RetryExt, StdClock};
/// let policy = stormguard::RetryPolicy::default();
/// // No `.sleeper(...)`: does not compile.
/// let _ = core::future::IntoFuture::into_future((|| ready(Ok::<(), ()>(()))).retry(&policy).clock(StdClock));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SetASleeperOrUseARuntimeAdapter;

/// The clock of a retried call that was not given one. It is not a
/// [`Clock`], so awaiting the call fails to compile, and its name, printed
/// in the error, says what to do: `.clock(...)`, or start from a runtime
/// adapter's `RetryExt`.
///
/// ```compile_fail
/// use core::future::{ready, Ready};
/// use core::time::Duration;
/// use stormguard::driver::RetryExt;
/// fn no_wait(_: Duration) -> Ready<()> { ready(()) }
/// let policy = stormguard::RetryPolicy::default();
/// // No `.clock(...)`: does not compile.
/// let _ = core::future::IntoFuture::into_future((|| ready(Ok::<(), ()>(()))).retry(&policy).sleeper(no_wait));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SetAClockOrUseARuntimeAdapter;
