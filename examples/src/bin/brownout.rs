//! The brownout simulator: a retry storm and its cures, on a virtual clock.
//!
//! A backend browns out for ten seconds; clients retry as eight scenarios
//! say, every decision made by stormguard. Prints the table of offered load,
//! recovery, goodput and attempts per call, then three studies (a herd of
//! 10,000 clients, nested retries, the AWS contention experiment), and
//! draws the offered load over time into an SVG chart.
//!
//! Run: `./scripts/run [--seed N] [--slowdown X] [--json | --series] [--svg FILE | --no-svg]`
//!
//! With `--settings`, one run of the playground instead (its settings as
//! the page exports them and shows in its native command): the same
//! per-bucket offered load as the page, as JSON.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use stormguard_examples::brownout::{
    read_settings, replay_json, run, write_svg, Config, Recording, Report, Studies,
};

const USAGE: &str = "\
usage: brownout [--seed N] [--slowdown X] [--json | --series] [--svg FILE | --no-svg]
       brownout [--seed N] --settings FILE_OR_JSON

  --seed N       seed of every random stream (default 1); the same seed prints the same numbers
  --slowdown X   how many times slower the backend serves during the brownout (default 3, from 1 to 1000)
  --json         print the results as one JSON object instead of the table
  --series       the JSON, with each scenario's offered load per 100 ms bucket (\"offered_load\"),
                 as the playground's export gives it
  --svg FILE     draw the offered load over time into FILE (default: brownout.svg)
  --no-svg       draw no chart
  --settings FILE_OR_JSON
                 one run of the playground instead of the table: its settings as the page exports
                 them (the JSON itself, starting with '{', or a file holding it or the page's whole
                 export); prints the run's offered load per bucket, its counters (and its table
                 row, for a replay of the table's run) as JSON, equal to the page's export. The
                 page shows the command for the run it shows.
  -h, --help     print this help";

struct Args {
    seed: u64,
    slowdown: Option<f64>,
    json: bool,
    /// The JSON with every scenario's per-bucket offered load.
    series: bool,
    svg: Option<PathBuf>,
    /// A playground run to replay instead of the table.
    settings: Option<Recording>,
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
        settings: None,
    };
    let mut seed_given = false;
    let mut svg_given = false;
    let mut settings = None;
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
            "--svg" => {
                parsed.svg = Some(PathBuf::from(value("--svg")?));
                svg_given = true;
            }
            "--settings" => settings = Some(value("--settings")?),
            "--seed" => {
                let v = value("--seed")?;
                let what = format!("--seed takes a number from 0 to {}", u64::MAX);
                parsed.seed = number(&v, &what)?
                    .parse()
                    .map_err(|_| format!("{what}, not {v:?}"))?;
                seed_given = true;
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
    if let Some(settings) = settings {
        if svg_given {
            return Err("--svg: --settings draws no chart (its JSON has the series)".into());
        }
        if parsed.slowdown.is_some() {
            return Err("--slowdown: --settings runs the page's world, whose slowdown is 3".into());
        }
        let page =
            read_settings(&settings_text(&settings)?).map_err(|e| format!("--settings: {e}"))?;
        match page.seed {
            Some(seed) if seed_given && seed != parsed.seed => {
                return Err(format!(
                    "--seed {} differs from the seed of the page's export in --settings ({seed})",
                    parsed.seed
                ))
            }
            Some(seed) => parsed.seed = seed,
            None => {}
        }
        parsed.settings = Some(page.recording);
        parsed.svg = None;
    }
    Ok(Some(parsed))
}

/// The JSON of `--settings`: the value itself when it starts with `{`,
/// else the contents of the file it names.
fn settings_text(value: &OsString) -> Result<String, String> {
    if let Some(text) = value.to_str().filter(|t| t.trim_start().starts_with('{')) {
        return Ok(text.to_string());
    }
    std::fs::read_to_string(value)
        .map_err(|e| format!("--settings: cannot read the file {value:?}: {e}"))
}

/// `--settings`: one playground run, replayed, as JSON on stdout.
fn replay(recording: &Recording, seed: u64) -> ExitCode {
    let config = Config::standard();
    let sim = match recording.replay(&config, seed) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("brownout: --settings: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let json = replay_json(recording, &config, seed, &sim);
    if writeln!(std::io::stdout().lock(), "{json}").is_err() {
        return ExitCode::FAILURE; // stdout closed (a pipe): nothing to tell
    }
    ExitCode::SUCCESS
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
    if let Some(recording) = &args.settings {
        return replay(recording, args.seed);
    }
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

    const SETTINGS: &str = r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":3},"changes":[{"at_ms":1000,"trigger":1}],"until_ms":2000}"#;

    #[test]
    fn settings_inline_or_from_a_file() {
        let args = parse_args(&["--seed", "7", "--settings", SETTINGS])
            .unwrap()
            .unwrap();
        let recording = args.settings.unwrap();
        assert_eq!((args.seed, recording.clients.retries), (7, 3));
        assert_eq!(args.svg, None);
        // The page's whole export, from a file: its seed too.
        let path =
            std::env::temp_dir().join(format!("brownout-settings-{}.json", std::process::id()));
        std::fs::write(&path, format!(r#"{{"seed":"9","settings":{SETTINGS}}}"#)).unwrap();
        let file = path.to_str().unwrap();
        let args = parse_args(&["--settings", file]).unwrap().unwrap();
        assert_eq!((args.seed, args.settings), (9, Some(recording.clone())));
        let args = parse_args(&["--settings", file, "--seed", "9", "--series"])
            .unwrap()
            .unwrap();
        assert_eq!(args.seed, 9);
        let err = parse_args(&["--seed", "8", "--settings", file])
            .err()
            .unwrap();
        assert!(err.contains("--seed 8 differs"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = parse_args(&["--settings", file]).err().unwrap();
        assert!(err.starts_with("--settings: cannot read"), "{err}");
    }

    #[test]
    fn settings_refuse_a_chart_and_another_world() {
        for (args, names) in [
            (&["--settings", SETTINGS, "--svg", "x.svg"][..], "--svg"),
            (&["--svg", "x.svg", "--settings", SETTINGS][..], "--svg"),
            (
                &["--slowdown", "2", "--settings", SETTINGS][..],
                "--slowdown",
            ),
            (&["--settings", "{"][..], "--settings: not the page's JSON"),
            (
                &["--settings", r#"{"clients":{}}"#][..],
                "--settings: clients.retries: missing",
            ),
        ] {
            let err = parse_args(args).err().unwrap();
            assert!(err.starts_with(names), "{args:?}: {err}");
        }
        // --no-svg is fine: there is no chart anyway.
        assert!(parse_args(&["--no-svg", "--settings", SETTINGS]).is_ok());
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
