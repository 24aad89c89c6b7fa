//! Throwaway Redis servers for tests: started on a free port on 127.0.0.1,
//! without persistence, stopped when dropped. Needs the `redis-server`
//! binary (Debian: `apt-get install redis-server`); `STORMGUARD_REDIS_SERVER`
//! names another.
//!
//! ```no_run
//! use stormguard_redis::testing::RedisServer;
//! let server = RedisServer::start()?;
//! let url = server.url(); // redis://127.0.0.1:<port>/
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The `redis-server` binary: `$STORMGUARD_REDIS_SERVER`, or the one on
/// `PATH`.
fn server_binary() -> String {
    std::env::var("STORMGUARD_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned())
}

/// A port nothing listens on right now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A `redis-server` process of the test's own, on 127.0.0.1.
///
/// Started with `--save '' --appendonly no` in a fresh directory of its
/// own; [`stop`](Self::stop) saves a snapshot there on purpose, so that
/// [`restart`](Self::restart) comes back with the same data (as a Redis with
/// persistence would). Dropping it kills the process and removes the
/// directory.
///
/// ```no_run
/// use stormguard_redis::testing::RedisServer;
/// let mut server = RedisServer::start()?;
/// server.command(&["SET", "k", "v"])?;
/// server.stop()?; // connections are refused now
/// server.restart()?; // same port, same data
/// assert_eq!(server.command(&["GET", "k"])?, "v");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Errors
    /// When `redis-server` is missing or does not come up within 10 s.
    ///
    /// ```no_run
    /// let server = stormguard_redis::testing::RedisServer::start()?;
    /// assert!(server.port() > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start() -> io::Result<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (for example
    /// `["--maxmemory", "1mb"]`).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    ///
    /// ```no_run
    /// let server = stormguard_redis::testing::RedisServer::start_with(&["--maxmemory", "64mb"])?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start_with(args: &[&str]) -> io::Result<RedisServer> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "stormguard-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut last_error = None;
        // A free port can be taken between the check and the start: try a
        // few.
        for _ in 0..5 {
            let mut server = RedisServer {
                child: None,
                port: free_port()?,
                dir: dir.clone(),
                args: args.iter().map(|a| (*a).to_owned()).collect(),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(err) => {
                    last_error = Some(err);
                    server.kill();
                }
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    fn spawn(&mut self) -> io::Result<()> {
        let child = Command::new(server_binary())
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!(
                        "cannot run {} ({err}): install Redis (Debian: apt-get install redis-server)",
                        server_binary()
                    ),
                )
            })?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(10))
    }

    fn wait_ready(&mut self, within: Duration) -> io::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(io::Error::other(format!("redis-server exited: {status}")));
                }
            }
            match self.command(&["PING"]) {
                Ok(reply) if reply == "PONG" => return Ok(()),
                _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(reply) => return Err(io::Error::other(format!("PING answered {reply}"))),
                Err(err) => return Err(err),
            }
        }
    }

    /// The port it listens on.
    ///
    /// ```no_run
    /// # let server = stormguard_redis::testing::RedisServer::start()?;
    /// println!("{}", server.port());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    ///
    /// ```no_run
    /// # let server = stormguard_redis::testing::RedisServer::start()?;
    /// assert!(server.url().starts_with("redis://127.0.0.1:"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Sends one command and reads its reply as text: a simple string, an
    /// integer or a bulk string as is, an error as an `Err`, an array as its
    /// elements joined by newlines (one level), nil as `""`. A plain
    /// RESP client, so that tests can poke at the server without the store.
    ///
    /// # Errors
    /// When the server cannot be reached or answers an error.
    ///
    /// ```no_run
    /// # let server = stormguard_redis::testing::RedisServer::start()?;
    /// assert_eq!(server.command(&["INCR", "n"])?, "1");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn command(&self, args: &[&str]) -> io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        stream.write_all(&request)?;
        read_reply(&mut BufReader::new(stream), true)
    }

    /// Makes the server answer nothing for `duration` (`CLIENT PAUSE …
    /// ALL`): every command waits, so clients time out, as with a Redis
    /// that hangs; the server keeps its data and its clock of expiries.
    ///
    /// # Errors
    /// When the server cannot be reached.
    ///
    /// ```no_run
    /// # let server = stormguard_redis::testing::RedisServer::start()?;
    /// server.pause(std::time::Duration::from_millis(500))?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pause(&self, duration: Duration) -> io::Result<()> {
        let millis = duration.as_millis().to_string();
        self.command(&["CLIENT", "PAUSE", &millis, "ALL"]).map(drop)
    }

    /// Stops the server (`SHUTDOWN SAVE`: the data is kept on disk for
    /// [`restart`](Self::restart)); connections are refused until then.
    ///
    /// # Errors
    /// When the server does not exit within 10 s.
    ///
    /// ```no_run
    /// # let mut server = stormguard_redis::testing::RedisServer::start()?;
    /// server.stop()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop(&mut self) -> io::Result<()> {
        // The connection closes as the server exits: no reply to read.
        let _ = self.command(&["SHUTDOWN", "SAVE"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(child) = self.child.as_mut() {
            if child.try_wait()?.is_some() {
                self.child = None;
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other("redis-server did not stop"));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Starts the server again on the same port with the data it had when
    /// it stopped.
    ///
    /// # Errors
    /// When it does not come up within 10 s.
    ///
    /// ```no_run
    /// # let mut server = stormguard_redis::testing::RedisServer::start()?;
    /// server.stop()?;
    /// server.restart()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn restart(&mut self) -> io::Result<()> {
        if self.child.is_some() {
            self.stop()?;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                // The port may linger for a moment after the old process.
                Err(_) if Instant::now() < deadline => {
                    self.kill();
                    thread::sleep(Duration::from_millis(50));
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_reply(reader: &mut impl BufRead, nested: bool) -> io::Result<String> {
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let length = || {
        rest.parse::<i64>()
            .map_err(|_| io::Error::other(format!("bad reply: {line}")))
    };
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(io::Error::other(rest.to_owned())),
        "$" => {
            let Ok(len) = usize::try_from(length()?) else {
                return Ok(String::new());
            };
            let mut bytes = vec![0; len + 2];
            reader.read_exact(&mut bytes)?;
            bytes.truncate(len);
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        "*" if nested => {
            let count = usize::try_from(length()?).unwrap_or(0);
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                items.push(read_reply(reader, false)?);
            }
            Ok(items.join("\n"))
        }
        _ => Err(io::Error::other(format!("unsupported reply: {line}"))),
    }
}
