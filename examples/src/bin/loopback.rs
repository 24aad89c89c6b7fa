//! A real retry storm on loopback, and its absence under stormguard.
//!
//! A smol TCP server on 127.0.0.1 with a fixed capacity browns out for three
//! seconds; a few hundred clients call it over TCP, first with naive
//! retries, then through stormguard (backoff + jitter + a retry throttle + a
//! circuit breaker). Prints, second by second, the load offered to the
//! server as a multiple of its capacity, and the successful calls. The
//! mechanism is explained in `examples/src/loopback.rs`.
//!
//! Run: `cargo run --release -p stormguard-examples --bin loopback
//! [-- --seconds N --clients N --load X]` (about 25 s with the defaults).

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use stormguard_examples::cli;
use stormguard_examples::loopback::{run, Config, Report, Strategy, MAX_ATTEMPTS};
use stormguard_smol::GiveUp;

const USAGE: &str = "\
usage: loopback [--seconds N] [--clients N] [--load X]

  --seconds N   length of each of the two runs, 7 to 12 (default 10); the brownout is seconds 2 to 5
  --clients N   clients sharing the offered load, 1 to 2000 (default 300)
  --load X      calls offered per second as a fraction of capacity, 0.1 to 1 (default 0.7)
  -h, --help    print this help";

/// Reads the arguments into `config`; `Ok(false)` asks for the help text.
fn parse(args: impl IntoIterator<Item = OsString>, config: &mut Config) -> Result<bool, String> {
    let mut args = cli::Args::new(args);
    while let Some(flag) = args.next_flag()? {
        match flag.name() {
            "-h" | "--help" => {
                flag.without_value()?;
                return Ok(false);
            }
            "--seconds" => config.length = Duration::from_secs(args.number(&flag, 7..=12u64)?),
            "--clients" => config.clients = args.number(&flag, 1..=2000u32)?,
            "--load" => config.load = args.number(&flag, 0.1..=1.0f64)?,
            _ => return Err(flag.unknown()),
        }
    }
    Ok(true)
}

fn main() -> ExitCode {
    let mut config = Config::standard();
    match parse(std::env::args_os().skip(1), &mut config) {
        Ok(true) => {}
        Ok(false) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => return cli::usage_error("loopback", &message, USAGE),
    }
    print_header(&config);
    let mut reports = Vec::new();
    for (n, strategy) in [Strategy::Naive, Strategy::Stormguard]
        .into_iter()
        .enumerate()
    {
        println!("\nrun {} of 2 — {}", n + 1, strategy.describe());
        match run(&config, strategy) {
            Ok(report) => {
                print_ticks(&report);
                println!("{}", summary(&report));
                reports.push(report);
            }
            Err(e) => {
                eprintln!("loopback: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!();
    for report in &reports {
        println!("{}", summary(report));
    }
    let leaked: usize = reports.iter().map(|r| r.open_sockets).sum();
    let peak = reports.iter().map(|r| r.peak_sockets).max().unwrap_or(0);
    if leaked == 0 {
        println!("every socket closed (at most {peak} open at once)");
    } else {
        println!("{leaked} sockets were still open at the end");
    }
    ExitCode::SUCCESS
}

fn print_header(config: &Config) {
    let capacity = config.capacity_per_second();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "\
A real retry storm on loopback
------------------------------
A TCP server on 127.0.0.1 serves {workers} requests at a time, {service} ms each:
its capacity is {capacity:.0} requests/s. Up to {queue} more wait in line; beyond
that a request is turned away at once (\"busy\"). From second {b0} to {b1} it
browns out: {slow} ms per request, and {drop:.0} % of requests are dropped.
The server serves even requests whose client has given up: the work is wasted.

{clients} clients call it over TCP, starting {rate:.0} calls/s in all ({load:.0} % of
capacity) whether or not earlier calls have finished. Each attempt has
{timeout} ms to get an answer; a call makes at most {attempts} attempts.

Below, per second: the requests offered to the server as a multiple of its
capacity (one block = 0.1×), and the calls that succeeded.",
        workers = config.workers,
        service = ms(config.service),
        queue = config.queue,
        b0 = config.brownout.start.as_secs(),
        b1 = config.brownout.end.as_secs(),
        slow = ms(config.brownout_service),
        drop = config.brownout_drop * 100.0,
        clients = config.clients,
        rate = config.load * capacity,
        load = config.load * 100.0,
        timeout = ms(config.attempt_timeout),
        attempts = MAX_ATTEMPTS,
    );
}

fn print_ticks(report: &Report) {
    println!(
        "  {:>3}  {:<47} {:<8} {:>11}",
        "s", "offered load (× capacity)", "", "successes/s"
    );
    for tick in &report.ticks {
        // One block per 0.1× capacity, at most 40 (4×).
        let blocks = (tick.load * 10.0).round().clamp(0.0, 40.0) as usize;
        let marker = if tick.brownout { "brownout" } else { "" };
        println!(
            "  {:>3}  {:>5.2}× {:<40} {:<8} {:>11.0}",
            tick.start.as_secs(),
            tick.load,
            "█".repeat(blocks),
            marker,
            tick.successes_per_second,
        );
    }
}

fn summary(report: &Report) -> String {
    let name = match report.strategy {
        Strategy::Naive => "naive     ",
        Strategy::Stormguard => "stormguard",
    };
    let mut line = format!(
        "{name}: peak {:.1}× capacity, {:.1}× after the brownout, {} of {} calls succeeded, \
         {:.2} attempts per call",
        report.peak_load(),
        report.load_after_brownout(),
        report.successes,
        report.calls,
        report.attempts_per_call(),
    );
    if report.strategy == Strategy::Stormguard {
        line += &format!(
            " ({} calls stopped by the throttle, {} refused by the open breaker)",
            report.gave_up(GiveUp::BudgetExhausted),
            report.gave_up(GiveUp::CircuitOpen),
        );
    }
    line
}
