//! A real retry storm on loopback, and its absence under stormguard.
//!
//! The brownout simulator (`brownout`) runs on a virtual clock; this one is
//! real: a smol TCP server on 127.0.0.1, real sockets, real timers, real
//! threads. The numbers wobble from run to run; the shape does not.
//!
//! # The server
//!
//! `workers` requests are served at a time, each taking `service` (5 ms):
//! its capacity is `workers / service` requests per second (4 / 5 ms = 800
//! per second). A request that finds every worker busy waits its turn in a
//! FIFO waiting room of `queue` places; when the room is full it is turned
//! away at once with `busy`. During the brownout each request takes
//! `brownout_service` (40 ms, so the capacity falls to an eighth) and a
//! fraction `brownout_drop` (30 %) of them is dropped: the connection is
//! closed without an answer.
//!
//! Like many real servers, it serves a request even when the client behind
//! it gave up long ago. That is what makes the storm outlive the brownout:
//! once the waiting room is full of abandoned requests, every request waits
//! longer than its client's timeout, every attempt fails, and every failure
//! is retried — so the room stays full after the server is fast again (a
//! metastable failure).
//!
//! # The clients
//!
//! `clients` clients each start a call every `clients / (load × capacity)`
//! seconds at their own phase, whether or not their earlier calls have
//! finished (an open loop, like users who do not wait for each other).
//! Together they offer `load` × capacity calls per second — 70 % of what
//! the server can take. Each call is a task; each attempt opens a TCP
//! connection, sends `GET\n` and reads one line back (`ok` or `busy`),
//! under a per-attempt timeout. [`Strategy`] says how a call retries.
//!
//! ```no_run
//! use stormguard_examples::loopback::{run, Config, Strategy};
//! let report = run(&Config::standard(), Strategy::Naive)?;
//! println!("peak offered load: {:.1}× capacity", report.peak_load());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use smol::channel::{self, Receiver, Sender};
use smol::future;
use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use smol::net::{TcpListener, TcpStream};
use smol::{Executor, Task, Timer};
use stormguard_smol::{
    Backoff, CircuitBreaker, Failure, GiveUp, Jitter, Replay, RetryExt, RetryPolicy, Throttle,
};

/// Attempts per call, for both strategies: the same number, so that what
/// differs is only *when* and *whether* stormguard lets a retry go out.
pub const MAX_ATTEMPTS: u32 = 4;

/// How the clients retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Up to [`MAX_ATTEMPTS`] attempts, each retry at once: no backoff, no
    /// budget, no breaker — the retry loop most code starts with.
    Naive,
    /// Up to [`MAX_ATTEMPTS`] attempts within a 1 s deadline, exponential
    /// backoff from 20 ms with full jitter, gRPC's retry throttle
    /// (`Throttle::new(10, 0.1)`) shared by all the clients, and a circuit
    /// breaker that opens after 10 consecutive failures and probes again
    /// after 500 ms.
    Stormguard,
}

impl Strategy {
    /// A one-line description, for the demo's output.
    ///
    /// ```
    /// use stormguard_examples::loopback::Strategy;
    /// assert!(Strategy::Naive.describe().starts_with("naive"));
    /// ```
    pub fn describe(self) -> &'static str {
        match self {
            Strategy::Naive => "naive retries: up to 4 attempts, no backoff, no budget",
            Strategy::Stormguard => {
                "stormguard: up to 4 attempts, exponential backoff + full jitter, \
                 Throttle::new(10, 0.1), a circuit breaker"
            }
        }
    }
}

/// The demo's knobs. [`Config::standard`] is what the binary runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// How many clients share the offered load (each calls at its own phase).
    pub clients: u32,
    /// Calls started per second, as a fraction of the server's capacity.
    pub load: f64,
    /// Requests the server serves at a time.
    pub workers: u32,
    /// How long one request takes normally.
    pub service: Duration,
    /// Places in the server's waiting room; beyond them a request is
    /// answered `busy` at once.
    pub queue: usize,
    /// When the brownout is on, counted from the start of the run.
    pub brownout: Range<Duration>,
    /// How long one request takes during the brownout.
    pub brownout_service: Duration,
    /// The fraction of requests dropped (closed unanswered) during the brownout.
    pub brownout_drop: f64,
    /// How long the clients keep starting calls; the calls in flight then
    /// finish (each is bounded by its attempts, timeouts and deadline).
    pub length: Duration,
    /// The width of one row of the report (1 s in the demo).
    pub tick: Duration,
    /// The client's timeout for one attempt.
    pub attempt_timeout: Duration,
    /// Threads running the executor that runs the server and the clients.
    pub threads: usize,
    /// Seeds the clients' phases and the server's drops.
    pub seed: u64,
}

