//! The ratio budget of Finagle, Linkerd and tower: retries as a fraction of
//! requests, with a floor.

use core::time::Duration;

use crate::budget::{Budget, Withdrawal};
use crate::config::{preset, ConfigError, ConfigErrorKind};
use crate::failure::Failure;
use crate::sync::{const_unless_loom, transition_u128, AtomicU128, Ordering};
use crate::time::{duration_to_nanos, Instant};

/// Retries may be at most `ratio` of requests, plus a floor of
/// `min_per_second`.
///
/// Every logical request deposits `ratio` of a retry; every retry withdraws
/// one. A reserve refilled at `min_per_second` (holding at most
/// `min_per_second × ttl`) lets a client with little traffic still retry.
/// With the dependency fully down, the retry rate converges to
/// `ratio × request rate + min_per_second` — with the defaults, 20 % extra
/// load instead of the (retries + 1)× of blind retries.
///
/// Deposits fade with time constant `ttl` (each `ttl / 1000` tick takes
/// 1/1000 of them), so the balance holds about `ratio × (requests in the
/// last ttl)`, as Finagle's expiring deposits do. That is the cap a plain
/// counter of deposits lacks: with one, hours of healthy traffic bank tokens
/// without bound, and the next outage releases them as one burst of
/// thousands of retries. The deposits are also hard-capped at 4 294 967
/// retries.
///
/// Defaults are Linkerd's (ratio 0.2, 10 per second, ttl 10 s); validation
/// follows Finagle (ttl in [1 s, 60 s], ratio in [0, 1000]).
///
/// # Lock-freedom
/// The whole state — the tick the balance is accounted up to, the deposits
/// and the reserve (in thousandths of a retry) — is one 128-bit atomic
/// word, and every operation is one compare-and-swap on it: moving the
/// clock, fading and refilling for the ticks it moved, and the withdrawal
/// are one transition. Never a check followed by a separate subtraction,
/// which lets racing retries overdraw (tower's `TpsBudget` does that, under
/// a `Mutex`, reading the clock on every call); and never a clock published
/// in one step and its refill applied in another, where a withdrawal landing
/// between them is undone when the refill is clamped at the cap.
///
/// The word is lock-free where the CPU has a 128-bit compare-and-swap
/// (x86-64 with `cmpxchg16b`, detected at run time; aarch64; powerpc64;
/// riscv64 with `zacas`); elsewhere `portable-atomic` runs it under its
/// fallback lock (or a critical section, with the `critical-section`
/// feature). 48 bytes.
///
/// ```
/// use core::time::Duration;
/// use stormguard::{Budget, Failure, Instant, RetryBudget};
///
/// let budget = RetryBudget::new(0.2, 0, Duration::from_secs(10))?; // no floor
/// let now = Instant::from_secs(1);
/// for _ in 0..10 {
///     budget.on_request(now); // 10 requests deposit 2 retries
/// }
/// let f = Failure::transient();
/// assert!(budget.try_retry(&f, now).is_some());
/// assert!(budget.try_retry(&f, now).is_some());
/// assert!(budget.try_retry(&f, now).is_none());
/// # Ok::<(), stormguard::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    /// A [`State`], packed.
    state: AtomicU128,
    deposit_milli: u32,
    reserve_milli_per_tick: u32,
    reserve_cap_milli: u32,
    tick_nanos: u64,
}

/// Thousandths of a retry: one retry costs this much.
const RETRY: u32 = 1000;
/// The fading and the refill happen in steps of ttl / TICKS_PER_TTL.
const TICKS_PER_TTL: u64 = 1000;
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(60);
/// Keeps `min_per_second × ttl × 1000` within a u32.
const MAX_MIN_PER_SECOND: u32 = 50_000;

/// What the one atomic word holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    /// The tick (`now / tick`) the balance is accounted up to.
    tick: u64,
    /// Deposits, in thousandths of a retry; they fade.
    deposits: u32,
    /// The floor's reserve, in thousandths of a retry; it refills.
    reserve: u32,
}

