//! One `redis-server` of a test's own on a free loopback port, killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// How long a starting `redis-server` may take to answer; only reached when it is broken.
const START_WAIT: Duration = Duration::from_secs(60);

/// How many free ports are tried: a port found free can be taken (by any process's outgoing
/// connection) before `redis-server` binds it.
const ATTEMPTS: usize = 5;

/// Whether a Redis server answers `PING` on `127.0.0.1:port`.
pub fn redis_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

/// A `redis-server` (no persistence) on a free loopback port, ready when [`start`](Self::start)
/// returns (it answered `PING`), killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one, trying another free port when the first was taken meanwhile.
    ///
    /// # Panics
    ///
    /// When `redis-server` cannot be run (`scripts/install-deps.sh` installs it) or never
    /// answers.
    pub fn start() -> Self {
        for _ in 0..ATTEMPTS {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start redis-server: {e} (scripts/install-deps.sh)")
                });
            // redis-server has no readiness signal but its answer.
            let deadline = Instant::now() + START_WAIT;
            loop {
                if redis_ping(port) {
                    return Self { child, port };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // the port was taken meanwhile: another one
                }
                assert!(Instant::now() < deadline, "redis-server does not answer");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server did not start on {ATTEMPTS} free ports");
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