impl Config {
    /// The demo: 300 clients at 70 % of a capacity of 800 requests per
    /// second, 10 s per run with a brownout from 2 s to 5 s, 100 ms per
    /// attempt, two threads.
    ///
    /// ```
    /// let c = stormguard_examples::loopback::Config::standard();
    /// assert_eq!(c.capacity_per_second(), 800.0);
    /// ```
    pub fn standard() -> Config {
        Config {
            clients: 300,
            load: 0.7,
            workers: 4,
            service: Duration::from_millis(5),
            queue: 128,
            brownout: Duration::from_secs(2)..Duration::from_secs(5),
            brownout_service: Duration::from_millis(40),
            brownout_drop: 0.3,
            length: Duration::from_secs(10),
            tick: Duration::from_secs(1),
            attempt_timeout: Duration::from_millis(100),
            threads: 2,
            seed: 1,
        }
    }

    /// Requests per second the server can serve when healthy:
    /// `workers / service`.
    ///
    /// ```
    /// let mut c = stormguard_examples::loopback::Config::standard();
    /// c.workers = 8;
    /// assert_eq!(c.capacity_per_second(), 1600.0);
    /// ```
    pub fn capacity_per_second(&self) -> f64 {
        f64::from(self.workers) / self.service.as_secs_f64()
    }

    /// Logical calls the clients start in one run.
    ///
    /// ```
    /// let c = stormguard_examples::loopback::Config::standard();
    /// assert!((5_550..=5_650).contains(&c.calls()));
    /// ```
    pub fn calls(&self) -> usize {
        schedule(self).len()
    }

    /// Checks that the run stays small and bounded: at most 2,000 clients,
    /// 60 s, 100,000 calls; a positive service time, timeout and tick; a
    /// brownout inside the run.
    ///
    /// # Errors
    /// An [`io::ErrorKind::InvalidInput`] error naming the field.
    ///
    /// ```
    /// let mut c = stormguard_examples::loopback::Config::standard();
    /// c.clients = 0;
    /// assert!(c.check().unwrap_err().to_string().contains("clients"));
    /// ```
    pub fn check(&self) -> io::Result<()> {
        let bad = |what: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                what.to_string(),
            ))
        };
        let ms = Duration::from_millis(1);
        if !(1..=2000).contains(&self.clients) {
            return bad("clients: between 1 and 2000");
        }
        if !(self.load > 0.0 && self.load <= 2.0) {
            return bad("load: in (0, 2]");
        }
        if !(1..=64).contains(&self.workers) {
            return bad("workers: between 1 and 64");
        }
        if self.service < ms || self.brownout_service < ms {
            return bad("service, brownout_service: at least 1 ms");
        }
        if !(1..=10_000).contains(&self.queue) {
            return bad("queue: between 1 and 10000");
        }
        if !(0.0..=1.0).contains(&self.brownout_drop) {
            return bad("brownout_drop: in [0, 1]");
        }
        if self.length.is_zero() || self.length > Duration::from_secs(60) {
            return bad("length: in (0, 60 s]");
        }
        if self.brownout.start >= self.brownout.end || self.brownout.end > self.length {
            return bad("brownout: a non-empty range inside the run");
        }
        if self.tick < Duration::from_millis(10) || self.tick > self.length {
            return bad("tick: between 10 ms and the length");
        }
        if self.attempt_timeout < ms {
            return bad("attempt_timeout: at least 1 ms");
        }
        if !(1..=16).contains(&self.threads) {
            return bad("threads: between 1 and 16");
        }
        let calls = self.load * self.capacity_per_second() * self.length.as_secs_f64();
        if calls > 100_000.0 {
            return bad("load × capacity × length: at most 100000 calls");
        }
        Ok(())
    }
}