impl State {
    const fn pack(self) -> u128 {
        ((self.tick as u128) << 64) | ((self.deposits as u128) << 32) | self.reserve as u128
    }

    const fn unpack(word: u128) -> State {
        State {
            tick: (word >> 64) as u64,
            deposits: (word >> 32) as u32,
            reserve: word as u32,
        }
    }

    const fn balance(self) -> u64 {
        self.deposits as u64 + self.reserve as u64
    }
}

impl RetryBudget {
    const_unless_loom! {
        /// A budget letting retries be `ratio` of requests, plus
        /// `min_per_second`, remembered over `ttl`. Starts with a full
        /// reserve (`min_per_second × ttl` retries) and no deposits.
        ///
        /// # Errors
        /// `ratio` not finite or outside [0, 1000]; `min_per_second` above
        /// 50 000; `ttl` outside [1 s, 60 s].
        ///
        /// ```
        /// use core::time::Duration;
        /// use stormguard::RetryBudget;
        /// let err = RetryBudget::new(0.2, 10, Duration::from_millis(10)).unwrap_err();
        /// assert_eq!(err.to_string(), "invalid ttl: must be between 1 s and 60 s");
        /// ```
        pub const fn new(ratio: f64, min_per_second: u32, ttl: Duration) -> Result<RetryBudget, ConfigError> {
            match RetryBudget::validate(ratio, min_per_second, ttl) {
                Ok(()) => Ok(RetryBudget::new_unchecked(ratio, min_per_second, ttl)),
                Err(error) => Err(error),
            }
        }
    }

    /// The checks of [`RetryBudget::new`].
    const fn validate(ratio: f64, min_per_second: u32, ttl: Duration) -> Result<(), ConfigError> {
        if !ratio.is_finite() {
            return Err(ConfigError::new("ratio", ConfigErrorKind::NotFinite));
        }
        if ratio < 0.0 || ratio > 1000.0 {
            return Err(ConfigError::new(
                "ratio",
                ConfigErrorKind::OutOfRange("between 0 and 1000"),
            ));
        }
        if min_per_second > MAX_MIN_PER_SECOND {
            return Err(ConfigError::new(
                "min_per_second",
                ConfigErrorKind::OutOfRange("at most 50000"),
            ));
        }
        if ttl.as_nanos() < MIN_TTL.as_nanos() || ttl.as_nanos() > MAX_TTL.as_nanos() {
            return Err(ConfigError::new(
                "ttl",
                ConfigErrorKind::OutOfRange("between 1 s and 60 s"),
            ));
        }
        Ok(())
    }

    const_unless_loom! {
        /// A budget from settings [`RetryBudget::validate`] accepted (with a
        /// `ttl` of at least 1 s, a tick is at least 1 ms: never zero).
        const fn new_unchecked(ratio: f64, min_per_second: u32, ttl: Duration) -> RetryBudget {
            let ttl_nanos = duration_to_nanos(ttl);
            let tick_nanos = ttl_nanos / TICKS_PER_TTL;
            // min/s × 1000 milli × tick seconds; exact for whole milliseconds.
            let reserve_milli_per_tick = (min_per_second as u64 * RETRY as u64 * tick_nanos / 1_000_000_000) as u32;
            let reserve_cap_milli = (min_per_second as u64 * RETRY as u64 * ttl_nanos / 1_000_000_000) as u32;
            let start = State { tick: 0, deposits: 0, reserve: reserve_cap_milli };
            RetryBudget {
                state: AtomicU128::new(start.pack()),
                deposit_milli: (ratio * RETRY as f64 + 1e-6) as u32,
                reserve_milli_per_tick,
                reserve_cap_milli,
                tick_nanos,
            }
        }
    }

    const_unless_loom! {
        /// Linkerd's defaults: ratio 0.2, 10 retries per second, ttl 10 s.
        ///
        /// ```
        /// let b = stormguard::RetryBudget::linkerd();
        /// assert_eq!(b.available_milli(stormguard::Instant::ZERO), 100_000); // 100 retries when idle
        /// ```
        pub const fn linkerd() -> RetryBudget {
            preset!(RetryBudget(0.2, 10, Duration::from_secs(10)))
        }
    }

