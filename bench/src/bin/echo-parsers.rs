//! Closed-loop echo load generator for comparing Volley's two parsers, JSON and MessagePack.
//!
//! The shared load generator (`shared/bench`) speaks only JSON, so this one speaks Engine.IO v4
//! and Socket.IO v5 itself over a raw WebSocket, in either format:
//!
//! ```text
//! echo-parsers --port P --parser json|msgpack [-c 100] [--duration 5] [--warmup 1] [--size 32] [--pid SERVER_PID]
//! ```
//!
//! Each of `-c` clients connects to `ws://127.0.0.1:P/socket.io/?EIO=4&transport=websocket`,
//! reads the open packet (`0{...}`), connects to `/` (JSON: text `40`; msgpack: one binary
//! frame holding the map `{type: 0, nsp: "/"}`), waits for the CONNECT reply, then loops with
//! one request in flight: send `echo` with one string argument of `--size` chars (JSON: text
//! `42["echo","xx…"]`; msgpack: binary `{type: 2, data: ["echo", "xx…"], nsp: "/"}`) and wait
//! for the server's `echo` event back with the same string. Engine.IO pings (`2`) are
//! answered (`3`). MessagePack packets are built and read with `rmp-serde`, as the Volley
//! parser writes them (keys `type`, `data`, `nsp`; smallest integer forms), which is what
//! `socket.io-msgpack-parser` 3.0.2 sends.
//!
//! Round trips completed during the `--duration` seconds after `--warmup` are counted. The
//! result is one JSON line on stdout: `parser`, `clients`, `size`, `msgs_per_s`, `p50_us`,
//! `p99_us`, `req_bytes` and `reply_bytes` (WebSocket payload sizes of one echo request as
//! sent and of one echo reply as received, WebSocket framing not included), and with `--pid`
//! the server's CPU time over the measured window (`srv_cpu_s`, `srv_cpu_pct`,
//! `srv_cpu_us_per_msg`), read from `/proc/PID/stat` (utime + stime) assuming 100 clock ticks
//! per second (`getconf CLK_TCK` on Linux; `libc` is not a dependency of this crate).
//!
//! Bounded: loopback only, every read has a 10 s deadline, the run stops by itself, and any
//! protocol error (unexpected packet, wrong echo, closed connection) ends the process with an
//! error and a non-zero status.

mod common;

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use common::{READ_TIMEOUT, Res, percentile_us, round};

type Ws = WebSocketStream<TcpStream>;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Format {
    Json,
    MsgPack,
}

struct Opts {
    format: Format,
    run: common::Run,
}

fn usage() -> ! {
    eprintln!(
        "usage: echo-parsers --port P --parser json|msgpack [-c 100] [--duration 5] \
         [--warmup 1] [--size 32] [--pid SERVER_PID]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        format: Format::Json,
        run: common::Run::new(100),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let val = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--parser" => {
                o.format = match val.as_str() {
                    "json" => Format::Json,
                    "msgpack" => Format::MsgPack,
                    _ => usage(),
                }
            }
            _ => o.run.set(&flag, &val).unwrap_or_else(|| usage()),
        }
    }
    if !o.run.is_valid() {
        usage()
    }
    o
}

/// A Socket.IO packet as the msgpack parser writes it: `data` left out when there is none.
#[derive(Serialize)]
struct OutPacket<'a> {
    #[serde(rename = "type")]
    ty: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<(&'a str, &'a str)>,
    nsp: &'a str,
}

/// A received msgpack packet; `data` kept generic (a CONNECT reply carries `{sid}`).
#[derive(Deserialize)]
struct InPacket {
    #[serde(rename = "type")]
    ty: u8,
    #[serde(default)]
    data: Option<serde_json::Value>,
    nsp: String,
}

/// A received msgpack event, its name and arguments read straight into strings.
#[derive(Deserialize)]
struct InEvent {
    #[serde(rename = "type")]
    ty: u8,
    data: Vec<String>,
    nsp: String,
}

/// The namespace CONNECT to `/`.
fn connect_frame(f: Format) -> Res<Message> {
    Ok(match f {
        Format::Json => Message::text("40"),
        Format::MsgPack => Message::binary(rmp_serde::to_vec_named(&OutPacket {
            ty: 0,
            data: None,
            nsp: "/",
        })?),
    })
}

/// One `echo` request carrying `payload`.
fn echo_frame(f: Format, payload: &str) -> Res<Message> {
    Ok(match f {
        Format::Json => Message::text(format!("42{}", serde_json::to_string(&("echo", payload))?)),
        Format::MsgPack => Message::binary(rmp_serde::to_vec_named(&OutPacket {
            ty: 2,
            data: Some(("echo", payload)),
            nsp: "/",
        })?),
    })
}