/// One row of the report: what happened during one tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tick {
    /// When the tick starts, from the start of the run.
    pub start: Duration,
    /// Whether the brownout was on during (part of) the tick.
    pub brownout: bool,
    /// Requests that reached the server (served, turned away or dropped).
    pub offered: u32,
    /// Requests the server answered `busy`.
    pub busy: u32,
    /// Calls that succeeded (on the client's side).
    pub successes: u32,
    /// `offered` per second as a multiple of the server's capacity.
    pub load: f64,
    /// `successes` per second.
    pub successes_per_second: f64,
}

/// What one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// How the clients retried.
    pub strategy: Strategy,
    /// Tick by tick, over the run's length.
    pub ticks: Vec<Tick>,
    /// When the brownout was on.
    pub brownout: Range<Duration>,
    /// Logical calls started.
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that gave up, by reason ([`GiveUp::index`]).
    pub give_ups: [u64; 7],
    /// Attempts the clients made (connections they tried).
    pub attempts: u64,
    /// Requests that reached the server, the calls' tail after the run's
    /// length included.
    pub requests: u64,
    /// The most sockets (client and server ends) open at once.
    pub peak_sockets: usize,
    /// Sockets still open once the run was over: 0, unless something leaked.
    pub open_sockets: usize,
    /// Connections the server failed to accept (e.g. out of descriptors).
    pub accept_errors: u64,
}

impl Report {
    /// The highest offered load of any tick, × capacity.
    pub fn peak_load(&self) -> f64 {
        self.ticks.iter().map(|t| t.load).fold(0.0, f64::max)
    }

    /// The mean offered load over the ticks of the brownout, × capacity.
    pub fn load_during_brownout(&self) -> f64 {
        mean(self.ticks.iter().filter(|t| t.brownout).map(|t| t.load))
    }

    /// The mean offered load over the ticks after the brownout, × capacity.
    pub fn load_after_brownout(&self) -> f64 {
        let end = self.brownout.end;
        mean(self.ticks.iter().filter(|t| t.start >= end).map(|t| t.load))
    }

    /// Attempts per logical call (a call refused by an open breaker makes none).
    pub fn attempts_per_call(&self) -> f64 {
        self.attempts as f64 / self.calls.max(1) as f64
    }

    /// Calls that gave up for `reason`.
    pub fn gave_up(&self, reason: GiveUp) -> u64 {
        self.give_ups[reason.index()]
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / f64::from(n)
    }
}

