//! The playground's settings as JSON: what the page exports and shows in
//! its native command, read back into a [`Recording`] for
//! `brownout --settings`, and what that prints.
//!
//! The settings object (every key the page writes; `scripted`, `changes`,
//! `max_tokens` and `token_ratio` may be left out):
//!
//! ```json
//! {"scripted": false,
//!  "clients": {"retries": 3, "backoff": 2, "budget": 2, "max_tokens": 10, "token_ratio": 0.1,
//!              "breaker": 1, "adaptive": 0, "method": 3},
//!  "changes": [{"at_ms": 1000, "trigger": 1},
//!              {"at_ms": 2500, "clients": {"retries": 4, "backoff": 2, "budget": 2,
//!                                          "breaker": 1, "adaptive": 0, "method": 3}},
//!              {"at_ms": 6000, "trigger": 0}],
//!  "until_ms": 9000}
//! ```
//!
//! The codes are the page's controls' (the simulator's `from_code`
//! functions): `backoff` 0 none, 1 exponential, 2 full jitter; `budget` 0
//! off, 1 a `Throttle` of `max_tokens` and `token_ratio`, 2 a
//! `RetryBudget`; `method` 0 `greet`, 1 `charge` without a key, 2 `charge`
//! declared non-idempotent, 3 `charge` with a key; `breaker`, `adaptive`
//! and `trigger` 0 or 1 (or `false`, `true`). Times are the page's virtual
//! milliseconds (fractions allowed; the simulator keeps whole
//! microseconds). `until_ms` is how far the clock went: required for a
//! free-play run; a scripted run (the table's: the trigger from 5 s to
//! 15 s, calls for 30 s) without it, or taken to 30 s, runs to its end.
//!
//! The page's whole export (an object with a `settings` key) is read too:
//! its `settings`, and its `seed`; its other keys (the series it showed)
//! are not read.
//!
//! ```
//! use stormguard_examples::brownout::{read_settings, Config};
//! let page = read_settings(r#"{"clients": {"retries": 3, "backoff": 2, "budget": 2,
//!     "breaker": 1, "adaptive": 0, "method": 3},
//!     "changes": [{"at_ms": 1000, "trigger": 1}, {"at_ms": 6000, "trigger": 0}],
//!     "until_ms": 9000}"#)?;
//! let sim = page.recording.replay(&Config::standard(), 7).unwrap();
//! assert_eq!(sim.buckets(), 91);
//! let err = read_settings(r#"{"clients": {"retries": 3, "backoff": 7}}"#).unwrap_err();
//! assert!(err.starts_with("clients.backoff:"), "{err}");
//! # Ok::<(), String>(())
//! ```

use core::time::Duration;

use serde_json::{json, Map, Value};
use stormguard_sim::{
    page_ms, page_time, BackoffKind, BudgetKind, Change, Clients, Config, Method, Recording, Sim,
    THROTTLE_RATIO, THROTTLE_TOKENS,
};

/// The longest virtual time a setting may name: a day, the world's own
/// limit on a run (`Config::validate`).
pub const MAX_SETTINGS_MS: f64 = 86_400_000.0;

/// Settings read by [`read_settings`].
#[derive(Clone, Debug, PartialEq)]
pub struct PageSettings {
    /// The run to replay.
    pub recording: Recording,
    /// The seed, when the text was the page's whole export.
    pub seed: Option<u64>,
}

/// Reads the page's settings object, or its whole export (see the module
/// docs).
///
/// # Errors
/// A message that starts with the offending field's path
/// (`clients.backoff`, `changes[2].at_ms`, …) and says what it must be;
/// or where the text stops being JSON.
pub fn read_settings(text: &str) -> Result<PageSettings, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("not the page's JSON: {e}"))?;
    let Some(object) = value.as_object() else {
        return Err("must be a JSON object (the page's settings or its export)".into());
    };
    if let Some(settings) = object.get("settings") {
        let seed = object.get("seed").map(|v| seed(v, "seed")).transpose()?;
        let recording = recording(settings, "settings.")?;
        return Ok(PageSettings { recording, seed });
    }
    Ok(PageSettings {
        recording: recording(&value, "")?,
        seed: None,
    })
}