    /// Records one logical request: deposits `ratio` of a retry.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::RetryBudget::new(0.5, 0, Duration::from_secs(10))?;
    /// b.deposit(stormguard::Instant::ZERO);
    /// assert_eq!(b.available_milli(stormguard::Instant::ZERO), 500);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn deposit(&self, now: Instant) {
        let deposit = self.deposit_milli;
        let _ = self.transition(now, |state| {
            Ok::<_, ()>((
                (),
                State {
                    deposits: state.deposits.saturating_add(deposit),
                    ..state
                },
            ))
        });
    }

    /// Withdraws one retry if the balance holds one — deposits first, then
    /// the reserve — in a single compare-and-swap.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stormguard::{Instant, RetryBudget};
    /// let b = RetryBudget::new(0.2, 1, Duration::from_secs(2))?; // reserve: 2 retries
    /// assert!(b.withdraw(Instant::ZERO));
    /// assert!(b.withdraw(Instant::ZERO));
    /// assert!(!b.withdraw(Instant::ZERO));
    /// assert!(b.withdraw(Instant::from_secs(1))); // refilled at 1 per second
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn withdraw(&self, now: Instant) -> bool {
        self.transition(now, |state| {
            if state.balance() < RETRY as u64 {
                return Err(());
            }
            let from_deposits = state.deposits.min(RETRY);
            Ok((
                (),
                State {
                    deposits: state.deposits - from_deposits,
                    reserve: state.reserve - (RETRY - from_deposits),
                    ..state
                },
            ))
        })
        .is_ok()
    }

    /// The balance now, in thousandths of a retry.
    ///
    /// ```
    /// use core::time::Duration;
    /// let b = stormguard::RetryBudget::new(0.2, 10, Duration::from_secs(10))?;
    /// assert_eq!(b.available_milli(stormguard::Instant::ZERO), 100_000);
    /// # Ok::<(), stormguard::ConfigError>(())
    /// ```
    pub fn available_milli(&self, now: Instant) -> u64 {
        let word = self.state.load(Ordering::Acquire);
        self.at(State::unpack(word), now).balance()
    }

    /// The state `state` becomes at `now`: moved to `now`'s tick, its
    /// deposits faded and its reserve refilled for exactly the ticks in
    /// between. A `now` at or before the state's tick (the same tick, or a
    /// clock that went backwards) changes nothing.
    #[inline]
    fn at(&self, state: State, now: Instant) -> State {
        let tick = now.as_nanos() / self.tick_nanos;
        if tick <= state.tick {
            return state;
        }
        let ticks = tick - state.tick;
        if ticks >= TICKS_PER_TTL {
            // A whole ttl: every deposit faded, the reserve full.
            return State {
                tick,
                deposits: 0,
                reserve: self.reserve_cap_milli,
            };
        }
        let faded = (state.deposits as u64 * ticks / TICKS_PER_TTL) as u32;
        let refill = self.reserve_milli_per_tick as u64 * ticks;
        let reserve = (state.reserve as u64 + refill).min(self.reserve_cap_milli as u64);
        State {
            tick,
            deposits: state.deposits - faded,
            reserve: reserve as u32,
        }
    }

    /// Moves the state to `now` and applies `operation` to it, as one
    /// compare-and-swap; `Err` leaves the word untouched (time included: a
    /// refused withdrawal writes nothing).
    #[inline]
    fn transition<T, E>(
        &self,
        now: Instant,
        mut operation: impl FnMut(State) -> Result<(T, State), E>,
    ) -> Result<T, E> {
        transition_u128(&self.state, |word| {
            let (output, next) = operation(self.at(State::unpack(word), now))?;
            Ok((output, next.pack()))
        })
    }
}

impl Default for RetryBudget {
    /// [`RetryBudget::linkerd`]'s numbers.
    fn default() -> Self {
        RetryBudget::linkerd()
    }
}

impl Budget for RetryBudget {
    #[inline]
    fn on_request(&self, now: Instant) {
        self.deposit(now);
    }