/// Runs the server and the clients once, with `strategy`, and reports.
///
/// Binds only 127.0.0.1 (an OS-assigned port); returns once every call has
/// finished and every socket is closed.
///
/// # Errors
/// An invalid `config` ([`Config::check`]), or the listener could not be
/// bound. Failures of single connections are part of the measurement, not
/// errors.
pub fn run(config: &Config, strategy: Strategy) -> io::Result<Report> {
    config.check()?;
    let shared = Shared::new(config)?;
    let starts = schedule(config);
    let listener = smol::block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))?;
    let addr = listener.local_addr()?;

    // Counts are kept per tick; the calls' tail after `length` lands in a
    // few spare ticks (and the last one), so nothing is lost.
    let ticks = config.length.as_nanos().div_ceil(config.tick.as_nanos()) as usize;
    let spare = (Duration::from_secs(3).as_nanos() / config.tick.as_nanos()) as usize + 1;
    let start = Instant::now();
    let server = Server {
        config,
        start,
        closing: AtomicBool::new(false),
        offered: Meter::new(start, config.tick, ticks + spare),
        busy: Meter::new(start, config.tick, ticks + spare),
        accept_errors: AtomicU64::new(0),
    };
    let successes = Meter::new(start, config.tick, ticks + spare);
    let sockets = Sockets::default();
    let (queue_in, queue_out) = channel::bounded::<Socket<'_>>(config.queue);

    let ex = Executor::new();
    let (stop_threads, stopped) = channel::bounded::<()>(1);
    let outcomes = thread::scope(|scope| {
        // The executor's other threads run until `stop_threads` closes: when
        // the run is over, or when this closure unwinds.
        let stop_threads = stop_threads;
        for _ in 1..config.threads {
            scope.spawn(|| smol::block_on(ex.run(stopped.recv())));
        }
        let main = async {
            let workers: Vec<Task<()>> = (0..config.workers)
                .map(|i| {
                    let rng = fastrand::Rng::with_seed(config.seed ^ ((u64::from(i) + 1) << 32));
                    ex.spawn(worker(&server, queue_out.clone(), rng))
                })
                .collect();

            // The clients: one loop plays every client's schedule, starting
            // each call as a task at its time (late if the machine is busy,
            // never skipped); then waits for them all.
            let calls = async {
                let mut tasks = Vec::with_capacity(starts.len());
                for at in &starts {
                    Timer::at(start + *at).await;
                    tasks.push(ex.spawn(call(addr, strategy, &shared, &successes, &sockets)));
                }
                let mut outcomes = Vec::with_capacity(tasks.len());
                for task in tasks {
                    outcomes.push(task.await);
                }
                outcomes
            };
            let accepting = accept(&ex, listener, &server, &queue_in, &sockets);
            let outcomes = future::or(async { match accepting.await {} }, calls).await;

            // Every call is over and the listener is closed (it was moved
            // into `accepting`, dropped by now). Shut the server down: the
            // workers drop what is left in the waiting room, then stop.
            server.closing.store(true, Ordering::SeqCst);
            queue_in.close();
            for worker in workers {
                worker.await;
            }
            // The front doors of the last connections finish within their
            // read timeout; wait for their sockets (bounded).
            let give_up = Instant::now() + Duration::from_secs(2);
            while sockets.open() > 0 && Instant::now() < give_up {
                Timer::after(Duration::from_millis(5)).await;
            }
            outcomes
        };
        let outcomes = smol::block_on(ex.run(main));
        drop(stop_threads);
        outcomes
    });
    // Anything still on the executor (nothing, normally) is dropped with it.
    drop(ex);

    let capacity_per_tick = config.capacity_per_second() * config.tick.as_secs_f64();
    let ticks = (0..ticks)
        .map(|i| {
            let tick_start = config.tick * i as u32;
            let tick_end = tick_start + config.tick;
            let offered = server.offered.get(i);
            let successes = successes.get(i);
            Tick {
                start: tick_start,
                brownout: tick_start < config.brownout.end && config.brownout.start < tick_end,
                offered,
                busy: server.busy.get(i),
                successes,
                load: f64::from(offered) / capacity_per_tick,
                successes_per_second: f64::from(successes) / config.tick.as_secs_f64(),
            }
        })
        .collect();
    let mut give_ups = [0; 7];
    for outcome in &outcomes {
        if let Err(reason) = outcome.result {
            give_ups[reason.index()] += 1;
        }
    }
    Ok(Report {
        strategy,
        ticks,
        brownout: config.brownout.clone(),
        calls: outcomes.len() as u64,
        successes: outcomes.iter().filter(|o| o.result.is_ok()).count() as u64,
        give_ups,
        attempts: outcomes.iter().map(|o| u64::from(o.attempts)).sum(),
        requests: server.offered.total(),
        peak_sockets: sockets.peak.load(Ordering::SeqCst),
        open_sockets: sockets.open(),
        accept_errors: server.accept_errors.load(Ordering::SeqCst),
    })
}

/// When each call starts, from the start of the run, sorted: each client
/// calls every `clients / (load × capacity)` seconds from a random phase.
fn schedule(config: &Config) -> Vec<Duration> {
    let rate = config.load * config.capacity_per_second();
    let interval = f64::from(config.clients) / rate;
    let length = config.length.as_secs_f64();
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let mut starts = Vec::new();
    for _ in 0..config.clients {
        let mut at = rng.f64() * interval;
        while at < length {
            starts.push(Duration::from_secs_f64(at));
            at += interval;
        }
    }
    starts.sort_unstable();
    starts
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

struct Server<'c> {
    config: &'c Config,
    start: Instant,
    /// Set once the clients are done: the workers drop what is left.
    closing: AtomicBool,
    /// Requests read, per tick: the load offered to the server.
    offered: Meter,
    /// Requests turned away with `busy`, per tick.
    busy: Meter,
    accept_errors: AtomicU64,
}

impl Server<'_> {
    fn in_brownout(&self) -> bool {
        self.config.brownout.contains(&self.start.elapsed())
    }
}

