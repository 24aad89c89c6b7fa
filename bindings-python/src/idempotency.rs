//! `stormguard.IdempotencyTable`, `new_idempotency_key`, and
//! `parse_retry_after`.

use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use stormguard::{Begin as CoreBegin, IdempotencyKey, SyncIdempotencyTable, Ticket as CoreTicket};

use crate::clock::now;
use crate::convert::{config, count, duration, type_name, whole};
use crate::http::{text_bytes, unix_now};

/// The largest capacity offered to Python: the core table's largest `N`
/// (≈ 120 bytes an entry; every verb costs the same at any size).
const MAX_CAPACITY: u32 = 65_536;

type Response = Arc<Py<PyAny>>;
type Key = Arc<str>;

/// The table sizes compiled in; a table uses the smallest that fits its
/// capacity, with the capacity as a hard limit.
enum Sized {
    S64(Box<SyncIdempotencyTable<Key, Response, 64>>),
    S1k(Box<SyncIdempotencyTable<Key, Response, 1024>>),
    S16k(Box<SyncIdempotencyTable<Key, Response, 16_384>>),
    S64k(Box<SyncIdempotencyTable<Key, Response, 65_536>>),
}

macro_rules! each {
    ($table:expr, $t:ident => $body:expr) => {
        match $table {
            Sized::S64($t) => $body,
            Sized::S1k($t) => $body,
            Sized::S16k($t) => $body,
            Sized::S64k($t) => $body,
        }
    };
}

/// A table of idempotency keys: runs each key's work once, replays its
/// stored response to retries (Stripe's keys, the IETF draft).
#[pyclass(name = "IdempotencyTable", module = "stormguard", frozen)]
pub(crate) struct IdempotencyTable {
    table: Sized,
    id: usize,
}

fn build<const N: usize>(
    capacity: usize,
    ttl: std::time::Duration,
) -> PyResult<Box<SyncIdempotencyTable<Key, Response, N>>> {
    let make = move || {
        stormguard::IdempotencyTable::<Key, Response, N>::with_timeouts(
            ttl,
            std::time::Duration::from_secs(60),
        )
        .and_then(|t| t.with_limit(capacity))
        .map(|table| Box::new(SyncIdempotencyTable::from_table(table)))
    };
    // The table is built by value, and moved a few times, before it is
    // boxed; the largest (8 MB) would overflow a thread's stack, so any but
    // the smallest is built on a thread whose stack holds several copies
    // (reserved address space: only the pages used are touched).
    let size = std::mem::size_of::<SyncIdempotencyTable<Key, Response, N>>();
    let table = if size < 1 << 14 {
        make()
    } else {
        std::thread::Builder::new()
            .stack_size(16 * size + (8 << 20))
            .spawn(make)
            .map_err(|e| PyRuntimeError::new_err(format!("cannot build the table: {e}")))?
            .join()
            .map_err(|_| PyRuntimeError::new_err("building the table panicked"))?
    };
    table.map_err(config)
}

