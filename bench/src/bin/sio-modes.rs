//! Load generator for the two scenarios the shared one (`shared/bench`) has no mode for:
//! server emits that ask for an ack, and the long-polling transport.
//!
//! ```text
//! sio-modes server-ack   --port P [-c 1] [--inflight 1] [--size 32] [--duration 5] [--warmup 1] [--pid PID]
//! sio-modes polling-echo --port P [-c 100] [--size 32] [--duration 5] [--warmup 1] [--pid PID]
//! ```
//!
//! **server-ack**: each of `-c` clients connects over WebSocket
//! (`/socket.io/?EIO=4&transport=websocket`, CONNECT to `/`) and sends
//! `42["serverack",{"inflight":F,"data":"xx…"}]`. The server then keeps `F` acknowledged emits
//! in flight on that socket, as fast as the acks come back: it emits `sack` with the string
//! and an ack id (`42<id>["sack","xx…"]`), and emits the next one when the client's ack
//! (`43<id>["xx…"]`) arrives. The client answers every `sack` at once, the answers to all
//! frames of one read written with one flush. Counted: acks sent inside the measured window.
//! The handler is in `bench-server` (`serverack`) and in the peers of `bench/peers/`.
//!
//! **polling-echo**: each of `-c` clients speaks Engine.IO long-polling over HTTP/1.1
//! keep-alive (hyper's client), one connection for its GETs and one for its POSTs, as a
//! browser does: handshake GET, `40` POSTed, then a closed loop with one echo in flight: a
//! GET is parked, `42["echo","xx…"]` is POSTed, and the GET comes back with the server's
//! `echo` event (pings met on the way are answered with a POSTed `3`). Latency: from the POST
//! to the echo's arrival. The handlers are those of every peer of the shared harness.
//!
//! The result is one JSON line on stdout: `mode`, `clients`, `inflight`, `size`,
//! `msgs_per_s` (acks or echoes per second), `p50_us`/`p99_us` (polling-echo), the generator's
//! own CPU (`gen_cpu_pct`) and with `--pid` the server's CPU time over the measured window
//! (`srv_cpu_s`, `srv_cpu_pct`, `srv_cpu_us_per_msg`).
//!
//! Bounded: loopback only, every read has a 10 s deadline, the run stops by itself, and any
//! protocol error ends the process with an error and a non-zero status.

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::{READ_TIMEOUT, Res, percentile_us, round};
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type Ws = WebSocketStream<TcpStream>;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    ServerAck,
    PollingEcho,
}

struct Opts {
    mode: Mode,
    inflight: usize,
    run: common::Run,
}

fn usage() -> ! {
    eprintln!(
        "usage: sio-modes server-ack|polling-echo --port P [-c N] [--inflight F] [--size 32] \
         [--duration 5] [--warmup 1] [--pid SERVER_PID]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("server-ack") => Mode::ServerAck,
        Some("polling-echo") => Mode::PollingEcho,
        _ => usage(),
    };
    let mut o = Opts {
        mode,
        inflight: 1,
        run: common::Run::new(if mode == Mode::ServerAck { 1 } else { 100 }),
    };
    while let Some(flag) = args.next() {
        let val = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--inflight" => o.inflight = val.parse().unwrap_or_else(|_| usage()),
            _ => o.run.set(&flag, &val).unwrap_or_else(|| usage()),
        }
    }
    if !o.run.is_valid() || o.inflight == 0 {
        usage()
    }
    o
}

/// What one client measured.
#[derive(Default)]
struct ClientResult {
    /// Messages completed inside the measured window.
    count: u64,
    /// Their latencies (ns), when the mode measures them.
    samples: Vec<u64>,
}

// ---- server-ack over WebSocket ----

/// Connects one WebSocket client and joins `/`.
async fn ws_connect(port: u16) -> Res<Ws> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    match ws_next(&mut ws).await? {
        Message::Text(t) if t.as_str().starts_with("0{") => {}
        other => return Err(format!("expected the open packet, got {other:?}").into()),
    }
    ws.send(Message::text("40")).await?;
    loop {
        match ws_next(&mut ws).await? {
            Message::Text(t) if t.as_str().starts_with("40{") => return Ok(ws),
            Message::Text(t) if t.as_str() == "2" => ws.send(Message::text("3")).await?,
            other => return Err(format!("expected the CONNECT reply, got {other:?}").into()),
        }
    }
}

async fn ws_next(ws: &mut Ws) -> Res<Message> {
    Ok(timeout(READ_TIMEOUT, ws.next())
        .await
        .map_err(|_| "no frame from the server within 10 s")?
        .ok_or("connection closed by the server")??)
}

