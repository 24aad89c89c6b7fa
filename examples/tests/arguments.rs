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

/// Valid playground settings for `brownout --settings` (the page's shape).
const SETTINGS: &str = r#"{"scripted":false,"clients":{"retries":3,"backoff":2,"budget":2,"max_tokens":10,"token_ratio":0.1,"breaker":1,"adaptive":0,"method":3},"changes":[{"at_ms":1000,"trigger":1},{"at_ms":6000,"trigger":0}],"until_ms":9000}"#;
/// The same, with its changes out of time order.
const SETTINGS_BAD_ORDER: &str = r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":3},"changes":[{"at_ms":6000,"trigger":1},{"at_ms":1000,"trigger":0}],"until_ms":9000}"#;
/// The page's whole export of seed 7 (its series left out).
const SETTINGS_EXPORT: &str = r#"{"run":"custom settings","seed":"7","settings":{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":3},"until_ms":9000}}"#;

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
                // The playground's settings (see SETTINGS): each message
                // names the field.
                (&["--settings"], "--settings"),
                (&["--settings="], "--settings"),
                (&["--settings", "{"], "--settings: not the page's JSON"),
                // Not starting with '{': a file's name.
                (
                    &["--settings", "[]"],
                    "--settings: cannot read the file \"[]\"",
                ),
                (
                    &["--settings", "/no/such/settings.json"],
                    "--settings: cannot read",
                ),
                (
                    &["--settings", r#"{"until_ms":5}"#],
                    "--settings: clients: missing",
                ),
                (
                    &["--settings", r#"{"clients":{"retries":3,"backoff":9}}"#],
                    "clients.backoff",
                ),
                (
                    &["--settings", r#"{"clients":{"retries":-3}}"#],
                    "clients.retries",
                ),
                (
                    &[
                        "--settings",
                        r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":7},"until_ms":5}"#,
                    ],
                    "clients.method",
                ),
                (
                    &[
                        "--settings",
                        r#"{"clients":{"retries":3,"backoff":2,"budget":1,"max_tokens":0,"breaker":1,"adaptive":0,"method":3},"until_ms":5}"#,
                    ],
                    "clients.max_tokens",
                ),
                (
                    &[
                        "--settings",
                        r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":"yes","adaptive":0,"method":3},"until_ms":5}"#,
                    ],
                    "clients.breaker",
                ),
                (
                    &[
                        "--settings",
                        r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":3}}"#,
                    ],
                    "until_ms: missing",
                ),
                (
                    &[
                        "--settings",
                        r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":3},"until_ms":-1}"#,
                    ],
                    "until_ms",
                ),
                (
                    &[
                        "--settings",
                        r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":3},"until_ms":9e99}"#,
                    ],
                    "until_ms",
                ),
                (
                    &[
                        "--settings",
                        r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":3},"until_ms":5,"trigger":1}"#,
                    ],
                    "trigger: not a setting",
                ),
                (&["--settings", SETTINGS_BAD_ORDER], "changes[1].at_ms"),
                (
                    &[
                        "--settings",
                        r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":3},"until_ms":5,"changes":[{"at_ms":1,"trigger":"on"}]}"#,
                    ],
                    "changes[0].trigger",
                ),
                (
                    &[
                        "--settings",
                        r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":3},"until_ms":5,"changes":[{"at_ms":1,"clients":{"retries":1}}]}"#,
                    ],
                    "changes[0].clients.backoff",
                ),
                (&["--settings", r#"{"seed":"x","settings":{}}"#], "seed"),
                (&["--seed", "1", "--settings", SETTINGS_EXPORT], "--seed"),
                (&["--settings", SETTINGS, "--svg", "x.svg"], "--svg"),
                (&["--settings", SETTINGS, "--slowdown", "2"], "--slowdown"),
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
        ("brownout", BROWNOUT, "--settings"),
        ("charge", CHARGE, "--seed"),
        ("manual", MANUAL, "--seed"),
        ("loopback", LOOPBACK, "--clients"),
    ] {
        assert_refused(name, program, vec![OsString::from(flag), odd_value()], flag);
    }
}

/// Good settings run one playground run and print its series as JSON (the
/// browser test compares it with the page's export bucket by bucket).
#[test]
fn settings_print_the_run() {
    let out = run(BROWNOUT, &os(&["--seed", "7", "--settings", SETTINGS]));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    for key in [
        "\"offered_load\":[",
        "\"seed\":\"7\"",
        "\"double_charges\":0",
        "\"until_ms\":9000.0",
    ] {
        assert!(out.stdout.contains(key), "{key} in {}", out.stdout);
    }
    assert!(
        !out.stdout.contains("summary"),
        "a free-play run has no row"
    );
    // The page's whole export in a file: its seed, the same run.
    let path = std::env::temp_dir().join(format!("arguments-settings-{}.json", std::process::id()));
    std::fs::write(&path, SETTINGS_EXPORT).unwrap();
    let from_file = run(
        BROWNOUT,
        &[OsString::from("--settings"), path.clone().into()],
    );
    std::fs::remove_file(&path).unwrap();
    assert_eq!(from_file.status, Some(0), "{}", from_file.stderr);
    assert!(
        from_file.stdout.contains("\"seed\":\"7\""),
        "{}",
        from_file.stdout
    );
}
