//! The store: the table's verbs, each one script call, retried when its
//! reply is lost.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RetryMethod, Script, ScriptInvocation, Value};
use stormguard::{Failure, IdempotencyKey};
use stormguard_smol::RetryExt;

use crate::config::StoreConfig;
use crate::error::{Error, Unavailable};
use crate::keys::{check_fingerprint, entry_key, fence_key};
use crate::scripts;

/// The scripts, hashed once per process (`EVALSHA`, with a `SCRIPT LOAD`
/// when a server does not know them yet).
struct Scripts {
    begin: Script,
    complete: Script,
    abort: Script,
    inspect: Script,
}

fn loaded() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        begin: Script::new(scripts::BEGIN),
        complete: Script::new(scripts::COMPLETE),
        abort: Script::new(scripts::ABORT),
        inspect: Script::new(scripts::INSPECT),
    })
}

/// What [`RedisStore::begin`] says to do with a keyed request: the answers
/// of [`stormguard::IdempotencyTable::begin`], shared by every server that
/// uses the same Redis.
///
/// | answer | the server |
/// |---|---|
/// | [`Execute`](Begin::Execute)`(ticket)` | runs the request, then [`complete`](RedisStore::complete)s (or [`abort`](RedisStore::abort)s) with the ticket |
/// | [`Replay`](Begin::Replay)`(response)` | answers with the stored response |
/// | [`InProgress`](Begin::InProgress) | answers `409 Conflict`: another server runs it now |
/// | [`Mismatch`](Begin::Mismatch) | answers `422 Unprocessable Content`: the key came with another payload |
///
/// There is no `Full`: Redis holds as many keys as its memory allows, and
/// a write refused for want of memory is [`Error::Unavailable`] (503).
///
/// ```
/// use stormguard_redis::Begin;
/// assert_eq!(Begin::InProgress.refusal_status(), Some(409));
/// assert_eq!(Begin::Mismatch.refusal_status(), Some(422));
/// assert_eq!(Begin::Replay(b"ok".to_vec()).refusal_status(), None);
/// ```
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an `Execute` ticket must be completed or aborted, and a refusal answered"]
#[non_exhaustive]
pub enum Begin {
    /// Run the request; the ticket holds the key until the lease ends.
    Execute(Ticket),
    /// The request completed: its stored response.
    Replay(Vec<u8>),
    /// The request is running under another ticket: `409 Conflict`.
    InProgress,
    /// The key was used with another fingerprint: `422 Unprocessable
    /// Content`.
    Mismatch,
}

impl Begin {
    /// The HTTP status of a refusal (409 or 422), or `None` for `Execute`
    /// and `Replay`.
    ///
    /// ```
    /// assert_eq!(stormguard_redis::Begin::InProgress.refusal_status(), Some(409));
    /// ```
    pub fn refusal_status(&self) -> Option<u16> {
        match self {
            Begin::Execute(_) | Begin::Replay(_) => None,
            Begin::InProgress => Some(409),
            Begin::Mismatch => Some(422),
        }
    }
}

/// The right to finish one execution of a keyed request, given by
/// [`Begin::Execute`].
///
/// A ticket names its key and its *owner token*: 128 random bits made for
/// the one call of `begin` that got it. The scripts let a ticket complete or
/// abort its key only while the entry still carries that owner — that is,
/// while its lease lasts — so a worker that outlived its lease is fenced off
/// (its `complete` answers [`Error::Stale`]) and cannot overwrite the result
/// of the execution that took the key over.
///
/// `complete` and `abort` borrow the ticket, so that an operation that
/// answered [`Error::Unavailable`] can be retried with it: both are
/// idempotent (a re-sent `complete` finds its own response stored and
/// answers `Ok`).
///
/// ```no_run
/// # async fn run(store: stormguard_redis::RedisStore) -> Result<(), stormguard_redis::Error> {
/// use stormguard_redis::Begin;
/// if let Begin::Execute(ticket) = store.begin("order-7", b"sha256 of the payload").await? {
///     assert_eq!(ticket.key(), "order-7");
///     let token = ticket.fencing_token(); // send it along to a store that can compare numbers
///     store.complete(&ticket, format!("charged, token {token}").as_bytes()).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a ticket must be completed or aborted, or its key stays in progress until the lease runs out"]
pub struct Ticket {
    key: String,
    entry: String,
    owner: String,
    generation: u64,
    lease_ends: Instant,
}

