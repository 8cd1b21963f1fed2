//! Helpers for Volley's end-to-end tests: run the official npm clients from Rust.
//!
//! The Node side lives in `e2e/interop`: a private npm package that pins `socket.io-client`,
//! `engine.io-client` and `playwright-core`, plus small scripts in `e2e/interop/scripts/*.mjs`
//! that drive a server and print what they saw as JSON, one object per line, on stdout
//! (diagnostics go to stderr). A test starts a server in-process, runs a script against it
//! with [`run_node`] and asserts on [`NodeOutput::json_lines`].
//!
//! - [`ensure_node_modules`] installs the npm packages with `npm ci` when they are missing or
//!   older than `package-lock.json`, once per machine, even with many test binaries at once.
//! - [`run_node`] runs one script with a deadline and collects its output.
//! - [`parse_json_lines`] reads the JSON lines a script printed.
//!
//! Convention for scripts: every JSON line has an `"event"` key naming what happened
//! (`"open"`, `"echo"`, `"error"`, …), so [`NodeOutput::events`] can pick lines by kind.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use serde_json::Value;

pub mod redis_cluster;
mod redis_server;

pub use redis_server::{RedisServer, redis_ping};

/// A loopback port free at the time of the call (bound to port 0, then released).
///
/// # Panics
///
/// When no port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
use tokio::io::AsyncReadExt;

/// The lock file that serializes `npm ci` between processes (also taken by `scripts/test.sh`).
const INSTALL_LOCK: &str = ".npm-install.lock";

/// The file npm writes into `node_modules` at the end of every install: its mtime says when
/// the tree was last installed.
const INSTALL_MARKER: &str = "node_modules/.package-lock.json";

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here
        .parent()
        .and_then(Path::parent)
        .expect("e2e/support sits two levels below the workspace root");
    root.to_path_buf()
}

/// The npm package with the official clients and the scripts: `<repo>/e2e/interop`.
pub fn interop_dir() -> PathBuf {
    repo_root().join("e2e").join("interop")
}

/// Makes sure `e2e/interop/node_modules` is installed and current; returns `e2e/interop`.
///
/// Runs `npm ci` when `node_modules` is missing or older than `package.json` or
/// `package-lock.json`. Cheap when there is nothing to do, so call it freely. An exclusive
/// file lock (`e2e/interop/.npm-install.lock`, the one `scripts/test.sh` takes too) makes
/// concurrent callers, threads or processes, wait for one install instead of racing: npm
/// deletes `node_modules` before it installs, so two installs at once would break both.
///
/// # Panics
///
/// When npm cannot be started or `npm ci` fails; the message holds npm's full output.
pub fn ensure_node_modules() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let dir = interop_dir();
            if !is_installed(&dir) {
                install(&dir);
            }
            dir
        })
        .clone()
}

/// [`ensure_node_modules`] off the async runtime's threads; its panic is the caller's.
async fn node_modules() -> PathBuf {
    match tokio::task::spawn_blocking(ensure_node_modules).await {
        Ok(dir) => dir,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("npm install task failed: {e}"),
    }
}

/// Whether `node_modules` was installed after the manifest and lock file last changed.
fn is_installed(dir: &Path) -> bool {
    let mtime = |p: PathBuf| fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(installed) = mtime(dir.join(INSTALL_MARKER)) else {
        return false;
    };
    ["package.json", "package-lock.json"]
        .iter()
        .all(|f| mtime(dir.join(f)).is_some_and(|changed: SystemTime| changed <= installed))
}

