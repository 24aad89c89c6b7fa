//! A run as the playground made it — the settings it started with, each
//! change of the trigger or of the clients at its virtual time, how far the
//! clock went — to run again natively (`brownout --settings`), bit for bit.
//!
//! The page drives a [`Sim`] with a few calls: start it, advance it, pull
//! or clear the trigger, set the clients. Each of those depends only on its
//! arguments and the virtual time it is made at, so doing the same calls at
//! the same virtual times gives the same run, whatever the steps in
//! between (see [`Sim::advance_to`]). [`Recording::replay`] makes them.

use core::time::Duration;

use crate::clients::Clients;
use crate::config::Config;
use crate::sim::{Sim, SimError};

/// The page's clock reading as the simulator takes it: milliseconds (an
/// `f64`, fractions of a frame included) to whole microseconds, rounded;
/// negative or NaN is zero, beyond `u64` microseconds saturates.
///
/// The playground moves its simulation with this, and a recorded time is
/// turned back into the same [`Duration`] with it: for any whole number of
/// microseconds `d` (every time the page's clock can show),
/// `page_time(page_ms(d)) == d`.
///
/// ```
/// use core::time::Duration;
/// use stormguard_sim::{page_ms, page_time};
/// assert_eq!(page_time(16.7), Duration::from_micros(16_700));
/// let d = Duration::from_micros(123_456_789);
/// assert_eq!(page_time(page_ms(d)), d);
/// ```
pub fn page_time(ms: f64) -> Duration {
    // `as` saturates (and NaN is 0): no panic for any f64.
    Duration::from_micros((ms.max(0.0) * 1e3).round() as u64)
}

/// A virtual time in milliseconds, as the page reads its clock.
///
/// ```
/// use core::time::Duration;
/// assert_eq!(stormguard_sim::page_ms(Duration::from_millis(1500)), 1500.0);
/// ```
pub fn page_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What the page changed during a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Change {
    /// The trigger pulled (`true`) or cleared, as [`Sim::set_trigger`].
    Trigger(bool),
    /// The clients' settings, as [`Sim::set_clients`] (a change to the same
    /// settings still gives every client process a fresh budget, breaker
    /// and throttle, so it is recorded too).
    Clients(Clients),
}

/// A run of the playground, to run again.
///
/// ```
/// use core::time::Duration;
/// use stormguard_sim::{Change, Config, Recording, Scenario, Sim};
/// let clients = Scenario::FullJitter.clients();
/// let recording = Recording {
///     scripted: false,
///     clients,
///     changes: vec![
///         (Duration::from_millis(1000), Change::Trigger(true)),
///         (Duration::from_millis(4000), Change::Trigger(false)),
///     ],
///     until: Some(Duration::from_millis(6000)),
/// };
/// let replayed = recording.replay(&Config::standard(), 7)?;
///
/// // By hand, in other steps:
/// let mut sim = Sim::open_ended(&Config::standard(), &clients, 7)?;
/// for ms in (0..=1000).step_by(17).chain([1000]) {
///     sim.advance_to(Duration::from_millis(ms));
/// }
/// sim.set_trigger(true);
/// sim.advance_to(Duration::from_millis(4000));
/// sim.set_trigger(false);
/// sim.advance_to(Duration::from_millis(6000));
/// assert_eq!(replayed.offered_load(), sim.offered_load());
/// # Ok::<(), stormguard_sim::SimError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// The table's run ([`Sim::new`]: the trigger from the config's
    /// `brownout_start` to `brownout_end`, calls for `duration`) rather
    /// than an open-ended one with the trigger by hand
    /// ([`Sim::open_ended`]).
    pub scripted: bool,
    /// The clients' settings at the start.
    pub clients: Clients,
    /// The changes, in the order made, each at its virtual time (not
    /// decreasing).
    pub changes: Vec<(Duration, Change)>,
    /// How far the clock went. A scripted run taken to its `duration`, or
    /// with `None`, runs to its end (every call finished), as the page does
    /// for the table's row; an open-ended run with `None` stops at its last
    /// change.
    pub until: Option<Duration>,
}

