//! Bad input at the Socket.IO level, from a raw WebSocket client speaking Engine.IO and
//! Socket.IO frames by hand (`tokio-tungstenite`), against an in-process Volley server.
//!
//! The official client never sends such frames, so they are written out here. Each test
//! checks that the offending connection, and only it, is closed (a bystander client on the
//! same server keeps getting its echoes), or that the frame is ignored and the connection
//! stays up.

mod sio;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use volley::{DisconnectReason, RawArgs, Socket, SocketIo, SocketIoBuilder};

use sio::{Observer, Server, observer, serve, str_of};

/// How long a test waits for one frame or for a connection to close: a bound on a hang,
/// never reached unless something is broken, however busy the machine.
const FRAME_WAIT: Duration = Duration::from_secs(30);

/// A server with "/" (events "echo" and "bin") and "/other" (event "ev"), reporting every
/// connection, disconnection and event it handles.
async fn server(builder: SocketIoBuilder) -> (Server, Observer) {
    let (obs, seen) = observer();
    let io: SocketIo = builder.build();
    for nsp in ["/", "/other"] {
        let obs = obs.clone();
        io.of(nsp).on_connection(move |socket: Socket| {
            let obs = obs.clone();
            async move {
                obs.send(json!({"kind": "connect", "nsp": socket.namespace(), "id": socket.id()}));
                let o = obs.clone();
                socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| async move {
                    o.send(json!({
                        "kind": "disconnect",
                        "nsp": socket.namespace(),
                        "id": socket.id(),
                        "reason": reason.as_str(),
                    }));
                });
                let o = obs.clone();
                socket.on("echo", move |socket: Socket, args: RawArgs| {
                    let obs = o.clone();
                    async move {
                        obs.send(json!({"kind": "echo", "nsp": socket.namespace()}));
                        socket.emit_args("echo", args).expect("emit echo");
                    }
                });
                let o = obs.clone();
                socket.on("bin", move |socket: Socket, args: RawArgs| {
                    let obs = o.clone();
                    async move {
                        let n = args.attachments().len();
                        obs.send(json!({"kind": "bin", "attachments": n}));
                        socket.emit("bin-count", &n).expect("emit bin-count");
                    }
                });
                socket.on("ev", move |socket: Socket, args: RawArgs| {
                    let obs = obs.clone();
                    let args: Vec<String> = args
                        .args()
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    async move {
                        obs.send(json!({
                            "kind": "ev",
                            "nsp": socket.namespace(),
                            "id": socket.id(),
                            "args": args,
                        }));
                    }
                });
            }
        });
    }
    (serve(io).await, seen)
}

/// A client speaking Engine.IO v4 / Socket.IO v5 over a WebSocket, frame by frame.
struct Raw {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The socket id in "/" (from the CONNECT answer).
    id: String,
}

/// How a connection ended.
#[derive(Debug)]
struct Closed {
    /// Text frames received before the end.
    frames: Vec<String>,
}