/// Accepts connections until dropped; each gets a front-door task.
async fn accept<'a>(
    ex: &Executor<'a>,
    listener: TcpListener,
    server: &'a Server<'a>,
    queue: &Sender<Socket<'a>>,
    sockets: &'a Sockets,
) -> Infallible {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let socket = Socket::new(stream, sockets);
                ex.spawn(front_door(server, socket, queue.clone())).detach();
            }
            Err(_) => {
                // Out of descriptors or a connection reset before it was
                // accepted: count it, and do not spin.
                server.accept_errors.fetch_add(1, Ordering::Relaxed);
                Timer::after(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Reads the request line, then puts the connection in the waiting room —
/// or, when the room is full, answers `busy` at once.
async fn front_door<'s>(server: &Server<'_>, mut socket: Socket<'s>, queue: Sender<Socket<'s>>) {
    let mut line = String::new();
    let mut reader = BufReader::new((&mut socket.stream).take(64));
    let read = reader.read_line(&mut line);
    let silent = async {
        Timer::after(Duration::from_secs(1)).await;
        Ok(0)
    };
    // Silence, an error or a closed connection: nothing to serve.
    let read = future::or(read, silent).await;
    drop(reader);
    if !matches!(read, Ok(n) if n > 0) {
        return;
    }
    server.offered.record();
    if let Err(refused) = queue.try_send(socket) {
        server.busy.record();
        let mut socket = refused.into_inner();
        let _ = socket.stream.write_all(b"busy\n").await;
    }
}

/// One of the server's `workers`: takes the oldest waiting request, spends
/// the service time on it, answers `ok`. In the brownout the service is
/// slower and some requests are dropped. It never asks whether the client
/// is still waiting — the answer to an abandoned request goes nowhere.
async fn worker(server: &Server<'_>, queue: Receiver<Socket<'_>>, mut rng: fastrand::Rng) {
    let config = server.config;
    while let Ok(mut socket) = queue.recv().await {
        if server.closing.load(Ordering::SeqCst) {
            continue; // Shutting down: close it unanswered.
        }
        let brownout = server.in_brownout();
        let service = if brownout {
            config.brownout_service
        } else {
            config.service
        };
        Timer::after(service).await;
        if brownout && rng.f64() < config.brownout_drop {
            continue; // Dropped: closed without an answer.
        }
        let _ = socket.stream.write_all(b"ok\n").await;
    }
}

// ---------------------------------------------------------------------------
// The clients
// ---------------------------------------------------------------------------

/// What the clients share: the policies, and stormguard's retry throttle
/// and circuit breaker — one of each for all the clients, as one client
/// library in one process would have.
struct Shared {
    naive: RetryPolicy,
    guarded: RetryPolicy,
    throttle: Throttle,
    breaker: CircuitBreaker,
    attempt_timeout: Duration,
}

impl Shared {
    fn new(config: &Config) -> io::Result<Shared> {
        let invalid =
            |e: stormguard_smol::ConfigError| io::Error::new(io::ErrorKind::InvalidInput, e);
        Ok(Shared {
            // Retry at once, up to MAX_ATTEMPTS in all.
            naive: RetryPolicy::builder()
                .max_attempts(MAX_ATTEMPTS)
                .backoff(Backoff::constant(Duration::ZERO))
                .build()
                .map_err(invalid)?,
            // Wait 0–20 ms, then 0–40 ms, then 0–80 ms (full jitter spreads
            // the retries out), and give up on a call after 1 s in all.
            guarded: RetryPolicy::builder()
                .max_attempts(MAX_ATTEMPTS)
                .backoff(
                    Backoff::exponential(Duration::from_millis(20), 2.0)
                        .max_delay(Duration::from_millis(500))
                        .jitter(Jitter::Full),
                )
                .deadline(Duration::from_secs(1))
                .build()
                .map_err(invalid)?,
            // gRPC's throttle: 10 tokens; a failed attempt takes 1, a
            // success gives back 0.1; no retries while half are gone. In
            // a brownout it empties after a handful of failures, and from
            // then on only first attempts go out: at most 1× the calls.
            throttle: Throttle::new(10, 0.1).map_err(invalid)?,
            // After 10 failures in a row, refuse calls outright (no
            // request at all) for 500 ms, then let one probe through.
            breaker: CircuitBreaker::builder()
                .failure_threshold(10)
                .recovery_timeout(Duration::from_millis(500))
                .build()
                .map_err(invalid)?,
            attempt_timeout: config.attempt_timeout,
        })
    }
}

/// How one call ended.
struct Outcome {
    attempts: u32,
    result: Result<(), GiveUp>,
}

/// One logical call, retried as `strategy` says.
async fn call(
    addr: SocketAddr,
    strategy: Strategy,
    shared: &Shared,
    successes: &Meter,
    sockets: &Sockets,
) -> Outcome {
    let mut attempts = 0;
    let attempt = || {
        attempts += 1;
        attempt(addr, sockets)
    };
    // The whole of stormguard in this demo: the two `.retry(…)` chains.
    let result = match strategy {
        Strategy::Naive => attempt
            .retry(&shared.naive)
            .when(classify)
            .attempt_timeout(shared.attempt_timeout)
            .await
            .map_err(|e| e.reason()),
        Strategy::Stormguard => attempt
            .retry(&shared.guarded)
            .budget(&shared.throttle)
            .breaker(&shared.breaker)
            .when(classify)
            .attempt_timeout(shared.attempt_timeout)
            .await
            .map_err(|e| e.reason()),
    };
    if result.is_ok() {
        successes.record();
    }
    Outcome { attempts, result }
}

/// Why an attempt failed. (A timed-out attempt never gets here: the driver
/// cancels it — closing its socket — and counts a `Failure::timeout()`.)
#[derive(Debug)]
enum AttemptError {
    /// The connection could not be opened: nothing was sent.
    Connect,
    /// The connection broke after the request was sent.
    Broken,
    /// The server turned the request away at the door.
    Busy,
    /// The server closed the connection without an answer.
    Dropped,
    /// An answer this protocol does not know.
    Garbled,
}

/// How stormguard should treat each failure: its class, and whether the
/// request may have run (every request here is an idempotent read, so even
/// `Replay::Unknown` may be retried — the gate matters for writes).
fn classify(error: &AttemptError) -> Failure {
    match error {
        AttemptError::Connect => Failure::transient().with_replay(Replay::NotSent),
        AttemptError::Busy => Failure::overloaded().with_replay(Replay::Rejected),
        AttemptError::Broken | AttemptError::Dropped => Failure::transient(),
        AttemptError::Garbled => Failure::permanent(),
    }
}

/// One attempt: a fresh connection, one request line, one answer line.
async fn attempt(addr: SocketAddr, sockets: &Sockets) -> Result<(), AttemptError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| AttemptError::Connect)?;
    let mut socket = Socket::new(stream, sockets);
    socket
        .stream
        .write_all(b"GET\n")
        .await
        .map_err(|_| AttemptError::Broken)?;
    let mut line = String::new();
    let read = BufReader::new((&mut socket.stream).take(64))
        .read_line(&mut line)
        .await
        .map_err(|_| AttemptError::Broken)?;
    match line.trim_end() {
        "ok" => Ok(()),
        "busy" => Err(AttemptError::Busy),
        _ if read == 0 => Err(AttemptError::Dropped),
        _ => Err(AttemptError::Garbled),
    }
}

