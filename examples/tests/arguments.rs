//! Every example program refuses bad arguments the same way: a message on
//! stderr that names the problem, exit status 2, never a panic; `--help`
//! prints the usage and exits 0. The programs run for real (the binaries
//! cargo built for this package), only with arguments that stop them before
//! any simulation starts.

use std::ffi::OsString;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BROWNOUT: &str = env!("CARGO_BIN_EXE_brownout");
const CHARGE: &str = env!("CARGO_BIN_EXE_charge");
const LOOPBACK: &str = env!("CARGO_BIN_EXE_loopback");
const MANUAL: &str = env!("CARGO_BIN_EXE_manual");

const ALL: [(&str, &str); 4] = [
    ("brownout", BROWNOUT),
    ("charge", CHARGE),
    ("loopback", LOOPBACK),
    ("manual", MANUAL),
];

/// Bad arguments, and what the message must name.
type Cases<'a> = &'a [(&'a [&'a str], &'a str)];

struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `program` with `args`; a program still running after 30 s (it took
/// bad arguments for good ones and started working) is killed and fails.
fn run(program: &str, args: &[OsString]) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the program") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{program} {args:?} was still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    let _ = child
        .stdout
        .take()
        .map(|mut s| s.read_to_string(&mut stdout));
    let _ = child
        .stderr
        .take()
        .map(|mut s| s.read_to_string(&mut stderr));
    Run {
        status: status.code(),
        stdout,
        stderr,
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Checks one refusal: status 2, `names` in stderr, no panic.
fn assert_refused(name: &str, program: &str, args: Vec<OsString>, names: &str) {
    let out = run(program, &args);
    assert!(
        !out.stderr.contains("panicked"),
        "{name} {args:?} panicked:\n{}",
        out.stderr
    );
    assert_eq!(
        out.status,
        Some(2),
        "{name} {args:?}: status {:?}, stderr:\n{}",
        out.status,
        out.stderr
    );
    let first_line = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with(&format!("{name}: ")) && first_line.contains(names),
        "{name} {args:?}: the message should name {names:?}:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("usage:"), "{name} {args:?}: no usage");
}

#[test]
fn help_exits_zero_with_the_usage() {
    for (name, program) in ALL {
        for flag in ["--help", "-h"] {
            let out = run(program, &os(&[flag]));
            assert_eq!(out.status, Some(0), "{name} {flag}: {}", out.stderr);
            assert!(
                out.stdout.starts_with("usage:"),
                "{name} {flag}: {}",
                out.stdout
            );
        }
    }
}

#[test]
fn arguments_no_program_knows() {
    let cases: Cases = &[
        (&["--bogus"], "--bogus"),
        (&["--bogus=1"], "--bogus"),
        (&["bogus"], "bogus"),
        (&["-x"], "-x"),
        (&["--"], "unknown argument"),
        (&[""], "unknown argument"),
        (&["--help=yes"], "--help"),
    ];
    for (name, program) in ALL {
        for (args, names) in cases {
            assert_refused(name, program, os(args), names);
        }
    }
}

#[test]
fn bad_values() {
    let seed_cases: Cases = &[
        (&["--seed"], "--seed"),
        (&["--seed", ""], "--seed"),
        (&["--seed="], "--seed"),
        (&["--seed", "x"], "--seed"),
        (&["--seed", "-1"], "--seed"),
        (&["--seed", "1.5"], "--seed"),
        (&["--seed", "18446744073709551616"], "--seed"),
        (&["--seed", "7", "--bogus"], "--bogus"),
    ];
    let table: &[(&str, &str, Cases)] = &[
        ("charge", CHARGE, seed_cases),
        ("manual", MANUAL, seed_cases),
        (
            "brownout",
            BROWNOUT,
            &[
                (&["--seed"], "--seed"),
                (&["--seed", "x"], "--seed"),
                (&["--seed", "-1"], "--seed"),
                (&["--seed", "18446744073709551616"], "--seed"),
                (&["--slowdown"], "--slowdown"),
                (&["--slowdown", "0.5"], "--slowdown"),
                (&["--slowdown", "1001"], "--slowdown"),
                (&["--slowdown", "NaN"], "--slowdown"),
                (&["--slowdown", "inf"], "--slowdown"),
                (&["--svg"], "--svg"),
                (&["--svg="], "--svg"),
                (&["--json=yes"], "--json"),
                (&["--no-svg=1"], "--no-svg"),
            ],
        ),
        (
            "loopback",
            LOOPBACK,
            &[
                (&["--seconds"], "--seconds"),
                (&["--seconds", "6"], "--seconds"),
                (&["--seconds", "13"], "--seconds"),
                (&["--seconds", "ten"], "--seconds"),
                (&["--seconds="], "--seconds"),
                (&["--clients", "0"], "--clients"),
                (&["--clients", "2001"], "--clients"),
                (&["--clients", "-5"], "--clients"),
                (&["--clients", "4294967296"], "--clients"),
                (&["--load", "0"], "--load"),
                (&["--load", "1.5"], "--load"),
                (&["--load", "NaN"], "--load"),
                (&["--load", "inf"], "--load"),
                (&["--load", ""], "--load"),
                (&["--load=0.5", "--clients"], "--clients"),
            ],
        ),
    ];
    for (name, program, cases) in table {
        for (args, names) in *cases {
            assert_refused(name, program, os(args), names);
        }
    }
}

#[cfg(unix)]
#[test]
fn arguments_that_are_not_utf8() {
    use std::os::unix::ffi::OsStringExt;
    let odd = || OsString::from_vec(vec![b'-', b'-', 0xFF, b'x']);
    let odd_value = || OsString::from_vec(vec![b'1', 0xFE]);
    for (name, program) in ALL {
        assert_refused(name, program, vec![odd()], "unknown argument");
    }
    for (name, program, flag) in [
        ("brownout", BROWNOUT, "--seed"),
        ("charge", CHARGE, "--seed"),
        ("manual", MANUAL, "--seed"),
        ("loopback", LOOPBACK, "--clients"),
    ] {
        assert_refused(name, program, vec![OsString::from(flag), odd_value()], flag);
    }
}
