//! What the `volley` command's tests run against: the official Node server
//! (`e2e/interop/scripts/cli-server.mjs`, a child process) and a Volley server (in-process)
//! with the same behaviour; and a runner for the built `volley` binary whose waits are all
//! on its output lines, each bounded by [`WAIT`].

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout};
use volley::{AckSender, ConnectError, Parser, RawArgs, Socket, SocketIo};

/// The longest any single expected thing may take: a bound on a hang, never reached unless
/// something is broken (however busy the machine).
pub const WAIT: Duration = Duration::from_secs(60);

/// Which server implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Node,
    Volley,
}

/// A running test server on 127.0.0.1 (stopped when dropped).
pub struct Server {
    pub port: u16,
    /// The Node process, or the Volley server's task.
    running: Running,
}

enum Running {
    Node(Child),
    Volley(tokio::task::JoinHandle<()>),
}

impl Drop for Running {
    fn drop(&mut self) {
        match self {
            Running::Node(child) => {
                let _ = child.start_kill();
            }
            Running::Volley(task) => task.abort(),
        }
    }
}

impl Server {
    /// Starts a server of `kind` on a free port, with `parser`.
    pub async fn start(kind: Kind, parser: Parser) -> Server {
        match kind {
            Kind::Node => start_node(parser, 0).await,
            Kind::Volley => start_volley(parser).await,
        }
    }

    /// Starts the Node server on `port` (e.g. again, where one was stopped).
    pub async fn start_node_on(port: u16) -> Server {
        start_node(Parser::Json, port).await
    }

    /// Stops the server; returns once the Node process has exited (its port is free).
    pub async fn stop(&mut self) {
        match &mut self.running {
            Running::Node(child) => {
                let _ = child.kill().await;
            }
            Running::Volley(task) => task.abort(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

async fn start_node(parser: Parser, port: u16) -> Server {
    let port = port.to_string();
    let mut args = vec![port.as_str()];
    if parser == Parser::MsgPack {
        args.push("msgpack");
    }
    let node = volley_test_support::start_node_server("cli-server.mjs", &args, &[], WAIT).await;
    Server {
        port: node.port,
        running: Running::Node(node.child),
    }
}

/// The arguments after the first (for "shout"), binary included.
fn tail(args: &RawArgs) -> RawArgs {
    RawArgs::with_parser(
        args.parser(),
        args.args().iter().skip(1).cloned().collect(),
        args.attachments().to_vec(),
    )
}

/// The behaviour cli-server.mjs gives every namespace.
fn behave(s: Socket) {
    s.on("echo", |s: Socket, args: RawArgs| async move {
        let _ = s.emit_args("echo", args);
    });
    s.on(
        "ack",
        |_: Socket, args: RawArgs, ack: AckSender| async move {
            let _ = ack.send_args(args);
        },
    );
    s.on(
        "shout",
        |s: Socket, args: RawArgs, ack: AckSender| async move {
            let event = args
                .get::<String>(0)
                .and_then(Result::ok)
                .unwrap_or_default();
            let _ = s.nsp().emit_args(&event, tail(&args));
            let _ = ack.send(&true);
        },
    );
    s.on("handshake", |s: Socket, ack: AckSender| async move {
        let h = s.handshake();
        let header = h
            .headers()
            .get("x-volley-test")
            .and_then(|v| v.to_str().ok());
        let _ =
            ack.send(&json!({ "query": h.query_param("q"), "auth": h.auth(), "header": header }));
    });
    s.on("never", |_: Socket, _: RawArgs| async {});
    s.on("kickall", |s: Socket, ack: AckSender| async move {
        let _ = ack.send(&true);
        s.nsp().disconnect_sockets(false);
    });
}

async fn start_volley(parser: Parser) -> Server {
    let io = SocketIo::builder().parser(parser).build();
    io.of("/")
        .on_connection(|s: Socket| async move { behave(s) });
    io.of("/chat")
        .on_connection(|s: Socket| async move { behave(s) });
    io.of("/secure")
        .middleware(|s: Socket| async move {
            if s.handshake().auth().get("token").and_then(Value::as_str) == Some("ok") {
                Ok(())
            } else {
                Err(ConnectError::new("not authorized").with_data(json!({ "code": 42 })))
            }
        })
        .on_connection(|s: Socket| async move { behave(s) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let _ = volley::serve(listener, io.service()).await;
    });
    Server {
        port,
        running: Running::Volley(task),
    }
}

/// What a finished `volley` run printed, and how it exited.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code (a signal counts as -1).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// The one line printed on stdout, as JSON.
    pub fn json(&self) -> Value {
        let mut lines = self.stdout.lines();
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("no output: {self:?}"));
        assert_eq!(lines.next(), None, "one line expected: {self:?}");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Asserts a failure: its exit code, and that stderr holds every `needle`.
    pub fn assert_fails(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code(), code, "{self:?}");
        for n in needles {
            assert!(self.stderr.contains(n), "{n:?} not in stderr: {self:?}");
        }
    }
}

/// Runs `volley` with `args` to the end (bounded by [`WAIT`]).
pub async fn volley(args: &[&str]) -> Output {
    let out = tokio::time::timeout(WAIT, command(args).output())
        .await
        .unwrap_or_else(|_| panic!("volley {args:?} did not finish in time"))
        .expect("run volley");
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `volley` and asserts success; returns its stdout as one JSON value.
pub async fn volley_json(args: &[&str]) -> Value {
    let out = volley(args).await;
    assert_eq!(out.code(), 0, "volley {args:?}: {out:?}");
    out.json()
}

fn command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_volley"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// A running `volley` (e.g. `listen`), read line by line.
pub struct Process {
    pub child: Child,
    pub stdout: Lines<BufReader<ChildStdout>>,
    pub stderr: Lines<BufReader<ChildStderr>>,
}

/// Starts `volley` with `args`.
pub fn spawn(args: &[&str]) -> Process {
    let mut child = command(args).spawn().expect("start volley");
    let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
    let stderr = BufReader::new(child.stderr.take().expect("piped")).lines();
    Process {
        child,
        stdout,
        stderr,
    }
}

impl Process {
    /// The next stdout line, as JSON.
    pub async fn next_json(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.stdout.next_line())
            .await
            .expect("no stdout line in time")
            .expect("read stdout")
            .expect("volley ended its stdout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// Waits for a stderr line containing `needle`; returns it.
    pub async fn wait_stderr(&mut self, needle: &str) -> String {
        self.stderr_until(needle)
            .await
            .pop()
            .expect("the matching line")
    }

    /// Reads stderr up to the first line containing `needle`; returns the lines read, that one
    /// last.
    pub async fn stderr_until(&mut self, needle: &str) -> Vec<String> {
        let mut read = Vec::new();
        let wait = async {
            loop {
                match self.stderr.next_line().await.expect("read stderr") {
                    Some(line) => {
                        let found = line.contains(needle);
                        read.push(line);
                        if found {
                            return;
                        }
                    }
                    None => panic!("stderr ended without {needle:?}: {read:?}"),
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} on stderr in time"));
        read
    }

    /// Waits for the process to exit; returns the exit code and the rest of stderr.
    pub async fn exit(mut self) -> (i32, String) {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("volley did not exit in time")
            .expect("wait");
        let mut rest = String::new();
        while let Ok(Some(line)) = self.stderr.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        (status.code().unwrap_or(-1), rest)
    }
}
