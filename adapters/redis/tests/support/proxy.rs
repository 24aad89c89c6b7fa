//! A TCP proxy between the store and Redis that loses replies on purpose.
//!
//! Requests always reach Redis; on the way back, a chunk of replies may be
//! dropped together with the connection (the scripts ran, their replies are
//! lost, the client must reconnect), or held back longer than the client's
//! attempt timeout (the replies come late, after the client gave up on
//! them). The choices come from a seeded generator.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the proxy does to the replies.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// One reply chunk in this many is dropped with its connection.
    pub reset_one_in: u64,
    /// One reply chunk in this many is held back for `delay`.
    pub delay_one_in: u64,
    pub delay: Duration,
    pub seed: u64,
}

#[derive(Debug, Default)]
pub struct Counts {
    pub connections: AtomicU64,
    pub resets: AtomicU64,
    pub delays: AtomicU64,
}

pub struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    pub counts: Arc<Counts>,
    /// While set, replies pass untouched (to let a run drain cleanly).
    calm: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16, faults: Faults) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let calm = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(faults.seed)));
        {
            let (stop, calm, counts) = (stop.clone(), calm.clone(), counts.clone());
            thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        continue;
                    };
                    counts.connections.fetch_add(1, Ordering::Relaxed);
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    pipe(
                        client,
                        server,
                        faults,
                        rng.clone(),
                        calm.clone(),
                        counts.clone(),
                    );
                }
            });
        }
        Ok(Proxy {
            port,
            stop,
            counts,
            calm,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops injecting faults.
    pub fn calm_down(&self) {
        self.calm.store(true, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pipe(
    client: TcpStream,
    server: TcpStream,
    faults: Faults,
    rng: Arc<Mutex<fastrand::Rng>>,
    calm: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let (Ok(mut client_read), Ok(mut server_write)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    // Requests: straight through.
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match client_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if server_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = server_write.shutdown(Shutdown::Both);
        let _ = client_read.shutdown(Shutdown::Both);
    });
    // Replies: sometimes lost, sometimes late.
    thread::spawn(move || {
        let (mut server, mut client) = (server, client);
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match server.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let (reset, delay) = if calm.load(Ordering::Relaxed) {
                (false, false)
            } else {
                let mut rng = rng.lock().unwrap_or_else(|e| e.into_inner());
                (
                    rng.u64(0..faults.reset_one_in) == 0,
                    rng.u64(0..faults.delay_one_in) == 0,
                )
            };
            if reset {
                counts.resets.fetch_add(1, Ordering::Relaxed);
                break;
            }
            if delay {
                counts.delays.fetch_add(1, Ordering::Relaxed);
                thread::sleep(faults.delay);
            }
            if client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    });
}
