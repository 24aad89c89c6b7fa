//! The brownout simulator: a retry storm and its cures, on a virtual clock.
//!
//! A backend with a fixed capacity and a FIFO queue browns out for a while
//! (it slows down and drops calls); clients keep sending logical calls at a
//! steady rate below its capacity, each attempt with a timeout, and retry
//! as one of eight [`Scenario`]s says — every decision made by a real
//! `stormguard::RetryState` with a real `Throttle`, `RetryBudget` or
//! `CircuitBreaker`. [`simulate`] runs one scenario; [`run`] runs all of
//! them and the four studies ([`herd`], [`nested`], [`contention`], [`tail`]) on two
//! threads and collects a [`Report`], which [`Report::table`],
//! [`Report::to_json`] and [`write_svg`] print.
//!
//! Everything is deterministic: the same seed gives the same numbers.
//!
//! ```
//! use stormguard_examples::brownout::{simulate, Config, Scenario};
//! let naive = simulate(&Config::small(), Scenario::Naive, 1)?;
//! assert!(naive.peak_offered_load > 3.0);
//! assert_eq!(naive.recovered_after, None); // a metastable failure
//! # Ok::<(), stormguard_examples::brownout::SimError>(())
//! ```

mod chart;
mod report;
mod settings;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use stormguard::Jitter;

pub use chart::write_svg;
pub use report::Report;
pub use settings::{read_settings, replay_json, settings_json, PageSettings, MAX_SETTINGS_MS};
/// The simulator itself lives in its own crate, `stormguard-sim`, which
/// depends only on the core and `fastrand` and so also builds for
/// WebAssembly (the playground); everything in it is re-exported here.
pub use stormguard_sim::*;

/// The jitter kinds the studies compare, in the article's order of names.
pub const JITTERS: [Jitter; 4] = [
    Jitter::None,
    Jitter::Full,
    Jitter::Equal,
    Jitter::Decorrelated,
];

/// The sizes of the three studies.
///
/// ```
/// let s = stormguard_examples::brownout::Studies::standard();
/// assert_eq!((s.herd_clients, s.contention_clients), (10_000, 100));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Studies {
    /// Clients failing at once in the herd study.
    pub herd_clients: u32,
    /// Layers in the nested study.
    pub layers: u32,
    /// Attempts per layer in the nested study.
    pub attempts_per_layer: u32,
    /// Clients contending for the row.
    pub contention_clients: u32,
    /// Seeds averaged per jitter kind in the contention study.
    pub contention_runs: u32,
    /// Calls per strategy in the tail-latency study.
    pub tail_calls: u32,
}

impl Studies {
    /// The program's sizes: 10,000 clients in the herd, 3 layers × 3
    /// attempts, 100 clients contending, averaged over 100 seeds, 100,000
    /// calls per strategy in the tail study.
    pub const fn standard() -> Studies {
        Studies {
            herd_clients: 10_000,
            layers: 3,
            attempts_per_layer: 3,
            contention_clients: 100,
            contention_runs: 100,
            tail_calls: 100_000,
        }
    }
}

/// "no jitter", "full jitter", … for the progress line.
fn jitter_name(jitter: Jitter) -> String {
    match jitter {
        Jitter::None => "no jitter".to_string(),
        other => format!("{} jitter", other.as_str()),
    }
}

/// One unit of work for the threads.
#[derive(Clone, Copy)]
enum Job {
    Scenario(Scenario),
    Herd(Jitter),
    Nested,
    Contention(Jitter),
    Tail,
}

impl Job {
    fn label(self) -> String {
        match self {
            Job::Scenario(s) => format!("brownout: {s}"),
            Job::Herd(j) => format!("herd: {}", jitter_name(j)),
            Job::Nested => "nested retries".to_string(),
            Job::Contention(j) => format!("contention: {}", jitter_name(j)),
            Job::Tail => "tail latency: a slow replica".to_string(),
        }
    }
}

enum Output {
    Scenario(ScenarioResult),
    Herd(HerdResult),
    Nested(NestedResult),
    Contention(ContentionResult),
    Tail(Vec<TailResult>),
}

fn do_job(job: Job, config: &Config, studies: &Studies, seed: u64) -> Result<Output, SimError> {
    Ok(match job {
        Job::Scenario(s) => Output::Scenario(simulate(config, s, seed)?),
        Job::Herd(j) => Output::Herd(herd(studies.herd_clients, j, seed)?),
        Job::Nested => Output::Nested(nested(studies.layers, studies.attempts_per_layer)?),
        Job::Contention(j) => Output::Contention(contention(
            studies.contention_clients,
            j,
            studies.contention_runs,
            seed,
        )?),
        Job::Tail => Output::Tail(tail(studies.tail_calls, seed)?),
    })
}

/// Runs every scenario and every study with `seed`, on up to `threads`
/// threads, calling `progress(done, total, what)` on the calling thread as
/// each piece finishes. The report does not depend on `threads`.
///
/// # Errors
/// [`SimError`] when the config is invalid.
///
/// ```no_run
/// use stormguard_examples::brownout::{run, Config, Studies};
/// let report = run(&Config::standard(), &Studies::standard(), 1, 2, |_, _, _| {})?;
/// println!("{}", report.table());
/// # Ok::<(), stormguard_examples::brownout::SimError>(())
/// ```
pub fn run(
    config: &Config,
    studies: &Studies,
    seed: u64,
    threads: usize,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<Report, SimError> {
    config.validate()?;
    // The slowest jobs first, so two threads finish together.
    let mut jobs: Vec<Job> = JITTERS.iter().map(|&j| Job::Contention(j)).collect();
    jobs.extend(Scenario::ALL.iter().map(|&s| Job::Scenario(s)));
    jobs.extend(JITTERS.iter().map(|&j| Job::Herd(j)));
    jobs.push(Job::Nested);
    jobs.push(Job::Tail);
    let total = jobs.len();
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Result<Output, SimError>)>();
    let mut outputs: Vec<Option<Output>> = (0..total).map(|_| None).collect();
    let mut failure = None;
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, total) {
            let tx = tx.clone();
            let (jobs, next) = (&jobs, &next);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&job) = jobs.get(i) else { break };
                if tx.send((i, do_job(job, config, studies, seed))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut done = 0;
        for (i, output) in rx {
            done += 1;
            progress(done, total, &jobs[i].label());
            match output {
                Ok(o) => outputs[i] = Some(o),
                Err(e) => failure = Some(e),
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let mut report = Report {
        config: config.clone(),
        seed,
        scenarios: Vec::new(),
        herd: Vec::new(),
        nested: NestedResult {
            layers: 0,
            attempts: 0,
            blind: 0,
            one_layer: 0,
        },
        contention: Vec::new(),
        tail: Vec::new(),
    };
    // Job order is fixed, so the report's order is too.
    for output in outputs.into_iter().flatten() {
        match output {
            Output::Scenario(r) => report.scenarios.push(r),
            Output::Herd(r) => report.herd.push(r),
            Output::Nested(r) => report.nested = r,
            Output::Contention(r) => report.contention.push(r),
            Output::Tail(r) => report.tail = r,
        }
    }
    Ok(report)
}