impl Ticket {
    /// The idempotency key this ticket holds.
    ///
    /// ```no_run
    /// # fn f(ticket: stormguard_redis::Ticket) { println!("{}", ticket.key()); }
    /// ```
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A number that grows with every execution of this key (it is kept
    /// for the TTL plus a lease after the last one): a fencing token for a
    /// downstream store that can refuse a write carrying a smaller token
    /// than one it has seen.
    ///
    /// ```no_run
    /// # fn f(ticket: stormguard_redis::Ticket) { assert!(ticket.fencing_token() >= 1); }
    /// ```
    pub fn fencing_token(&self) -> u64 {
        self.generation
    }

    /// The owner token: the 128 random bits (as UUID text) that identify
    /// the call of `begin` this ticket came from.
    ///
    /// ```no_run
    /// # fn f(ticket: stormguard_redis::Ticket) { assert_eq!(ticket.owner().len(), 36); }
    /// ```
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// When the lease ends at the latest, by this process's clock: measured
    /// from just before `begin` was sent, so Redis's own expiry is never
    /// earlier. A completer that keeps retrying through an outage should
    /// stop here — after it, the key may belong to another execution.
    ///
    /// ```no_run
    /// # fn f(ticket: stormguard_redis::Ticket) {
    /// let left = ticket.lease_ends().saturating_duration_since(std::time::Instant::now());
    /// # }
    /// ```
    pub fn lease_ends(&self) -> Instant {
        self.lease_ends
    }
}

/// What [`RedisStore::inspect`] reads about a key.
///
/// ```no_run
/// # async fn f(store: stormguard_redis::RedisStore) -> Result<(), stormguard_redis::Error> {
/// if let Some(entry) = store.inspect("order-7").await? {
///     println!("{:?} for {:?} more", entry.state, entry.expires_in);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// In flight or completed.
    pub state: EntryState,
    /// The fingerprint the key was claimed with.
    pub fingerprint: Vec<u8>,
    /// The owner token of the execution that claimed it.
    pub owner: String,
    /// Its fencing token.
    pub generation: u64,
    /// How long until Redis deletes it (the lease or the TTL left); `None`
    /// if it has no expiry, which the scripts never write.
    pub expires_in: Option<Duration>,
}

/// The two states of an entry.
///
/// ```
/// assert_ne!(stormguard_redis::EntryState::Running, stormguard_redis::EntryState::Done);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryState {
    /// In flight: held by a lease.
    Running,
    /// Completed: its response is replayed until the TTL ends.
    Done,
}

/// The idempotency table's verbs on Redis, for a fleet of servers: a retry
/// that lands on another replica finds the first attempt's entry.
///
/// Each verb is one atomic Lua script ([`scripts`](crate::scripts)), sent
/// with `EVALSHA` (and loaded when a server does not know it), on a
/// connection `C`: by default a [`ConnectionManager`], which reconnects by
/// itself; any [`redis::aio::ConnectionLike`] works, a Redis Cluster
/// connection included (feature `cluster`). Async on smol — no tokio
/// runtime needed — and [`BlockingRedisStore`] for threads.
///
/// Every script call has a time budget (`attempt_timeout`) and is retried
/// under the store's [`RetryPolicy`](stormguard::RetryPolicy), by
/// stormguard's own retry driver; when every attempt failed, the verb
/// answers [`Error::Unavailable`]. Retrying is safe because each call is
/// recognisable: `begin` sends an owner token made once per call, so a
/// re-sent `begin` whose first reply was lost gets the same ticket back
/// instead of a second claim (or a `409` against itself); `complete` and
/// `abort` act only for their owner and find their own work done when
/// re-sent.
///
/// ```no_run
/// use stormguard_redis::{Begin, RedisStore, StoreConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::open("redis://127.0.0.1:6379/", StoreConfig::default())?;
/// let answer = smol::block_on(async {
///     match store.begin("order-7", b"fingerprint").await? {
///         Begin::Execute(ticket) => {
///             let response = b"charged".to_vec(); // …the work…
///             store.complete(&ticket, &response).await?;
///             Ok(response)
///         }
///         Begin::Replay(response) => Ok(response),
///         refused => Err(stormguard_redis::Error::Unexpected {
///             operation: "begin",
///             detail: format!("HTTP {:?}", refused.refusal_status()),
///         }),
///     }
/// })?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore<C = ConnectionManager> {
    conn: C,
    config: Arc<StoreConfig>,
}