/// The settings object of a recording, as the page writes it (a scripted
/// run's `until_ms` is its duration when it runs to the end; the
/// `Throttle`'s numbers are written only when it is the budget).
pub fn settings_json(recording: &Recording, config: &Config) -> Value {
    let changes: Vec<Value> = recording
        .changes
        .iter()
        .map(|&(at, change)| match change {
            Change::Trigger(on) => json!({"at_ms": page_ms(at), "trigger": u32::from(on)}),
            Change::Clients(clients) => {
                json!({"at_ms": page_ms(at), "clients": clients_json(&clients)})
            }
        })
        .collect();
    let until = recording.until.unwrap_or(config.duration);
    json!({
        "scripted": recording.scripted,
        "clients": clients_json(&recording.clients),
        "changes": changes,
        "until_ms": page_ms(until),
    })
}

/// What `brownout --settings` prints: the seed, the settings as read, and
/// what the page's export holds for the same run — the offered load per
/// bucket (`offered_load`, as `--series` prints the presets'), the
/// counters, and the table's row when the run went to its end.
pub fn replay_json(recording: &Recording, config: &Config, seed: u64, sim: &Sim) -> Value {
    let offered: Vec<f64> = (0..sim.buckets()).map(|i| sim.offered_load_at(i)).collect();
    let mut out = json!({
        "seed": seed.to_string(),
        "settings": settings_json(recording, config),
        "bucket_ms": page_ms(config.bucket),
        "offered_load": offered,
        "counters": {
            "calls_started": sim.calls_started(),
            "calls_succeeded": sim.calls_succeeded(),
            "attempts": sim.attempts(),
            "charges": sim.charges(),
            "double_charges": sim.double_charges(),
            "replayed": sim.replayed(),
            "unsafe_replays_refused": sim.unsafe_replays_refused(),
        },
    });
    if recording.runs_to_end(config) {
        let s = sim.summary();
        out["summary"] = json!({
            "peak_offered_load": s.peak_offered_load,
            "offered_load_after_trigger": s.offered_load_after_trigger,
            "recovered_after_s": s.recovered_after.map(|d| d.as_secs_f64()),
            "goodput": s.goodput,
            "attempts_per_call": s.attempts_per_call,
        });
    }
    out
}

fn clients_json(clients: &Clients) -> Value {
    let mut out = json!({
        "retries": clients.retries,
        "backoff": clients.backoff.code(),
        "budget": clients.budget.code(),
        "breaker": u32::from(clients.breaker),
        "adaptive": u32::from(clients.adaptive),
        "method": clients.method.code(),
    });
    if let BudgetKind::Throttle {
        max_tokens,
        token_ratio,
    } = clients.budget
    {
        out["max_tokens"] = json!(max_tokens);
        out["token_ratio"] = json!(token_ratio);
    }
    out
}

/// An object whose keys are all in `known`.
fn object<'a>(v: &'a Value, path: &str, known: &[&str]) -> Result<&'a Map<String, Value>, String> {
    let name = if path.is_empty() {
        "the settings"
    } else {
        path
    };
    let object = v
        .as_object()
        .ok_or_else(|| format!("{name}: must be a JSON object"))?;
    if let Some(key) = object.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "{path}{}{key}: not a setting (known: {})",
            if path.is_empty() { "" } else { "." },
            known.join(", ")
        ));
    }
    Ok(object)
}

fn required<'a>(object: &'a Map<String, Value>, path: &str) -> Result<&'a Value, String> {
    let key = path.rsplit('.').next().unwrap_or(path);
    object
        .get(key)
        .ok_or_else(|| format!("{path}: missing (the page always writes it)"))
}

fn whole(v: &Value, path: &str) -> Result<u32, String> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            format!(
                "{path}: must be a whole number from 0 to {}, not {v}",
                u32::MAX
            )
        })
}

fn code<T>(
    v: &Value,
    path: &str,
    from: impl Fn(u32) -> Option<T>,
    what: &str,
) -> Result<T, String> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .and_then(from)
        .ok_or_else(|| format!("{path}: must be {what}, not {v}"))
}

fn flag(v: &Value, path: &str) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        _ => Err(format!("{path}: must be 0 or 1 (or false, true), not {v}")),
    }
}

fn time(v: &Value, path: &str) -> Result<Duration, String> {
    match v.as_f64() {
        Some(ms) if ms.is_finite() && (0.0..=MAX_SETTINGS_MS).contains(&ms) => Ok(page_time(ms)),
        _ => Err(format!(
            "{path}: must be virtual milliseconds from 0 to {MAX_SETTINGS_MS} (a day), not {v}"
        )),
    }
}