    #[inline]
    fn try_retry(&self, _: &Failure, now: Instant) -> Option<Withdrawal> {
        self.withdraw(now).then_some(Withdrawal::FREE)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    #[test]
    fn idle_budget_holds_the_floor() {
        // Finagle: idle, 100 retries available (10/s × 10 s).
        let b = RetryBudget::default();
        let now = Instant::from_secs(1000);
        let granted = (0..1000).take_while(|_| b.withdraw(now)).count();
        assert_eq!(granted, 100);
    }

    #[test]
    fn deposits_buy_ratio_retries() {
        let b = RetryBudget::new(0.25, 0, TTL).unwrap();
        let now = Instant::from_secs(5);
        for _ in 0..40 {
            b.deposit(now);
        }
        let granted = (0..100).take_while(|_| b.withdraw(now)).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn hours_of_healthy_traffic_do_not_bank_a_burst() {
        // 1000 requests/s for an hour, never a retry. A counter that never
        // forgets would hold 360 000 tokens; this one holds about
        // ratio × 1000 × ttl.
        let b = RetryBudget::new(0.1, 0, TTL).unwrap();
        let mut now = Instant::ZERO;
        for _ in 0..(3600 * 100) {
            // 10 requests every 10 ms.
            for _ in 0..10 {
                b.deposit(now);
            }
            now += Duration::from_millis(10);
        }
        let available = b.available_milli(now) / 1000;
        assert!((900..=1100).contains(&available), "{available}");
    }

    #[test]
    fn deposits_fade_over_ttl() {
        let b = RetryBudget::new(1.0, 0, TTL).unwrap();
        for _ in 0..100 {
            b.deposit(Instant::ZERO);
        }
        assert_eq!(b.available_milli(Instant::ZERO), 100_000);
        let half = b.available_milli(Instant::from_secs(5));
        assert!((49_000..=51_000).contains(&half), "{half}");
        assert_eq!(b.available_milli(Instant::from_secs(20)), 0);
    }

    #[test]
    fn an_emptied_reserve_refills_at_its_rate() {
        // 10 retries a second, up to 100 (10 s × 10/s); no deposits.
        let b = RetryBudget::new(0.0, 10, TTL).unwrap();
        let start = Instant::from_secs(100);
        assert_eq!((0..200).take_while(|_| b.withdraw(start)).count(), 100);
        assert_eq!(b.available_milli(start), 0);
        // One second (100 of the ttl's 1000 ticks) refills 10 retries.
        let one = Instant::from_secs(101);
        assert_eq!(b.available_milli(one), 10_000);
        assert_eq!((0..200).take_while(|_| b.withdraw(one)).count(), 10);
        // Two and a half more seconds: 25 more.
        assert_eq!(b.available_milli(Instant::from_millis(103_500)), 25_000);
    }

    #[test]
    fn backwards_clock_changes_nothing() {
        let b = RetryBudget::new(0.5, 1, TTL).unwrap();
        b.deposit(Instant::from_secs(100));
        let before = b.available_milli(Instant::from_secs(100));
        assert_eq!(b.available_milli(Instant::from_secs(3)), before);
        assert!(b.withdraw(Instant::ZERO));
    }

    #[test]
    fn validation_names_fields() {
        let field = |r: Result<RetryBudget, ConfigError>| r.unwrap_err().field();
        assert_eq!(field(RetryBudget::new(f64::NAN, 10, TTL)), "ratio");
        assert_eq!(field(RetryBudget::new(-0.1, 10, TTL)), "ratio");
        assert_eq!(field(RetryBudget::new(1000.5, 10, TTL)), "ratio");
        assert_eq!(field(RetryBudget::new(0.2, 50_001, TTL)), "min_per_second");
        assert_eq!(
            field(RetryBudget::new(0.2, 10, Duration::from_secs(61))),
            "ttl"
        );
        assert!(RetryBudget::new(1000.0, 50_000, Duration::from_secs(60)).is_ok());
        assert!(RetryBudget::new(0.0, 0, Duration::from_secs(1)).is_ok());
    }
}