/// Runs `npm ci` in `dir` under the install lock, unless another process did it meanwhile.
fn install(dir: &Path) {
    let lock_path = dir.join(INSTALL_LOCK);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    // Fully qualified: std's `File::lock` has the same name on newer toolchains.
    fs4::FileExt::lock(&lock)
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    // Another process may have installed while this one waited for the lock.
    if is_installed(dir) {
        return;
    }
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `npm ci` in {}: {e}\n\
                 Node.js and npm are needed for the e2e tests (scripts/test.sh installs them)",
                dir.display()
            )
        });
    if !out.status.success() {
        panic!(
            "`npm ci` in {} failed ({}).\n--- stdout ---\n{}\n--- stderr ---\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }
    assert!(
        is_installed(dir),
        "`npm ci` in {} succeeded but left no {INSTALL_MARKER}",
        dir.display()
    );
    // The lock is released when `lock` is dropped (the descriptor closes).
}

/// What a Node script did: its exit status and everything it printed.
#[derive(Debug, Clone)]
pub struct NodeOutput {
    /// The command line, for messages (`node scripts/x.mjs arg…`).
    pub command: String,
    /// How the process ended.
    pub status: ExitStatus,
    /// Everything printed on stdout (JSON lines, by convention), lossily decoded as UTF-8.
    pub stdout: String,
    /// Everything printed on stderr, lossily decoded as UTF-8.
    pub stderr: String,
}

impl NodeOutput {
    /// Whether the script exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics, showing the whole output, unless the script exited with status 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "node script failed:\n{self}");
        self
    }

    /// The JSON lines printed on stdout; see [`parse_json_lines`].
    ///
    /// # Panics
    ///
    /// When a non-blank line of stdout is not JSON; the message holds the whole output.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        match try_parse_json_lines(&self.stdout) {
            Ok(lines) => lines,
            Err(e) => panic!("{e}\n{self}"),
        }
    }

    /// The JSON lines whose `"event"` key equals `event`, in the order they were printed.
    #[track_caller]
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.json_lines()
            .into_iter()
            .filter(|line| line.get("event").and_then(Value::as_str) == Some(event))
            .collect()
    }
}

/// Shows the command, exit status, stdout and stderr, for failure messages.
impl fmt::Display for NodeOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        writeln!(f, "exit: {}", self.status)?;
        write!(f, "{}", Printed(&self.stdout, &self.stderr))
    }
}

/// A script's stdout and stderr, with lines longer than 300 characters cut: a large payload
/// would bury the rest of a failure message.
struct Printed<'a>(&'a str, &'a str);

impl fmt::Display for Printed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 300;
        for (title, text) in [("stdout", self.0), ("stderr", self.1)] {
            writeln!(f, "--- {title} ---")?;
            for line in text.lines() {
                match line.char_indices().nth(MAX) {
                    Some((cut, _)) => {
                        let rest = line[cut..].chars().count();
                        writeln!(f, "{}… ({rest} more characters)", &line[..cut])?;
                    }
                    None => writeln!(f, "{line}")?,
                }
            }
        }
        Ok(())
    }
}

/// Runs `node e2e/interop/scripts/<script> <args…>` and waits for it to exit.
///
/// Installs the npm packages first if needed ([`ensure_node_modules`]). The working
/// directory is `e2e/interop`, stdin is empty, stdout and stderr are collected. A non-zero
/// exit is returned, not raised: check [`NodeOutput::success`] or call
/// [`NodeOutput::assert_success`].
///
/// # Panics
///
/// When `node` cannot be started, the script does not exist, or the script is still running
/// after `timeout`: it is then killed and the panic message holds all it printed.
pub async fn run_node(script: &str, args: &[&str], timeout: Duration) -> NodeOutput {
    let dir = node_modules().await;
    let script_path = dir.join("scripts").join(script);
    assert!(
        script_path.is_file(),
        "no such interop script: {}",
        script_path.display()
    );
    let command = std::iter::once(format!("node scripts/{script}"))
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ");

    let mut child = tokio::process::Command::new("node")
        .arg(&script_path)
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // If the test panics or times out, the script must not outlive it.
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e} (is Node.js installed?)"));
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");

    // The buffers live outside the future so that what was read survives a timeout.
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let finished = tokio::time::timeout(timeout, async {
        let (out, err, status) = tokio::join!(
            stdout_pipe.read_to_end(&mut stdout),
            stderr_pipe.read_to_end(&mut stderr),
            child.wait(),
        );
        out.and(err).and(status)
    })
    .await;

    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match finished {
        Ok(Ok(status)) => NodeOutput {
            command,
            status,
            stdout: text(&stdout),
            stderr: text(&stderr),
        },
        Ok(Err(e)) => panic!("waiting for `{command}` failed: {e}"),
        Err(_) => {
            let _ = child.kill().await;
            panic!(
                "`{command}` still running after {timeout:?}; killed. It printed:\n{}",
                Printed(&text(&stdout), &text(&stderr))
            );
        }
    }
}