fn seed(v: &Value, path: &str) -> Result<u64, String> {
    let parsed = match v {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    parsed.ok_or_else(|| format!("{path}: must be a number from 0 to {}, not {v}", u64::MAX))
}

const CLIENT_KEYS: [&str; 8] = [
    "retries",
    "backoff",
    "budget",
    "max_tokens",
    "token_ratio",
    "breaker",
    "adaptive",
    "method",
];

fn clients(v: &Value, path: &str) -> Result<Clients, String> {
    let object = object(v, path, &CLIENT_KEYS)?;
    let field = |key: &str| format!("{path}.{key}");
    let get = |key: &str| required(object, &field(key));
    let retries = whole(get("retries")?, &field("retries"))?;
    let backoff = code(
        get("backoff")?,
        &field("backoff"),
        BackoffKind::from_code,
        "0 (none), 1 (exponential) or 2 (full jitter)",
    )?;
    let max_tokens = match object.get("max_tokens") {
        Some(v) => whole(v, &field("max_tokens"))?,
        None => THROTTLE_TOKENS,
    };
    let token_ratio = match object.get("token_ratio") {
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("{}: must be a number, not {v}", field("token_ratio")))?,
        None => THROTTLE_RATIO,
    };
    let budget = code(
        get("budget")?,
        &field("budget"),
        |c| BudgetKind::from_code(c, max_tokens, token_ratio),
        "0 (off), 1 (Throttle) or 2 (RetryBudget)",
    )?;
    let clients = Clients {
        retries,
        backoff,
        budget,
        breaker: flag(get("breaker")?, &field("breaker"))?,
        adaptive: flag(get("adaptive")?, &field("adaptive"))?,
        method: code(
            get("method")?,
            &field("method"),
            Method::from_code,
            "0 (greet), 1 (charge, no key), 2 (charge, declared NonIdempotent) or 3 (charge with a key)",
        )?,
    };
    // The checks stormguard makes when the simulator builds the clients.
    clients.validate().map_err(|e| {
        let key = match e.field() {
            "max_attempts" => "retries",
            other => other,
        };
        format!("{}: {} (stormguard refused it)", field(key), e.kind())
    })?;
    Ok(clients)
}

fn recording(v: &Value, prefix: &str) -> Result<Recording, String> {
    let object = object(
        v,
        prefix.trim_end_matches('.'),
        &["scripted", "clients", "changes", "until_ms"],
    )?;
    let path = |key: &str| format!("{prefix}{key}");
    let scripted = match object.get("scripted") {
        Some(v) => flag(v, &path("scripted"))?,
        None => false,
    };
    let start = clients(required(object, &path("clients"))?, &path("clients"))?;
    let mut changes = Vec::new();
    if let Some(list) = object.get("changes") {
        let list = list
            .as_array()
            .ok_or_else(|| format!("{}: must be a list", path("changes")))?;
        for (i, change) in list.iter().enumerate() {
            let at = format!("{}[{i}]", path("changes"));
            let fields = object_of_change(change, &at)?;
            let time_at = time(
                required(fields, &format!("{at}.at_ms"))?,
                &format!("{at}.at_ms"),
            )?;
            if let Some(&(before, _)) = changes.last() {
                if time_at < before {
                    return Err(format!(
                        "{at}.at_ms: {} is before the change above it ({} ms); changes come in time order",
                        page_ms(time_at),
                        page_ms(before)
                    ));
                }
            }
            let made = match (fields.get("trigger"), fields.get("clients")) {
                (Some(on), None) => Change::Trigger(flag(on, &format!("{at}.trigger"))?),
                (None, Some(c)) => Change::Clients(clients(c, &format!("{at}.clients"))?),
                _ => {
                    return Err(format!(
                        "{at}: needs \"trigger\" or \"clients\" (one of them) beside \"at_ms\""
                    ))
                }
            };
            changes.push((time_at, made));
        }
    }
    let until = match object.get("until_ms") {
        Some(v) => Some(time(v, &path("until_ms"))?),
        None if scripted => None,
        None => {
            return Err(format!(
                "{}: missing (a free-play run needs how far its clock went)",
                path("until_ms")
            ))
        }
    };
    if let (Some(until), Some(&(last, _))) = (until, changes.last()) {
        if last > until {
            return Err(format!(
                "{}: {} is before the last change ({} ms)",
                path("until_ms"),
                page_ms(until),
                page_ms(last)
            ));
        }
    }
    Ok(Recording {
        scripted,
        clients: start,
        changes,
        until,
    })
}