impl<C> std::fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The [`ConnectionManager`] settings the store opens with: connections and
/// replies time out with the store's attempt timeout, and a lost connection
/// is re-made in the background (a few quick tries, then again at the next
/// call).
fn manager_config(config: &StoreConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.attempt_timeout()))
        .set_response_timeout(Some(config.attempt_timeout()))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(250))
}

impl RedisStore<ConnectionManager> {
    /// A store on the Redis at `url` (`redis://host:port/db`), connected
    /// lazily: opening never waits for Redis, and a server that starts
    /// before Redis answers `503` until Redis is up.
    ///
    /// # Errors
    /// The `redis` crate's error for a malformed URL.
    ///
    /// ```
    /// use stormguard_redis::{RedisStore, StoreConfig};
    /// // Nothing listens there: opening succeeds, the first call would not.
    /// let store = RedisStore::open("redis://127.0.0.1:1/", StoreConfig::default())?;
    /// assert!(RedisStore::open("not a url", StoreConfig::default()).is_err());
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    pub fn open(url: &str, config: StoreConfig) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config(&config))?;
        Ok(RedisStore::with_connection(conn, config))
    }
}

impl<C> RedisStore<C> {
    /// A store on an existing connection: a [`redis::aio::MultiplexedConnection`],
    /// a [`ConnectionManager`], or a Redis Cluster connection.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), redis::RedisError> {
    /// let client = redis::Client::open("redis://127.0.0.1/")?;
    /// let conn = client.get_multiplexed_async_connection().await?;
    /// let store = stormguard_redis::RedisStore::with_connection(conn, Default::default());
    /// # Ok(()) }
    /// ```
    pub fn with_connection(conn: C, config: StoreConfig) -> Self {
        RedisStore {
            conn,
            config: Arc::new(config),
        }
    }