/// Answers one frame of the server-ack loop (queued, not flushed); whether it was a `sack`.
fn answer(ws: &mut Ws, msg: &Message, expected: &str, reply: &str) -> Res<bool> {
    let Message::Text(t) = msg else {
        return Err(format!("unexpected frame {msg:?}").into());
    };
    let t = t.as_str();
    if t == "2" {
        ws.start_send_unpin(Message::text("3"))?;
        return Ok(false);
    }
    let body = t.strip_prefix("42").ok_or("expected an EVENT")?;
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    let (id, args) = body.split_at(digits);
    if id.is_empty() || args != expected {
        return Err(format!("expected a sack with an ack id, got {t}").into());
    }
    ws.start_send_unpin(Message::text(format!("43{id}{reply}")))?;
    Ok(true)
}

async fn server_ack_client(
    mut ws: Ws,
    inflight: usize,
    payload: String,
    start: Instant,
    end: Instant,
) -> Res<ClientResult> {
    let data = serde_json::to_string(&payload)?;
    let expected = format!("[\"sack\",{data}]");
    let reply = format!("[{data}]");
    ws.send(Message::text(format!(
        "42[\"serverack\",{{\"inflight\":{inflight},\"data\":{data}}}]"
    )))
    .await?;
    let mut r = ClientResult::default();
    while Instant::now() < end {
        let first = ws_next(&mut ws).await?;
        let mut acks = u64::from(answer(&mut ws, &first, &expected, &reply)?);
        // Everything the last read brought, answered before one flush.
        while let Some(msg) = ws.next().now_or_never() {
            let msg = msg.ok_or("connection closed by the server")??;
            acks += u64::from(answer(&mut ws, &msg, &expected, &reply)?);
        }
        ws.flush().await?;
        let now = Instant::now();
        if now >= start && now < end {
            r.count += acks;
        }
    }
    let _ = ws.close(None).await;
    Ok(r)
}

// ---- echo over long-polling ----

type Http = SendRequest<Full<Bytes>>;

async fn http_conn(port: u16) -> Res<Http> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(send)
}

fn request(port: u16, query: &str, post: Option<Bytes>) -> Res<http::Request<Full<Bytes>>> {
    let b = http::Request::builder()
        .uri(format!("/socket.io/?EIO=4&transport=polling{query}"))
        .header(http::header::HOST, format!("127.0.0.1:{port}"));
    Ok(match post {
        Some(body) => b
            .method(http::Method::POST)
            .header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
            .body(Full::new(body))?,
        None => b.method(http::Method::GET).body(Full::new(Bytes::new()))?,
    })
}

/// Sends a request and reads the whole answer, which must be a 200.
async fn call(conn: &mut Http, req: http::Request<Full<Bytes>>) -> Res<Bytes> {
    let res = timeout(READ_TIMEOUT, async {
        let res = conn.send_request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        Res::Ok((status, body))
    })
    .await
    .map_err(|_| "no HTTP answer within 10 s")??;
    if res.0 != http::StatusCode::OK {
        return Err(format!("HTTP {}: {:?}", res.0, res.1).into());
    }
    Ok(res.1)
}

/// One polling client: its two connections and its session id.
struct Polling {
    port: u16,
    get: Http,
    post: Http,
    sid_query: String,
}

impl Polling {
    async fn connect(port: u16) -> Res<Self> {
        let mut get = http_conn(port).await?;
        let open = call(&mut get, request(port, "", None)?).await?;
        let open = open.strip_prefix(b"0").ok_or("expected the open packet")?;
        let open: serde_json::Value = serde_json::from_slice(open)?;
        let sid = open["sid"].as_str().ok_or("no sid")?;
        let mut p = Self {
            port,
            get,
            post: http_conn(port).await?,
            sid_query: format!("&sid={sid}"),
        };
        p.post_packets(Bytes::from_static(b"40")).await?;
        loop {
            let body = p.poll().await?;
            if p.take(&body, b"40").await? {
                return Ok(p);
            }
        }
    }

    async fn post_packets(&mut self, body: Bytes) -> Res<()> {
        let req = request(self.port, &self.sid_query, Some(body))?;
        match &call(&mut self.post, req).await?[..] {
            b"ok" => Ok(()),
            other => Err(format!("POST answered {other:?}").into()),
        }
    }

    /// One GET.
    async fn poll(&mut self) -> Res<Bytes> {
        call(&mut self.get, request(self.port, &self.sid_query, None)?).await
    }