// ---------------------------------------------------------------------------
// Bookkeeping
// ---------------------------------------------------------------------------

/// A count per tick since `start`; the last tick takes anything later.
struct Meter {
    start: Instant,
    tick: Duration,
    counts: Vec<AtomicU32>,
}

impl Meter {
    fn new(start: Instant, tick: Duration, ticks: usize) -> Meter {
        Meter {
            start,
            tick,
            counts: (0..ticks.max(1)).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn record(&self) {
        let i = (self.start.elapsed().as_nanos() / self.tick.as_nanos()) as usize;
        self.counts[i.min(self.counts.len() - 1)].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, i: usize) -> u32 {
        self.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn total(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| u64::from(c.load(Ordering::Relaxed)))
            .sum()
    }
}

/// Open sockets (client and server ends), and the most at once.
#[derive(Default)]
struct Sockets {
    open: AtomicUsize,
    peak: AtomicUsize,
}

impl Sockets {
    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// A connection, counted in [`Sockets`] while it is open (until dropped).
struct Socket<'s> {
    stream: TcpStream,
    sockets: &'s Sockets,
}

impl<'s> Socket<'s> {
    fn new(stream: TcpStream, sockets: &'s Sockets) -> Socket<'s> {
        let open = sockets.open.fetch_add(1, Ordering::SeqCst) + 1;
        sockets.peak.fetch_max(open, Ordering::SeqCst);
        Socket { stream, sockets }
    }
}

impl Drop for Socket<'_> {
    fn drop(&mut self) {
        self.sockets.open.fetch_sub(1, Ordering::SeqCst);
    }
}