#[pymethods]
impl IdempotencyTable {
    #[new]
    #[pyo3(
        signature = (capacity, ttl=None),
        text_signature = "(capacity, ttl=86400.0)"
    )]
    fn new(capacity: &Bound<'_, PyAny>, ttl: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let capacity = count("capacity", capacity)?;
        if capacity > MAX_CAPACITY {
            return Err(PyValueError::new_err(
                "invalid capacity: must be at most 65536 (shard larger tables)",
            ));
        }
        let ttl = match ttl {
            Some(v) => duration("ttl", v)?,
            None => std::time::Duration::from_secs(86_400),
        };
        let n = capacity as usize;
        let table = match capacity {
            0..=64 => Sized::S64(build(n, ttl)?),
            65..=1024 => Sized::S1k(build(n, ttl)?),
            1025..=16_384 => Sized::S16k(build(n, ttl)?),
            _ => Sized::S64k(build(n, ttl)?),
        };
        Ok(IdempotencyTable {
            table,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Starts a keyed request. `fingerprint` identifies the payload: `bytes`
    /// or `str` (digested with `stormguard.fingerprint`, a stable SipHash,
    /// never Python's `hash()`), or an `int` in 0..2**64 used as given. The
    /// same key with another fingerprint is a `mismatch`.
    fn begin(&self, py: Python<'_>, key: &str, fingerprint: &Bound<'_, PyAny>) -> PyResult<Begin> {
        let fingerprint = fingerprint_of(fingerprint)?;
        let key: Key = Arc::from(key);
        let answer = each!(&self.table, t => t.begin(key, fingerprint, now()));
        Ok(match answer {
            CoreBegin::Execute(ticket) => Begin {
                kind: "execute",
                status: None,
                response: None,
                ticket: Some(Py::new(
                    py,
                    Ticket {
                        inner: Mutex::new(Some(ticket)),
                        table: self.id,
                    },
                )?),
            },
            CoreBegin::Replay(response) => Begin {
                kind: "replay",
                status: None,
                response: Some(response.clone_ref(py)),
                ticket: None,
            },
            CoreBegin::InProgress => Begin::refused("in_progress", 409),
            CoreBegin::Mismatch => Begin::refused("mismatch", 422),
            CoreBegin::Full => Begin::refused("full", 503),
            // `Begin` is non-exhaustive: an answer this binding does not map
            // yet must not be mistaken for one it does.
            other => {
                return Err(PyRuntimeError::new_err(format!(
                    "unsupported idempotency table answer: {other:?}"
                )))
            }
        })
    }

    /// Stores the response of the work `ticket` ran. Returns False (and
    /// stores nothing) when the ticket is stale: its lease ran out and the
    /// key may have been taken over.
    fn complete(&self, ticket: &Ticket, response: Py<PyAny>) -> PyResult<bool> {
        let core = self.take(ticket)?;
        let response = Arc::new(response);
        Ok(each!(&self.table, t => t.complete(core, response, now()).is_ok()))
    }

    /// Releases the key: the work failed before any side effect, so a retry
    /// may run it. Returns False when the ticket is stale.
    fn abort(&self, ticket: &Ticket) -> PyResult<bool> {
        let core = self.take(ticket)?;
        Ok(each!(&self.table, t => t.abort(core).is_ok()))
    }

    /// The most keys the table holds at once.
    #[getter]
    fn capacity(&self) -> usize {
        each!(&self.table, t => t.with_table(|t| t.capacity()))
    }

    /// Keys in flight or completed and not yet expired.
    fn __len__(&self) -> usize {
        each!(&self.table, t => t.live_entries(now()))
    }
}

impl IdempotencyTable {
    fn take(&self, ticket: &Ticket) -> PyResult<CoreTicket> {
        if ticket.table != self.id {
            return Err(PyValueError::new_err(
                "this ticket belongs to another table",
            ));
        }
        ticket
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("ticket lock poisoned"))?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this ticket was already completed or aborted"))
    }
}

static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Permission to run one keyed request; complete or abort it once.
#[pyclass(name = "Ticket", module = "stormguard", frozen)]
pub(crate) struct Ticket {
    inner: Mutex<Option<CoreTicket>>,
    table: usize,
}

/// What `IdempotencyTable.begin` answered.
#[pyclass(name = "Begin", module = "stormguard", frozen)]
pub(crate) struct Begin {
    kind: &'static str,
    status: Option<u16>,
    response: Option<Py<PyAny>>,
    ticket: Option<Py<Ticket>>,
}

impl Begin {
    fn refused(kind: &'static str, status: u16) -> Begin {
        Begin {
            kind,
            status: Some(status),
            response: None,
            ticket: None,
        }
    }
}

#[pymethods]
impl Begin {
    /// `"execute"`, `"replay"`, `"in_progress"`, `"mismatch"` or `"full"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// The HTTP status to answer a refusal with: 409, 422 or 503.
    #[getter]
    fn status(&self) -> Option<u16> {
        self.status
    }

    /// The stored response, for `"replay"`.
    #[getter]
    fn response(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.response.as_ref().map(|r| r.clone_ref(py))
    }

    /// The ticket, for `"execute"`.
    #[getter]
    fn ticket(&self, py: Python<'_>) -> Option<Py<Ticket>> {
        self.ticket.as_ref().map(|t| t.clone_ref(py))
    }

    fn __repr__(&self) -> String {
        format!("Begin(kind={:?}, status={:?})", self.kind, self.status)
    }
}

/// A fresh idempotency key: a random UUIDv4 in its canonical text form.
#[pyfunction]
pub(crate) fn new_idempotency_key() -> String {
    IdempotencyKey::new().to_string()
}

/// A table fingerprint from a Python value: bytes and str digested, ints
/// as given.
fn fingerprint_of(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if value.is_instance_of::<pyo3::types::PyInt>() {
        return whole("fingerprint", value, u64::MAX);
    }
    match text_bytes("fingerprint", value) {
        Ok(bytes) => Ok(stormguard::fingerprint(&bytes)),
        Err(_) => Err(PyTypeError::new_err(format!(
            "fingerprint must be bytes, str or an int in 0..2**64, not {} \
             (Python's hash() is not a fingerprint: it collides and differs between processes)",
            type_name(value)
        ))),
    }
}

/// The stable 64-bit fingerprint `IdempotencyTable.begin` makes of a
/// `bytes` or `str` payload (SipHash-2-4 of its bytes, str as UTF-8, under a
/// fixed key): the same in every process and version.
#[pyfunction]
pub(crate) fn fingerprint(payload: &Bound<'_, PyAny>) -> PyResult<u64> {
    text_bytes("payload", payload).map(|bytes| stormguard::fingerprint(&bytes))
}

/// The most characters of a bad input an error message repeats.
const ECHO_LIMIT: usize = 100;

/// `value` for an error message: at most `ECHO_LIMIT` characters.
fn echo(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut shown: String = text.chars().take(ECHO_LIMIT).collect();
    if text.chars().nth(ECHO_LIMIT).is_some() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// Seconds to wait from an HTTP `Retry-After` value (delay-seconds or an
/// HTTP-date, RFC 9110 §10.2.3), as `str` or `bytes`; `None` gives `None`
/// (no header, no hint). `now` is the current Unix time (default: the
/// system clock). `ValueError` on anything RFC 9110 does not allow.
#[pyfunction]
#[pyo3(signature = (value, now=None))]
pub(crate) fn parse_retry_after(
    value: Option<&Bound<'_, PyAny>>,
    now: Option<f64>,
) -> PyResult<Option<f64>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let bytes = text_bytes("value", value)?;
    let now_unix = match now {
        Some(t) if t.is_finite() && t >= 0.0 => t as u64,
        Some(_) => {
            return Err(PyValueError::new_err(
                "invalid now: must be a Unix time >= 0",
            ))
        }
        None => unix_now(),
    };
    stormguard::classify::http::parse_retry_after(&*bytes, now_unix)
        .map(|d| Some(d.as_secs_f64()))
        .map_err(|e| PyValueError::new_err(format!("invalid Retry-After {}: {e}", echo(&bytes))))
}
