//! A minimal executor and a timer the test drives: virtual time that jumps
//! to the next pending timer whenever the future under test waits, as
//! quinn-proto's tests do. No interrupts, no heap, no `unsafe`; the same on
//! the chip and on the host.

use core::cell::Cell;
use core::future::{Future, IntoFuture};
use core::pin::{pin, Pin};
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use stormguard::driver::{Clock, Sleeper};
use stormguard::Instant;

/// The test's clock and timer queue: the time now, the earliest deadline a
/// pending timer waits for, and counts of the driver's sleeps.
#[derive(Debug, Default)]
pub struct VirtualTime {
    now: Cell<u64>,
    next: Cell<Option<u64>>,
    created: Cell<u32>,
    live: Cell<u32>,
}

impl VirtualTime {
    /// Time zero, nothing pending.
    pub const fn new() -> Self {
        VirtualTime {
            now: Cell::new(0),
            next: Cell::new(None),
            created: Cell::new(0),
            live: Cell::new(0),
        }
    }

    /// The virtual time elapsed since zero.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now.get())
    }

    /// The sleeps the driver's sleeper created.
    pub fn sleeps_created(&self) -> u32 {
        self.created.get()
    }

    /// The driver's sleeps not yet dropped.
    pub fn sleeps_alive(&self) -> u32 {
        self.live.get()
    }

    /// The driver's sleeper on this timer.
    pub fn sleeper(&self) -> TestSleeper<'_> {
        TestSleeper(self)
    }

    /// A timer for the operation under test (not counted as a driver sleep).
    pub fn after(&self, duration: Duration) -> Sleep<'_> {
        Sleep {
            time: self,
            deadline: self.now.get().saturating_add(nanos(duration)),
            counted: false,
        }
    }

    fn wake_at(&self, deadline: u64) {
        let next = match self.next.get() {
            Some(next) if next <= deadline => next,
            _ => deadline,
        };
        self.next.set(Some(next));
    }
}

impl Clock for VirtualTime {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.now.get())
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The driver's [`Sleeper`]: sleeps on the [`VirtualTime`], counted.
#[derive(Clone, Copy, Debug)]
pub struct TestSleeper<'a>(&'a VirtualTime);

impl<'a> Sleeper for TestSleeper<'a> {
    type Sleep = Sleep<'a>;

    fn sleep(&self, duration: Duration) -> Sleep<'a> {
        let time = self.0;
        time.created.set(time.created.get() + 1);
        time.live.set(time.live.get() + 1);
        Sleep {
            time,
            deadline: time.now.get().saturating_add(nanos(duration)),
            counted: true,
        }
    }
}

/// One timer: ready once the virtual time reaches its deadline.
#[derive(Debug)]
pub struct Sleep<'a> {
    time: &'a VirtualTime,
    deadline: u64,
    counted: bool,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.time.now.get() >= self.deadline {
            Poll::Ready(())
        } else {
            self.time.wake_at(self.deadline);
            Poll::Pending
        }
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.time.live.set(self.time.live.get() - 1);
        }
    }
}

/// Why [`block_on`] stopped without an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The future waits and no timer is pending: nothing would ever wake it.
    Stuck,
    /// The next timer is past the limit: the future was dropped there.
    Limit,
}

/// Polls `future` to completion, moving the virtual time to the next
/// pending timer each time it waits; drops it when it is stuck, or when the
/// next timer is past `limit`.
pub fn run_until<F: IntoFuture>(
    time: &VirtualTime,
    limit: Duration,
    future: F,
) -> Result<F::Output, Stopped> {
    let mut future = pin!(future.into_future());
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Ok(output);
        }
        match time.next.take() {
            None => return Err(Stopped::Stuck),
            Some(at) if at > nanos(limit) => {
                time.now.set(time.now.get().max(nanos(limit)));
                return Err(Stopped::Limit);
            }
            Some(at) => time.now.set(time.now.get().max(at)),
        }
    }
}

/// [`run_until`] with no limit but the end of time.
pub fn block_on<F: IntoFuture>(time: &VirtualTime, future: F) -> Result<F::Output, Stopped> {
    run_until(time, Duration::MAX, future)
}