/// A Node server script started by [`start_node_server`]: the child (killed when dropped)
/// and the port it listens on.
#[derive(Debug)]
pub struct NodeServer {
    /// The `node` process; its stdin stays open (scripts exit when it closes).
    pub child: tokio::process::Child,
    /// The port the script printed.
    pub port: u16,
}

/// Starts `e2e/interop/scripts/<script>` with `args`: a long-running server that prints
/// `{"event":"listening","port":N}` on stdout once it listens. Returns when it has; its
/// further stdout is drained, its stderr goes to the test's. The process is killed when the
/// [`NodeServer`] is dropped.
///
/// # Panics
///
/// When `node` cannot be started or the script exits, or prints something else, or does not
/// listen within `timeout`.
pub async fn start_node_server(
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> NodeServer {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = node_modules().await;
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("scripts").join(script))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node {script}: {e} (is Node.js installed?)"));
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let line = tokio::time::timeout(timeout, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{script} did not listen within {timeout:?}"))
        .unwrap_or_else(|e| panic!("reading {script}'s stdout: {e}"))
        .unwrap_or_else(|| panic!("{script} exited before listening"));
    let v: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{script} printed {line:?}, not JSON: {e}"));
    assert_eq!(v["event"], "listening", "{script}: {line}");
    let port = v["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("{script}: no port in {line}"));
    // Keep draining stdout so that the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    NodeServer { child, port }
}

/// Parses newline-delimited JSON: one value per non-blank line, in order.
///
/// # Panics
///
/// When a non-blank line is not valid JSON; the message names the line.
#[track_caller]
pub fn parse_json_lines(text: &str) -> Vec<Value> {
    try_parse_json_lines(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`parse_json_lines`], but returns a message naming the bad line instead of panicking.
pub fn try_parse_json_lines(text: &str) -> Result<Vec<Value>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                let shown: String = line.chars().take(300).collect();
                format!("line {} is not JSON ({e}): {shown}", i + 1)
            })
        })
        .collect()
}

/// A TCP proxy on a free loopback port (returned) whose new connections go to the loopback
/// port in `target` at the time they come: switching it moves a client's next connections
/// to another server. A connection to a port nothing listens on is closed at once.
pub async fn switching_proxy(target: std::sync::Arc<std::sync::atomic::AtomicU16>) -> u16 {
    use std::sync::atomic::Ordering;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let port = listener.local_addr().expect("bound").port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let to = target.load(Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    port
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_lines_and_skips_blank_ones() {
        let lines = parse_json_lines("{\"event\":\"open\"}\n\n  \n[1,2]\r\n\"x\"\n");
        assert_eq!(
            lines,
            vec![
                serde_json::json!({"event": "open"}),
                serde_json::json!([1, 2]),
                serde_json::json!("x")
            ]
        );
    }

    #[test]
    fn names_the_line_that_is_not_json() {
        let err = try_parse_json_lines("{}\nnot json\n").unwrap_err();
        assert!(err.starts_with("line 2 is not JSON"), "{err}");
    }

    #[test]
    fn finds_the_interop_package() {
        assert!(interop_dir().join("package.json").is_file());
        assert!(repo_root().join("Cargo.toml").is_file());
    }
}