    /// Answers the pings of a payload; whether it holds `packet`. Anything else than pings,
    /// noops and `packet` is an error.
    async fn take(&mut self, body: &[u8], packet: &[u8]) -> Res<bool> {
        let (mut found, mut ping) = (false, false);
        for pk in body.split(|b| *b == 0x1e) {
            match pk {
                b"2" => ping = true,
                b"6" => {}
                pk if pk == packet => found = true,
                pk if packet.starts_with(b"40") && pk.starts_with(b"40{") => found = true,
                _ => return Err(format!("unexpected packet in {body:?}").into()),
            }
        }
        if ping {
            self.post_packets(Bytes::from_static(b"3")).await?;
        }
        Ok(found)
    }
}

async fn polling_echo_client(
    mut p: Polling,
    payload: String,
    start: Instant,
    end: Instant,
) -> Res<ClientResult> {
    let req = Bytes::from(format!("42{}", serde_json::to_string(&("echo", &payload))?));
    let mut r = ClientResult::default();
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        // The GET is parked first, then the echo request is POSTed.
        let get = p.get.send_request(request(p.port, &p.sid_query, None)?);
        p.post_packets(req.clone()).await?;
        let res = timeout(READ_TIMEOUT, get)
            .await
            .map_err(|_| "no GET answer within 10 s")??;
        if res.status() != http::StatusCode::OK {
            return Err(format!("GET answered HTTP {}", res.status()).into());
        }
        let mut body = res.into_body().collect().await?.to_bytes();
        while !p.take(&body, &req).await? {
            body = p.poll().await?;
        }
        let done = Instant::now();
        if done >= start && done < end {
            r.count += 1;
            r.samples.push((done - sent).as_nanos() as u64);
        }
    }
    Ok(r)
}

/// Connects `n` clients at once.
async fn connect_all<C, F: Future<Output = Res<C>>>(n: usize, f: impl Fn() -> F) -> Res<Vec<C>> {
    futures_util::future::try_join_all((0..n).map(|_| f()))
        .await
        .map_err(|e| format!("connecting: {e}").into())
}

type Task = tokio::task::JoinHandle<Res<ClientResult>>;

/// Starts every client's loop; returns the measured window and the tasks.
fn start_clients<C, F>(
    conns: Vec<C>,
    run: &common::Run,
    client: impl Fn(C, Instant, Instant) -> F,
) -> (Instant, Instant, Vec<Task>)
where
    F: Future<Output = Res<ClientResult>> + Send + 'static,
{
    let start = Instant::now() + run.warmup;
    let end = start + run.duration;
    let tasks = conns
        .into_iter()
        .map(|c| tokio::spawn(client(c, start, end)))
        .collect();
    (start, end, tasks)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let o = parse_opts();
    let payload = "x".repeat(o.run.size);

    let (start, end, tasks) = match o.mode {
        Mode::ServerAck => {
            let conns = connect_all(o.run.clients, || ws_connect(o.run.port)).await?;
            start_clients(conns, &o.run, |ws, start, end| {
                server_ack_client(ws, o.inflight, payload.clone(), start, end)
            })
        }
        Mode::PollingEcho => {
            let conns = connect_all(o.run.clients, || Polling::connect(o.run.port)).await?;
            start_clients(conns, &o.run, |p, start, end| {
                polling_echo_client(p, payload.clone(), start, end)
            })
        }
    };
    tokio::time::sleep_until(start.into()).await;
    let gen_before = common::cpu_seconds(std::process::id())?;
    let cpu = common::server_cpu(o.run.pid, start, end).await?;
    tokio::time::sleep_until(end.into()).await;
    let gen_cpu = common::cpu_seconds(std::process::id())? - gen_before;

    let (mut count, mut samples) = (0, Vec::new());
    for t in tasks {
        let r = t.await?.map_err(|e| format!("client: {e}"))?;
        count += r.count;
        samples.extend(r.samples);
    }
    if count == 0 {
        return Err("nothing completed in the measured window".into());
    }
    let secs = o.run.duration.as_secs_f64();
    let mut line = serde_json::json!({
        "mode": match o.mode { Mode::ServerAck => "server-ack", Mode::PollingEcho => "polling-echo" },
        "clients": o.run.clients,
        "inflight": o.inflight,
        "size": o.run.size,
        "duration_s": secs,
        "msgs_per_s": (count as f64 / secs).round(),
        "gen_cpu_pct": round(100.0 * gen_cpu / secs, 1),
    });
    if !samples.is_empty() {
        samples.sort_unstable();
        line["p50_us"] = round(percentile_us(&samples, 0.50), 1).into();
        line["p99_us"] = round(percentile_us(&samples, 0.99), 1).into();
    }
    common::add_cpu(&mut line, cpu, count as f64, o.run.duration);
    println!("{line}");
    Ok(())
}