impl Raw {
    /// Opens an Engine.IO session over WebSocket and joins "/".
    async fn connect(addr: SocketAddr) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio::time::timeout(FRAME_WAIT, connect_async(url))
            .await
            .expect("WebSocket handshake in time")
            .expect("WebSocket handshake");
        let mut raw = Self {
            ws,
            id: String::new(),
        };
        let open = raw.recv().await;
        assert!(open.starts_with("0{"), "Engine.IO open packet: {open}");
        raw.send("40").await;
        let connect = raw.recv().await;
        let payload = connect
            .strip_prefix("40")
            .unwrap_or_else(|| panic!("CONNECT answer: {connect}"));
        let payload: Value = serde_json::from_str(payload).expect("CONNECT payload");
        raw.id = str_of(&payload, "sid").to_owned();
        raw
    }

    async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("send {text:?}: {e}"));
    }

    async fn send_binary(&mut self, data: &[u8]) {
        self.ws
            .send(Message::binary(data.to_vec()))
            .await
            .expect("send a binary frame");
    }

    /// The next text frame, answering pings on the way.
    async fn recv(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(FRAME_WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within {FRAME_WAIT:?}"));
            match msg {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => self.send("3").await,
                Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Emits `event` with `arg` in "/" and expects it echoed back exactly.
    async fn echo(&mut self, arg: &str) {
        let packet = format!(
            "42{}",
            serde_json::to_string(&json!(["echo", arg])).expect("JSON")
        );
        self.send(&packet).await;
        let back = self.recv().await;
        assert_eq!(back, packet, "the echo of {arg:?}");
    }

    /// Reads until the server closes the connection, at most `limit`.
    async fn closed(&mut self, limit: Duration) -> Closed {
        let started = Instant::now();
        let mut frames = Vec::new();
        loop {
            let msg = tokio::time::timeout_at((started + limit).into(), self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("the connection is still open after {limit:?}; got {frames:?}")
                });
            match msg {
                Some(Ok(Message::Text(t))) => frames.push(t.as_str().to_owned()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    return Closed { frames };
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

/// A closed connection may get an Engine.IO close packet first, nothing else.
#[track_caller]
fn assert_nothing_but_close(closed: &Closed, what: &str) {
    assert!(
        closed.frames.iter().all(|f| f == "1"),
        "{what}: frames before the close: {:?}",
        closed.frames
    );
}

/// The server's report of `id` leaving "/".
async fn disconnect_of(seen: &mut Observer, id: &str) -> Value {
    loop {
        let d = seen.wait("disconnect").await;
        if d["id"] == id {
            return d;
        }
    }
}

fn placeholders(n: usize) -> String {
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"_placeholder": true, "num": i}))
        .collect();
    let mut args = vec![json!("bin")];
    args.extend(list);
    serde_json::to_string(&args).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_close_only_their_connection() {
    let (server, mut seen) = server(SocketIo::builder()).await;
    let mut bystander = Raw::connect(server.addr).await;
    bystander.echo("before").await;

    for frame in [
        "4abc",        // no such packet type
        "42{}",        // an event whose payload is not an array
        "42abc[]",     // junk between the header and the payload
        r#"42["a","#,  // JSON cut short
        "42[]",        // an event without a name
        r#"42["a"]]"#, // trailing junk
    ] {
        let mut victim = Raw::connect(server.addr).await;
        victim.echo("alive").await;
        victim.send(frame).await;
        let closed = victim.closed(FRAME_WAIT).await;
        assert_nothing_but_close(&closed, frame);
        // Closed for the frame (the reason says so), not by a timeout.
        let d = disconnect_of(&mut seen, &victim.id).await;
        assert_eq!(
            d["reason"],
            DisconnectReason::ParseError.as_str(),
            "{frame}: {d}"
        );
        bystander.echo(&format!("after {frame}")).await;
    }
    assert!(
        seen.take("disconnect")
            .iter()
            .all(|d| d["id"] != bystander.id),
        "the bystander was disconnected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_event_with_its_attachment_is_delivered() {
    let (server, mut seen) = server(SocketIo::builder()).await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(&format!("451-{}", placeholders(1))).await;
    raw.send_binary(&[1, 2, 3]).await;
    assert_eq!(raw.recv().await, r#"42["bin-count",1]"#);
    assert_eq!(seen.wait("bin").await["attachments"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_event_whose_attachments_never_come_is_dropped() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let (server, mut seen) = server(SocketIo::builder().attachments_timeout(TIMEOUT)).await;
    let mut bystander = Raw::connect(server.addr).await;
    let mut victim = Raw::connect(server.addr).await;

    // Two placeholders, one attachment: the packet stays incomplete. The server's clock
    // starts when the header arrives, after `waiting` starts.
    let waiting = Instant::now();
    victim.send(&format!("452-{}", placeholders(2))).await;
    victim.send_binary(&[9]).await;
    // Meanwhile the server serves others.
    bystander.echo("while waiting").await;
    let closed = victim.closed(FRAME_WAIT).await;
    let after = waiting.elapsed();
    assert_nothing_but_close(&closed, "incomplete binary event");
    assert!(
        after >= TIMEOUT,
        "closed after {after:?}, before the attachments timeout of {TIMEOUT:?}"
    );
    let d = disconnect_of(&mut seen, &victim.id).await;
    assert_eq!(d["reason"], DisconnectReason::ParseError.as_str(), "{d}");
    assert!(
        seen.take("bin").is_empty(),
        "the incomplete event reached its handler"
    );
    bystander.echo("after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_up_to_the_cap_pass_and_more_close() {
    // No attachments timeout within the test's reach: a close here comes from the cap.
    let (server, mut seen) =
        server(SocketIo::builder().attachments_timeout(Duration::from_secs(3600))).await;
    let mut bystander = Raw::connect(server.addr).await;

    let mut ok = Raw::connect(server.addr).await;
    ok.send(&format!("4510-{}", placeholders(10))).await;
    for i in 0..10u8 {
        ok.send_binary(&[i]).await;
    }
    assert_eq!(
        ok.recv().await,
        r#"42["bin-count",10]"#,
        "10 attachments pass"
    );
    assert_eq!(seen.wait("bin").await["attachments"], 10);

    let mut victim = Raw::connect(server.addr).await;
    victim.send(&format!("4511-{}", placeholders(11))).await;
    let closed = victim.closed(FRAME_WAIT).await;
    assert_nothing_but_close(&closed, "11 attachments");
    let d = disconnect_of(&mut seen, &victim.id).await;
    assert_eq!(d["reason"], DisconnectReason::ParseError.as_str(), "{d}");
    assert!(
        seen.take("bin").is_empty(),
        "the 11-attachment event reached its handler"
    );

    ok.echo("still up").await;
    bystander.echo("after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_on_a_namespace_not_joined_are_ignored() {
    let (server, mut seen) = server(SocketIo::builder()).await;
    let mut raw = Raw::connect(server.addr).await;

    // "/other" exists, "/nowhere" does not; the client joined neither.
    raw.send(r#"42/other,["ev",1]"#).await;
    raw.send(r#"42/nowhere,["ev",2]"#).await;
    raw.send(r#"42/other,7["ev",3]"#).await;
    // Packets are handled in order: once this echo is back, the ones above were handled.
    raw.echo("still up").await;
    assert!(seen.take("ev").is_empty(), "{:#?}", seen.log());
    assert!(seen.take("connect").iter().all(|c| c["nsp"] == "/"));

    // Joined, the same event reaches the handler (the check above can fail)...
    raw.send("40/other,").await;
    let joined = raw.recv().await;
    assert!(joined.starts_with("40/other,{\"sid\":"), "{joined}");
    raw.send(r#"42/other,["ev",4]"#).await;
    let ev = seen.wait("ev").await;
    assert_eq!(
        (ev["nsp"].as_str(), ev["args"].clone()),
        (Some("/other"), json!(["4"]))
    );

    // ...and after leaving, it is ignored again.
    raw.send("41/other,").await;
    let left = seen.wait("disconnect").await;
    assert_eq!(left["nsp"], "/other", "{left}");
    assert_eq!(left["reason"], "client namespace disconnect", "{left}");
    raw.send(r#"42/other,["ev",5]"#).await;
    raw.echo("still up after leaving").await;
    assert!(seen.take("ev").is_empty(), "{:#?}", seen.log());
    assert!(
        seen.take("disconnect").is_empty(),
        "the connection was closed: {:#?}",
        seen.log()
    );
}