/// The next Socket.IO packet's frame (Engine.IO pings answered on the way): a text frame's
/// Engine.IO message body (after the `4`), or a binary frame.
async fn next_packet(ws: &mut Ws) -> Res<Message> {
    loop {
        let msg = timeout(READ_TIMEOUT, ws.next())
            .await
            .map_err(|_| "no frame from the server within 10 s")?
            .ok_or("connection closed by the server")??;
        match msg {
            Message::Text(t) if t.as_str() == "2" => ws.send(Message::text("3")).await?,
            Message::Text(t) if t.as_str().starts_with('4') => return Ok(Message::Text(t)),
            Message::Binary(b) => return Ok(Message::Binary(b)),
            Message::Ping(_) | Message::Pong(_) => {}
            other => return Err(format!("unexpected frame {other:?}").into()),
        }
    }
}

/// Connects one client and joins `/`; fails on anything but the expected handshake.
async fn connect(port: u16, f: Format) -> Res<Ws> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    let open = timeout(READ_TIMEOUT, ws.next())
        .await
        .map_err(|_| "no open packet within 10 s")?
        .ok_or("closed before the open packet")??;
    match open {
        Message::Text(t) if t.as_str().starts_with("0{") => {}
        other => return Err(format!("expected the open packet, got {other:?}").into()),
    }
    ws.send(connect_frame(f)?).await?;
    let ok = match (f, next_packet(&mut ws).await?) {
        (Format::Json, Message::Text(t)) => t.as_str().starts_with("40{"),
        (Format::MsgPack, Message::Binary(b)) => {
            let p: InPacket = rmp_serde::from_slice(&b)?;
            p.ty == 0 && p.nsp == "/" && p.data.is_some_and(|d| d.get("sid").is_some())
        }
        _ => false,
    };
    if !ok {
        return Err("expected a CONNECT reply to /".into());
    }
    Ok(ws)
}

/// Checks one received frame is the `echo` event carrying `payload` (followed by its offset
/// when the server has connection state recovery on); returns its size.
fn check_echo(f: Format, msg: &Message, payload: &str) -> Res<usize> {
    let is_echo = |args: &[String]| match args {
        [name, arg] | [name, arg, _] => name == "echo" && arg == payload,
        _ => false,
    };
    let ok = match (f, msg) {
        (Format::Json, Message::Text(t)) => {
            let body = t
                .as_str()
                .strip_prefix("42")
                .ok_or("expected an EVENT to /")?;
            is_echo(&serde_json::from_str::<Vec<String>>(body)?)
        }
        (Format::MsgPack, Message::Binary(b)) => {
            let p: InEvent = rmp_serde::from_slice(b)?;
            p.ty == 2 && p.nsp == "/" && is_echo(&p.data)
        }
        _ => false,
    };
    if !ok {
        return Err(format!("expected the echo of the request, got {msg:?}").into());
    }
    Ok(msg.len())
}

struct ClientResult {
    /// Latencies (ns) of the round trips completed inside the measured window.
    samples: Vec<u64>,
    req_bytes: usize,
    reply_bytes: usize,
}

/// One client's closed loop until `end`.
async fn run_client(
    mut ws: Ws,
    f: Format,
    payload: String,
    start: Instant,
    end: Instant,
) -> Res<ClientResult> {
    let req = echo_frame(f, &payload)?;
    let req_bytes = req.len();
    let mut reply_bytes = 0;
    let mut samples = Vec::new();
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        ws.send(req.clone()).await?;
        let reply = next_packet(&mut ws).await?;
        reply_bytes = check_echo(f, &reply, &payload)?;
        let done = Instant::now();
        if done >= start && done < end {
            samples.push((done - sent).as_nanos() as u64);
        }
    }
    let _ = ws.close(None).await;
    Ok(ClientResult {
        samples,
        req_bytes,
        reply_bytes,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let o = parse_opts();
    let payload = "x".repeat(o.run.size);

    let conns = futures_util::future::try_join_all(
        (0..o.run.clients).map(|_| connect(o.run.port, o.format)),
    )
    .await
    .map_err(|e| format!("connecting: {e}"))?;
    let start = Instant::now() + o.run.warmup;
    let end = start + o.run.duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|ws| tokio::spawn(run_client(ws, o.format, payload.clone(), start, end)))
        .collect();

    let cpu = common::server_cpu(o.run.pid, start, end).await?;

    let (mut samples, mut req_bytes, mut reply_bytes) = (Vec::new(), 0, 0);
    for t in tasks {
        let r = t.await?.map_err(|e| format!("client: {e}"))?;
        samples.extend(r.samples);
        (req_bytes, reply_bytes) = (r.req_bytes, r.reply_bytes);
    }
    if samples.is_empty() {
        return Err("no round trip completed in the measured window".into());
    }
    samples.sort_unstable();
    let n = samples.len() as f64;
    let mut line = serde_json::json!({
        "parser": match o.format { Format::Json => "json", Format::MsgPack => "msgpack" },
        "clients": o.run.clients,
        "size": o.run.size,
        "duration_s": o.run.duration.as_secs_f64(),
        "msgs_per_s": (n / o.run.duration.as_secs_f64()).round(),
        "p50_us": round(percentile_us(&samples, 0.50), 1),
        "p99_us": round(percentile_us(&samples, 0.99), 1),
        "req_bytes": req_bytes,
        "reply_bytes": reply_bytes,
    });
    common::add_cpu(&mut line, cpu, n, o.run.duration);
    println!("{line}");
    Ok(())
}