    /// The store's settings.
    ///
    /// ```
    /// let store = stormguard_redis::RedisStore::open("redis://127.0.0.1:1/", Default::default())?;
    /// assert_eq!(store.config().lease().as_secs(), 60);
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> RedisStore<C> {
    /// Looks `key` up and claims it if it is free; see [`Begin`].
    ///
    /// `fingerprint` identifies the request's payload (a hash of its
    /// canonical form, at most 1024 bytes): the same key with another
    /// fingerprint is [`Begin::Mismatch`], whatever the entry's state.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty key, a key over 255 bytes or a
    /// fingerprint over 1024 bytes; [`Error::Unavailable`] when Redis did
    /// not answer any attempt (the request must not run: answer 503). A
    /// `begin` that reached Redis but whose every reply was lost leaves its
    /// key in flight: the store then sends a best-effort `abort`, and if that
    /// is lost too the key is held until its lease ends, by a claim nobody
    /// acts on — the request runs later, once.
    ///
    /// ```no_run
    /// # async fn f(store: stormguard_redis::RedisStore) -> Result<(), stormguard_redis::Error> {
    /// match store.begin("order-7", b"fp").await? {
    ///     stormguard_redis::Begin::Execute(ticket) => store.abort(&ticket).await?,
    ///     other => println!("{other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn begin(&self, key: &str, fingerprint: &[u8]) -> Result<Begin, Error> {
        let entry = entry_key(self.config.prefix(), key)?;
        check_fingerprint(fingerprint)?;
        let fence = fence_key(&entry);
        let owner = IdempotencyKey::new().to_string();
        let lease = self.config.lease();
        let lease_ends = Instant::now() + lease;
        let lease_ms = StoreConfig::millis(lease);
        let fence_ms = StoreConfig::millis(self.config.fence_ttl());
        let reply = self
            .run("begin", &loaded().begin, |call| {
                call.key(&entry)
                    .key(&fence)
                    .arg(fingerprint)
                    .arg(&owner)
                    .arg(lease_ms)
                    .arg(fence_ms);
            })
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(err) => {
                if err.is_unavailable() {
                    self.release(&entry, &owner).await;
                }
                return Err(err);
            }
        };
        let Value::Array(items) = reply else {
            return Err(unexpected("begin", &reply));
        };
        match (items.first().and_then(text), items.get(1)) {
            (Some("execute"), Some(Value::Int(generation))) => Ok(Begin::Execute(Ticket {
                key: key.to_owned(),
                entry,
                owner,
                generation: u64::try_from(*generation).unwrap_or(0),
                lease_ends,
            })),
            (Some("replay"), Some(Value::BulkString(response))) => {
                Ok(Begin::Replay(response.clone()))
            }
            (Some("in_progress"), _) => Ok(Begin::InProgress),
            (Some("mismatch"), _) => Ok(Begin::Mismatch),
            _ => Err(unexpected("begin", &Value::Array(items))),
        }
    }

    /// Stores `response` as the answer of `ticket`'s request, for every
    /// retry of its key until the TTL ends; call it before sending the
    /// response.
    ///
    /// # Errors
    /// [`Error::Stale`] when the ticket's lease ran out (the response is
    /// not stored: the key may belong to another execution);
    /// [`Error::Unavailable`] when Redis did not answer — retry with the
    /// same ticket until [`Ticket::lease_ends`], since a request that ran
    /// but stored nothing runs again for a retry after its lease.
    ///
    /// ```no_run
    /// # async fn f(store: stormguard_redis::RedisStore, ticket: stormguard_redis::Ticket) {
    /// while let Err(err) = store.complete(&ticket, b"200 OK").await {
    ///     if !err.is_unavailable() || std::time::Instant::now() >= ticket.lease_ends() {
    ///         break;
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn complete(&self, ticket: &Ticket, response: &[u8]) -> Result<(), Error> {
        let ttl_ms = StoreConfig::millis(self.config.ttl());
        let reply = self
            .run("complete", &loaded().complete, |call| {
                call.key(&ticket.entry)
                    .arg(&ticket.owner)
                    .arg(response)
                    .arg(ttl_ms);
            })
            .await?;
        ok_or_stale("complete", &reply)
    }

    /// Releases `ticket`'s key: the work failed before any side effect, so
    /// a retry may run it. Once the work may have had an effect, complete
    /// with the error response instead (Stripe stores 500s too).
    ///
    /// # Errors
    /// [`Error::Stale`] when the lease ran out (or the key completed) — and
    /// also when this very abort was re-sent after its first reply was lost:
    /// the key is released either way; [`Error::Unavailable`] when Redis did
    /// not answer (the key is then held until its lease ends).
    ///
    /// ```no_run
    /// # async fn f(store: stormguard_redis::RedisStore, ticket: stormguard_redis::Ticket) -> Result<(), stormguard_redis::Error> {
    /// store.abort(&ticket).await?;
    /// # Ok(()) }
    /// ```
    pub async fn abort(&self, ticket: &Ticket) -> Result<(), Error> {
        let reply = self
            .run("abort", &loaded().abort, |call| {
                call.key(&ticket.entry).arg(&ticket.owner);
            })
            .await?;
        ok_or_stale("abort", &reply)
    }

    /// Reads `key`'s entry without changing it (for operators and tests).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad key, [`Error::Unavailable`] when Redis
    /// did not answer.
    ///
    /// ```no_run
    /// # async fn f(store: stormguard_redis::RedisStore) -> Result<(), stormguard_redis::Error> {
    /// assert_eq!(store.inspect("never-used").await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn inspect(&self, key: &str) -> Result<Option<Entry>, Error> {
        let entry = entry_key(self.config.prefix(), key)?;
        let reply = self
            .run("inspect", &loaded().inspect, |call| {
                call.key(&entry);
            })
            .await?;
        let items = match reply {
            Value::Nil => return Ok(None),
            Value::Array(items) => items,
            other => return Err(unexpected("inspect", &other)),
        };
        let state = match items.first().and_then(text) {
            Some("running") => EntryState::Running,
            Some("done") => EntryState::Done,
            _ => return Err(unexpected("inspect", &Value::Array(items))),
        };
        let bytes = |value: Option<&Value>| match value {
            Some(Value::BulkString(bytes)) => bytes.clone(),
            _ => Vec::new(),
        };
        let int = |value: Option<&Value>| match value {
            Some(Value::Int(n)) => *n,
            _ => -1,
        };
        Ok(Some(Entry {
            state,
            fingerprint: bytes(items.get(1)),
            owner: String::from_utf8_lossy(&bytes(items.get(2))).into_owned(),
            generation: u64::try_from(int(items.get(3))).unwrap_or(0),
            expires_in: u64::try_from(int(items.get(4)))
                .ok()
                .map(Duration::from_millis),
        }))
    }

    /// One script call under the store's retry policy, each attempt with
    /// the attempt timeout.
    async fn run(
        &self,
        operation: &'static str,
        script: &'static Script,
        args: impl Fn(&mut ScriptInvocation<'static>),
    ) -> Result<Value, Error> {
        let attempt = || {
            let mut conn = self.conn.clone();
            let mut call = script.prepare_invoke();
            args(&mut call);
            async move { call.invoke_async::<Value>(&mut conn).await }
        };
        attempt
            .retry(self.config.retry())
            .when(classify)
            .attempt_timeout(self.config.attempt_timeout())
            .await
            .map_err(|err| {
                let attempts = err.attempts();
                match err.into_error() {
                    Some(err) if is_permanent(&err) && !is_out_of_memory(&err) => {
                        Error::Unexpected {
                            operation,
                            detail: err.to_string(),
                        }
                    }
                    source => Error::Unavailable(Unavailable::new(operation, attempts, source)),
                }
            })
    }

    /// A best-effort `abort` of a claim whose reply was lost: one attempt.
    /// On the same connection it is sent after the lost `begin`, so if that
    /// `begin` reaches Redis late, this releases the key right after.
    async fn release(&self, entry: &str, owner: &str) {
        let mut conn = self.conn.clone();
        let mut call = loaded().abort.prepare_invoke();
        call.key(entry).arg(owner);
        let abort = async { call.invoke_async::<Value>(&mut conn).await.is_ok() };
        let timeout = async {
            async_io::Timer::after(self.config.attempt_timeout()).await;
            false
        };
        let _released = futures_lite::future::or(abort, timeout).await;
    }
}

