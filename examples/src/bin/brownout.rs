//! The brownout simulator: a retry storm and its cures, on a virtual clock.
//!
//! A backend browns out for ten seconds; clients retry as eight scenarios
//! say, every decision made by stormguard. Prints the table of offered load,
//! recovery, goodput and attempts per call, then three studies (a herd of
//! 10,000 clients, nested retries, the AWS contention experiment), and
//! draws the offered load over time into an SVG chart.
//!
//! Run: `./scripts/run [--seed N] [--slowdown X] [--json | --series] [--svg FILE | --no-svg]`

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use stormguard_examples::brownout::{run, write_svg, Config, Report, Studies};

const USAGE: &str = "\
usage: brownout [--seed N] [--slowdown X] [--json | --series] [--svg FILE | --no-svg]

  --seed N       seed of every random stream (default 1); the same seed prints the same numbers
  --slowdown X   how many times slower the backend serves during the brownout (default 3, from 1 to 1000)
  --json         print the results as one JSON object instead of the table
  --series       the JSON, with each scenario's offered load per 100 ms bucket (\"offered_load\"),
                 as the playground's export gives it
  --svg FILE     draw the offered load over time into FILE (default: brownout.svg)
  --no-svg       draw no chart
  -h, --help     print this help";

struct Args {
    seed: u64,
    slowdown: Option<f64>,
    json: bool,
    /// The JSON with every scenario's per-bucket offered load.
    series: bool,
    svg: Option<PathBuf>,
}

/// Parses the arguments after the program's name. `Ok(None)` asks for the
/// help text; any argument that is not understood is an error (exit 2).
fn parse(mut args: impl Iterator<Item = OsString>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        seed: 1,
        slowdown: None,
        json: false,
        series: false,
        svg: Some(PathBuf::from("brownout.svg")),
    };
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            return Err(format!("unknown argument {arg:?}"));
        };
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(OsString::from(value))),
            _ => (text, None),
        };
        let mut value = |name: &str| -> Result<OsString, String> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("{name} needs a value")),
            }
        };
        // A number's text, or an error naming what was given.
        let number = |v: &OsString, what: &str| -> Result<String, String> {
            v.to_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{what}, not {v:?}"))
        };
        match flag {
            "-h" | "--help" if inline.is_none() => return Ok(None),
            "--json" if inline.is_none() => parsed.json = true,
            "--series" if inline.is_none() => {
                parsed.json = true;
                parsed.series = true;
            }
            "--no-svg" if inline.is_none() => parsed.svg = None,
            "--svg" => parsed.svg = Some(PathBuf::from(value("--svg")?)),
            "--seed" => {
                let v = value("--seed")?;
                let what = format!("--seed takes a number from 0 to {}", u64::MAX);
                parsed.seed = number(&v, &what)?
                    .parse()
                    .map_err(|_| format!("{what}, not {v:?}"))?;
            }
            "--slowdown" => {
                let v = value("--slowdown")?;
                let what = "--slowdown takes a number from 1 to 1000";
                match number(&v, what)?.parse::<f64>() {
                    Ok(x) if x.is_finite() && (1.0..=1000.0).contains(&x) => {
                        parsed.slowdown = Some(x)
                    }
                    _ => return Err(format!("{what}, not {v:?}")),
                }
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Some(parsed))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("brownout: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let progress = |done: usize, total: usize, what: &str| {
        let mut err = std::io::stderr().lock();
        let _ = if terminal {
            write!(err, "\r\x1b[K[{done:>2}/{total}] {what}")
        } else {
            writeln!(err, "[{done:>2}/{total}] {what}")
        };
        let _ = err.flush();
    };
    let mut config = Config::standard();
    if let Some(slowdown) = args.slowdown {
        config.slowdown = slowdown;
    }
    let report = match run(&config, &Studies::standard(), args.seed, threads, progress) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("\nbrownout: {e}");
            return ExitCode::FAILURE;
        }
    };
    if terminal {
        eprint!("\r\x1b[K");
    }
    let mut status = ExitCode::SUCCESS;
    if let Some(path) = &args.svg {
        match write_svg(&report, path) {
            Ok(()) => eprintln!("chart: {}", path.display()),
            Err(e) => {
                eprintln!("brownout: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let printed = if args.json {
        let mut json = report.to_json();
        if args.series {
            add_series(&mut json, &report);
        }
        writeln!(out, "{json}")
    } else {
        writeln!(out, "{}", report.table())
    };
    if printed.is_err() {
        return ExitCode::FAILURE; // stdout closed (a pipe): nothing to tell
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    status
}

/// Adds each scenario's offered load per bucket to its object in the JSON.
fn add_series(json: &mut serde_json::Value, report: &Report) {
    let Some(scenarios) = json["scenarios"].as_array_mut() else {
        return;
    };
    for (object, result) in scenarios.iter_mut().zip(&report.scenarios) {
        object["offered_load"] = serde_json::json!(result.offered_load);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Option<Args>, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn defaults() {
        let args = parse_args(&[]).unwrap().unwrap();
        assert_eq!(args.seed, 1);
        assert!(!args.json);
        assert_eq!(args.svg, Some(PathBuf::from("brownout.svg")));
    }

    #[test]
    fn every_option() {
        let args = parse_args(&["--seed", "7", "--json", "--svg", "out.svg"])
            .unwrap()
            .unwrap();
        assert_eq!((args.seed, args.json), (7, true));
        assert_eq!(args.svg, Some(PathBuf::from("out.svg")));
        let args = parse_args(&[
            "--seed=18446744073709551615",
            "--no-svg",
            "--slowdown",
            "1.5",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(args.seed, u64::MAX);
        assert_eq!(args.slowdown, Some(1.5));
        assert_eq!(args.svg, None);
        assert!(parse_args(&["--help"]).unwrap().is_none());
        let args = parse_args(&["--series"]).unwrap().unwrap();
        assert!(args.json && args.series);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let bad: [&[&str]; 15] = [
            &["--slowdown", "0.5"],
            &["--slowdown", "NaN"],
            &["--slowdown", "inf"],
            &["--slowdown"],
            &["--seed"],
            &["--seed", "x"],
            &["--seed", "-1"],
            &["--seed", "18446744073709551616"],
            &["--svg"],
            &["--svg="],
            &["--json=yes"],
            &["--help=yes"],
            &["--series=yes"],
            &["--bogus"],
            &["seed"],
        ];
        for args in bad {
            assert!(parse_args(args).is_err(), "{args:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn arguments_that_are_not_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let odd = OsString::from_vec(vec![b'o', 0xFF, b'.', b's', b'v', b'g']);
        let args = parse([OsString::from("--svg"), odd.clone()].into_iter())
            .unwrap()
            .unwrap();
        assert_eq!(args.svg, Some(PathBuf::from(odd.clone())));
        assert!(parse([odd.clone()].into_iter()).is_err());
        assert!(parse([OsString::from("--seed"), odd].into_iter()).is_err());
    }
}