fn object_of_change<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, String> {
    object(v, path, &["at_ms", "trigger", "clients"])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"{"scripted":false,
        "clients":{"retries":3,"backoff":2,"budget":2,"max_tokens":10,"token_ratio":0.1,"breaker":1,"adaptive":0,"method":3},
        "changes":[{"at_ms":1000.3,"trigger":1},
                   {"at_ms":2500,"clients":{"retries":4,"backoff":2,"budget":1,"max_tokens":20,"token_ratio":0.25,"breaker":1,"adaptive":1,"method":3}},
                   {"at_ms":6000,"trigger":0}],
        "until_ms":9050.5}"#;

    #[test]
    fn the_page_s_settings_read_and_written_back() {
        let read = read_settings(PAGE).unwrap();
        assert_eq!(read.seed, None);
        let r = &read.recording;
        assert!(!r.scripted);
        assert_eq!(r.clients.retries, 3);
        assert_eq!(r.clients.backoff, BackoffKind::FullJitter);
        assert_eq!(r.clients.budget, BudgetKind::RetryBudget);
        assert!(r.clients.breaker && !r.clients.adaptive);
        assert_eq!(r.clients.method, Method::ChargeWithKey);
        assert_eq!(r.changes.len(), 3);
        assert_eq!(
            r.changes[0],
            (Duration::from_micros(1_000_300), Change::Trigger(true))
        );
        let Change::Clients(later) = r.changes[1].1 else {
            panic!("{:?}", r.changes[1]);
        };
        assert_eq!(
            later.budget,
            BudgetKind::Throttle {
                max_tokens: 20,
                token_ratio: 0.25
            }
        );
        assert_eq!(r.until, Some(Duration::from_micros(9_050_500)));
        // Written back, and read again: the same recording.
        let config = Config::standard();
        let written = settings_json(r, &config).to_string();
        assert_eq!(read_settings(&written).unwrap().recording, *r);
        // The page's whole export: its settings and its seed.
        let export = format!(
            r#"{{"run":"custom settings","seed":"7","settings":{PAGE},"offered_load":[1]}}"#
        );
        let read = read_settings(&export).unwrap();
        assert_eq!(read.seed, Some(7));
        assert_eq!(read.recording, *r);
    }

    #[test]
    fn a_scripted_run_without_until_runs_to_its_end() {
        let read = read_settings(
            r#"{"scripted":true,"clients":{"retries":3,"backoff":0,"budget":0,"breaker":0,"adaptive":0,"method":0}}"#,
        )
        .unwrap();
        let config = Config::small();
        assert!(read.recording.runs_to_end(&config));
        let sim = read.recording.replay(&config, 1).unwrap();
        let native = stormguard_sim::simulate(&config, stormguard_sim::Scenario::Naive, 1).unwrap();
        let out = replay_json(&read.recording, &config, 1, &sim);
        assert_eq!(out["offered_load"], json!(native.offered_load));
        assert_eq!(out["summary"]["goodput"], json!(native.goodput));
        assert_eq!(out["seed"], json!("1"));
    }

    #[test]
    fn bad_settings_name_their_field() {
        let clients =
            r#""clients":{"retries":3,"backoff":2,"budget":2,"breaker":1,"adaptive":0,"method":3}"#;
        let cases: &[(&str, &str)] = &[
            ("", "not the page's JSON"),
            ("{", "not the page's JSON"),
            ("[1]", "must be a JSON object"),
            (r#"{"until_ms":1}"#, "clients: missing"),
            (&format!("{{{clients}}}"), "until_ms: missing"),
            (
                &format!(r#"{{{clients},"until_ms":-1}}"#),
                "until_ms: must be",
            ),
            (
                &format!(r#"{{{clients},"until_ms":1e300}}"#),
                "until_ms: must be",
            ),
            (
                &format!(r#"{{{clients},"until_ms":"5"}}"#),
                "until_ms: must be",
            ),
            (
                &format!(r#"{{{clients},"until_ms":5,"bogus":1}}"#),
                "bogus: not a setting",
            ),
            (
                &format!(r#"{{{clients},"until_ms":5,"scripted":2}}"#),
                "scripted: must be 0 or 1",
            ),
            (
                &format!(r#"{{{clients},"until_ms":5,"changes":{{}}}}"#),
                "changes: must be a list",
            ),
            (
                &format!(r#"{{{clients},"until_ms":5,"changes":[{{"trigger":1}}]}}"#),
                "changes[0].at_ms: missing",
            ),
            (
                &format!(r#"{{{clients},"until_ms":5,"changes":[{{"at_ms":1}}]}}"#),
                "changes[0]: needs",
            ),
            (
                &format!(
                    r#"{{{clients},"until_ms":5,"changes":[{{"at_ms":1,"trigger":1,"clients":{{}}}}]}}"#
                ),
                "changes[0]: needs",
            ),
            (
                &format!(r#"{{{clients},"until_ms":5,"changes":[{{"at_ms":1,"trigger":"on"}}]}}"#),
                "changes[0].trigger: must be",
            ),
            (
                &format!(
                    r#"{{{clients},"until_ms":5,"changes":[{{"at_ms":2,"trigger":1}},{{"at_ms":1,"trigger":0}}]}}"#
                ),
                "changes[1].at_ms: 1 is before",
            ),
            (
                &format!(r#"{{{clients},"until_ms":1,"changes":[{{"at_ms":2,"trigger":1}}]}}"#),
                "until_ms: 1 is before",
            ),
            (
                &format!(
                    r#"{{{clients},"until_ms":5,"changes":[{{"at_ms":1,"clients":{{"retries":1}}}}]}}"#
                ),
                "changes[0].clients.backoff: missing",
            ),
            (
                &format!(r#"{{{clients},"until_ms":5,"changes":[{{"at_ms":1,"when":1}}]}}"#),
                "changes[0].when: not a setting",
            ),
            (
                r#"{"clients":{"retries":-1},"until_ms":5}"#,
                "clients.retries: must be a whole number",
            ),
            (
                r#"{"clients":{"retries":1.5},"until_ms":5}"#,
                "clients.retries: must be a whole number",
            ),
            (
                r#"{"clients":{"retries":4294967296},"until_ms":5}"#,
                "clients.retries: must be a whole number",
            ),
            (
                r#"{"clients":{"retries":3,"backoff":3},"until_ms":5}"#,
                "clients.backoff: must be 0 (none)",
            ),
            (
                r#"{"clients":{"retries":3,"backoff":2,"budget":3},"until_ms":5}"#,
                "clients.budget: must be 0 (off)",
            ),
            (
                r#"{"clients":{"retries":3,"backoff":2,"budget":1,"max_tokens":0,"breaker":0,"adaptive":0,"method":0},"until_ms":5}"#,
                "clients.max_tokens: must",
            ),
            (
                r#"{"clients":{"retries":3,"backoff":2,"budget":1,"token_ratio":"x","breaker":0,"adaptive":0,"method":0},"until_ms":5}"#,
                "clients.token_ratio: must be a number",
            ),
            (
                r#"{"clients":{"retries":3,"backoff":2,"budget":1,"token_ratio":0.0001,"breaker":0,"adaptive":0,"method":0},"until_ms":5}"#,
                "clients.token_ratio: must",
            ),
            (
                r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":2,"adaptive":0,"method":0},"until_ms":5}"#,
                "clients.breaker: must be 0 or 1",
            ),
            (
                r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":0,"adaptive":0,"method":4},"until_ms":5}"#,
                "clients.method: must be 0 (greet)",
            ),
            (
                r#"{"clients":{"retries":3,"backoff":2,"budget":2,"breaker":0,"adaptive":0,"method":0,"jitter":1},"until_ms":5}"#,
                "clients.jitter: not a setting",
            ),
            (r#"{"seed":"x","settings":{}}"#, "seed: must be a number"),
            (r#"{"seed":"-1","settings":{}}"#, "seed: must be a number"),
            (
                r#"{"seed":"18446744073709551616","settings":{}}"#,
                "seed: must be a number",
            ),
            (
                r#"{"seed":"1","settings":{"until_ms":5}}"#,
                "settings.clients: missing",
            ),
            (
                r#"{"seed":"1","settings":[]}"#,
                "settings: must be a JSON object",
            ),
        ];
        for (text, names) in cases {
            let err = read_settings(text).expect_err(text);
            assert!(
                err.starts_with(names) || (names.starts_with("not") && err.contains(names)),
                "{text}: {err:?} should start with {names:?}"
            );
        }
    }
}