/// Every Redis error is worth another attempt — the scripts are safe to
/// re-send — except those the `redis` crate says no retry can fix (a
/// script error, a foreign value at the key, memory refused).
fn classify(err: &RedisError) -> Failure {
    if is_permanent(err) {
        Failure::permanent()
    } else {
        Failure::transient()
    }
}

fn is_permanent(err: &RedisError) -> bool {
    matches!(err.retry_method(), RetryMethod::NoRetry)
}

fn is_out_of_memory(err: &RedisError) -> bool {
    err.code() == Some("OOM")
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

fn ok_or_stale(operation: &'static str, reply: &Value) -> Result<(), Error> {
    match text(reply) {
        Some("ok") => Ok(()),
        Some("stale") => Err(Error::Stale),
        _ => Err(unexpected(operation, reply)),
    }
}

fn unexpected(operation: &'static str, reply: &Value) -> Error {
    let mut detail = format!("{reply:?}");
    if detail.len() > 200 {
        let mut end = 200;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    Error::Unexpected { operation, detail }
}

/// [`RedisStore`] for threads: each verb blocks the calling thread until
/// its answer (the connection's I/O runs on smol's global executor).
///
/// ```no_run
/// use stormguard_redis::{Begin, BlockingRedisStore, StoreConfig};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = BlockingRedisStore::open("redis://127.0.0.1:6379/", StoreConfig::default())?;
/// if let Begin::Execute(ticket) = store.begin("order-7", b"fp")? {
///     store.complete(&ticket, b"charged")?;
/// }
/// assert_eq!(store.begin("order-7", b"fp")?, Begin::Replay(b"charged".to_vec()));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BlockingRedisStore<C = ConnectionManager> {
    inner: RedisStore<C>,
}

impl BlockingRedisStore<ConnectionManager> {
    /// [`RedisStore::open`], blocking.
    ///
    /// # Errors
    /// The `redis` crate's error for a malformed URL.
    ///
    /// ```
    /// let store = stormguard_redis::BlockingRedisStore::open("redis://127.0.0.1:1/", Default::default())?;
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    pub fn open(url: &str, config: StoreConfig) -> Result<Self, RedisError> {
        RedisStore::open(url, config).map(BlockingRedisStore::from)
    }
}

impl<C> From<RedisStore<C>> for BlockingRedisStore<C> {
    /// The same store, blocking.
    fn from(inner: RedisStore<C>) -> Self {
        BlockingRedisStore { inner }
    }
}

impl<C> BlockingRedisStore<C> {
    /// The async store underneath (the same connection).
    ///
    /// ```
    /// let store = stormguard_redis::BlockingRedisStore::open("redis://127.0.0.1:1/", Default::default())?;
    /// assert_eq!(store.as_async().config().ttl().as_secs(), 86_400);
    /// # Ok::<(), redis::RedisError>(())
    /// ```
    pub fn as_async(&self) -> &RedisStore<C> {
        &self.inner
    }
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> BlockingRedisStore<C> {
    /// [`RedisStore::begin`], blocking.
    ///
    /// # Errors
    /// As [`RedisStore::begin`].
    ///
    /// ```no_run
    /// # fn f(store: stormguard_redis::BlockingRedisStore) -> Result<(), stormguard_redis::Error> {
    /// let answer = store.begin("order-7", b"fp")?;
    /// # Ok(()) }
    /// ```
    pub fn begin(&self, key: &str, fingerprint: &[u8]) -> Result<Begin, Error> {
        async_io::block_on(self.inner.begin(key, fingerprint))
    }

    /// [`RedisStore::complete`], blocking.
    ///
    /// # Errors
    /// As [`RedisStore::complete`].
    ///
    /// ```no_run
    /// # fn f(store: stormguard_redis::BlockingRedisStore, ticket: stormguard_redis::Ticket) -> Result<(), stormguard_redis::Error> {
    /// store.complete(&ticket, b"done")?;
    /// # Ok(()) }
    /// ```
    pub fn complete(&self, ticket: &Ticket, response: &[u8]) -> Result<(), Error> {
        async_io::block_on(self.inner.complete(ticket, response))
    }

    /// [`RedisStore::abort`], blocking.
    ///
    /// # Errors
    /// As [`RedisStore::abort`].
    ///
    /// ```no_run
    /// # fn f(store: stormguard_redis::BlockingRedisStore, ticket: stormguard_redis::Ticket) -> Result<(), stormguard_redis::Error> {
    /// store.abort(&ticket)?;
    /// # Ok(()) }
    /// ```
    pub fn abort(&self, ticket: &Ticket) -> Result<(), Error> {
        async_io::block_on(self.inner.abort(ticket))
    }

    /// [`RedisStore::inspect`], blocking.
    ///
    /// # Errors
    /// As [`RedisStore::inspect`].
    ///
    /// ```no_run
    /// # fn f(store: stormguard_redis::BlockingRedisStore) -> Result<(), stormguard_redis::Error> {
    /// let entry = store.inspect("order-7")?;
    /// # Ok(()) }
    /// ```
    pub fn inspect(&self, key: &str) -> Result<Option<Entry>, Error> {
        async_io::block_on(self.inner.inspect(key))
    }
}