impl Recording {
    /// Runs the recording in `config`'s world with `seed`: the run the page
    /// showed, as it stood when the recording was taken.
    ///
    /// # Errors
    /// [`SimError`] when the config is invalid or a setting of the clients
    /// cannot be built ([`Clients::validate`] tells beforehand).
    pub fn replay(&self, config: &Config, seed: u64) -> Result<Sim, SimError> {
        let mut sim = if self.scripted {
            Sim::new(config, &self.clients, seed)?
        } else {
            Sim::open_ended(config, &self.clients, seed)?
        };
        for &(at, change) in &self.changes {
            sim.advance_to(at);
            match change {
                Change::Trigger(on) => sim.set_trigger(on),
                Change::Clients(clients) => sim.set_clients(&clients)?,
            }
        }
        if let Some(until) = self.until {
            sim.advance_to(until);
        }
        if self.runs_to_end(config) {
            sim.run_to_end();
        }
        Ok(sim)
    }

    /// Whether the replay runs to the end of a table's run (and so has the
    /// table's row, [`Sim::summary`]).
    ///
    /// ```
    /// use stormguard_sim::{Config, Recording, Scenario};
    /// let whole = Recording {
    ///     scripted: true,
    ///     clients: Scenario::Naive.clients(),
    ///     changes: Vec::new(),
    ///     until: None,
    /// };
    /// assert!(whole.runs_to_end(&Config::standard()));
    /// ```
    pub fn runs_to_end(&self, config: &Config) -> bool {
        self.scripted && self.until.is_none_or(|until| until >= config.duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{simulate, Scenario};

    #[test]
    fn page_time_inverts_page_ms() {
        let mut us = 0u64;
        while us < 86_400_000_000 {
            let d = Duration::from_micros(us);
            assert_eq!(page_time(page_ms(d)), d, "{us} µs");
            us = us * 3 + 7;
        }
        for us in 0..100_000 {
            let d = Duration::from_micros(us);
            assert_eq!(page_time(page_ms(d)), d, "{us} µs");
        }
        assert_eq!(page_time(-5.0), Duration::ZERO);
        assert_eq!(page_time(f64::NAN), Duration::ZERO);
        assert_eq!(page_time(f64::INFINITY), Duration::from_micros(u64::MAX));
    }

    #[test]
    fn a_scripted_recording_of_a_scenario_is_its_simulation() {
        let config = Config::small();
        for scenario in [Scenario::Naive, Scenario::RetryBudget] {
            let native = simulate(&config, scenario, 3).unwrap();
            for until in [None, Some(config.duration)] {
                let recording = Recording {
                    scripted: true,
                    clients: scenario.clients(),
                    changes: Vec::new(),
                    until,
                };
                let sim = recording.replay(&config, 3).unwrap();
                assert_eq!(sim.offered_load(), native.offered_load);
                assert_eq!(sim.summary().goodput, native.goodput);
            }
        }
    }

    #[test]
    fn a_recording_is_its_changes_made_by_hand() {
        let config = Config::small();
        let clients = Scenario::RetryBudget.clients();
        let recording = Recording {
            scripted: false,
            clients,
            changes: vec![
                (Duration::from_micros(500_300), Change::Trigger(true)),
                (Duration::from_micros(1_700_000), Change::Clients(clients)),
                (Duration::from_micros(2_600_001), Change::Trigger(false)),
                (
                    Duration::from_micros(2_600_001),
                    Change::Clients(Scenario::Throttle.clients()),
                ),
            ],
            until: Some(Duration::from_micros(5_000_017)),
        };
        let replayed = recording.replay(&config, 11).unwrap();
        let mut sim = Sim::open_ended(&config, &clients, 11).unwrap();
        let mut t = 0.0;
        let mut step = |sim: &mut Sim, to: f64| {
            while t + 16.7 < to {
                t += 16.7;
                sim.advance_to(page_time(t));
            }
            t = to;
            sim.advance_to(page_time(to));
        };
        step(&mut sim, 500.3);
        sim.set_trigger(true);
        step(&mut sim, 1700.0);
        sim.set_clients(&clients).unwrap();
        step(&mut sim, 2600.001);
        sim.set_trigger(false);
        sim.set_clients(&Scenario::Throttle.clients()).unwrap();
        step(&mut sim, 5000.017);
        assert_eq!(replayed.buckets(), sim.buckets());
        assert_eq!(replayed.offered_load(), sim.offered_load());
        assert_eq!(replayed.attempts(), sim.attempts());
        // A change the recording leaves out is seen: the settings set again
        // at 1.7 s gave every client a fresh RetryBudget.
        let mut without = recording.clone();
        without.changes.remove(1);
        let other = without.replay(&config, 11).unwrap();
        assert_ne!(other.offered_load(), sim.offered_load());
    }
}
