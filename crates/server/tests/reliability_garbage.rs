//! No panic reachable from the network: every kind of garbage on both transports, then a
//! well-behaved client still gets through, nothing panicked (tasks included), and once the
//! garbage sessions have timed out nothing of them is left.

mod reliability_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reliability_support::client::{Client, ConnectOptions, Target};
use reliability_support::{
    Rng, count_panics, get_req, http, panics, polling_handshake, post_req, read_response, serve,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use volley::{AckSender, Data, Socket, SocketIo};

const WS_UPGRADE: &str = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\n\
    Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A client frame (masked unless `mask` is false) with the given first byte.
fn ws_frame(first: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut f = vec![first];
    let m = if mask { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n <= 0xFFFF => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [0x37, 0xfa, 0x21, 0x3d];
    if mask {
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

fn text(payload: &[u8]) -> Vec<u8> {
    ws_frame(0x81, payload, true)
}

/// Opens a WebSocket by hand and reads past the 101 and the open packet.
async fn raw_ws(addr: SocketAddr) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(WS_UPGRADE.as_bytes()).await.ok()?;
    let res = read_response(&mut s).await?;
    assert_eq!(res.status, 101, "{res:?}");
    // The open packet: a small unmasked text frame.
    let mut buf = [0u8; 512];
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
    Some(s)
}

/// Writes `bytes`, then reads what comes back for a while (until the server closes, at
/// most 2 s); whatever the answer, nothing may panic.
async fn throw(mut s: TcpStream, bytes: &[u8]) {
    let _ = s.write_all(bytes).await;
    let mut buf = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn raw_tcp(addr: SocketAddr, bytes: Vec<u8>) {
    if let Ok(s) = TcpStream::connect(addr).await {
        throw(s, &bytes).await;
    }
}

/// Runs the tasks at once and waits for all of them.
async fn all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        t.await.unwrap();
    }
}

/// Socket.IO packets (after the Engine.IO `4`) that are malformed, truncated, out of place
/// or hostile.
fn bad_socket_io_packets() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "",
        "x",
        "9",
        "-",
        "4",
        "42",
        "42[",
        "42[]",
        "42[1]",
        "42{}",
        "42\"a\"",
        "42[\"a\"",
        "42[\"a\",]",
        "40/",
        "40/nope,",
        "40/nope",
        "40/,{}",
        "40{",
        "40[]",
        "41/nope,",
        "43",
        "43[]",
        "43x[]",
        "4399999999999999999999[]",
        "4299999999999999999999[\"a\"]",
        "42-1[\"a\"]",
        "44",
        "44{}",
        "45",
        "45-",
        "451-",
        "45-[\"a\"]",
        "459999999999-[\"a\"]",
        "45999-[\"a\",{\"_placeholder\":true,\"num\":0}]",
        "451-[\"a\",{\"_placeholder\":true,\"num\":7}]",
        "451-[\"a\",{\"_placeholder\":true,\"num\":-1}]",
        "451-[\"a\",{\"_placeholder\":true,\"num\":\"0\"}]",
        "462-[]",
        "46-[]",
        "47",
        "48",
        "4\u{0}",
        "42/\u{ffff},[\"a\"]",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(format!("42[{}1{}]", "[".repeat(100_000), "]".repeat(100_000)).into_bytes());
    v.push(format!("40{}", "{\"a\":".repeat(10_000)).into_bytes());
    v.push(format!("42[\"{}\"]", "e".repeat(90_000)).into_bytes());
    v.push(b"42[\"\xff\xfe\"]".to_vec());
    v
}

/// The next packet a long-polling GET brings other than a ping; pings are answered, as a
/// client must (a busy machine may let one come first).
async fn next_polled(addr: SocketAddr, uri: &str) -> String {
    loop {
        let res = http(addr, &get_req(uri)).await.expect("a polling answer");
        assert_eq!(res.status, 200, "{res:?}");
        let text = res.text();
        let mut rest = Vec::new();
        for packet in text.split('\u{1e}') {
            if packet == "2" {
                let pong = http(addr, &post_req(uri, b"3"))
                    .await
                    .expect("pong answered");
                assert_eq!(pong.text(), "ok");
            } else {
                rest.push(packet);
            }
        }
        if !rest.is_empty() {
            return rest.join("\u{1e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_both_transports_leaves_the_server_working() {
    count_panics();
    // Garbage sessions end by themselves within seconds (a ping every 300 ms; a namespace to
    // join within the connect timeout); the deadlines are long enough that the good clients
    // below, slowed down by a busy machine, never miss them.
    let io = SocketIo::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .attachments_timeout(Duration::from_millis(500))
        .max_payload(100_000)
        .build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on(
            "echo",
            |_: Socket, Data(v): Data<Value>, ack: AckSender| async move {
                let _ = ack.send(&v);
            },
        );
    });
    let addr = serve(&io).await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = Instant::now();

    // Random bytes, alone and after a plausible request line.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let n = rng.below(4096) + 1;
        let mut bytes = match i % 4 {
            0 => Vec::new(),
            1 => b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n".to_vec(),
            2 => b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\nContent-Length: 9\r\n\r\n"
                .to_vec(),
            _ => WS_UPGRADE.as_bytes().to_vec(),
        };
        bytes.extend(rng.bytes(n));
        tasks.push(tokio::spawn(raw_tcp(addr, bytes)));
    }
    // Random bytes as WebSocket frames, and as the stream after a good upgrade.
    for _ in 0..50 {
        let n = rng.below(2048) + 1;
        let noise = rng.bytes(n);
        tasks.push(tokio::spawn(async move {
            if let Some(s) = raw_ws(addr).await {
                throw(s, &noise).await;
            }
        }));
    }
    all(std::mem::take(&mut tasks)).await;

    // Huge headers, many headers, huge URIs, bad and odd query strings, bad methods.
    let huge = format!(
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    tasks.push(tokio::spawn(raw_tcp(addr, huge.into_bytes())));
    let many: String = (0..10_000).map(|i| format!("X-H{i}: v\r\n")).collect();
    tasks.push(tokio::spawn(raw_tcp(
        addr,
        format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n{many}\r\n").into_bytes(),
    )));
    let long_sid = "A".repeat(200_000);
    for query in [
        "",
        "?",
        "?&&&==&=",
        "?EIO=4",
        "?EIO=4&transport=polling&sid=%",
        "?EIO=4&transport=polling&sid=%zz%00%ff%",
        "?EIO=4&transport=polling&sid=++%2B%25",
        "?EIO=99999999999999999999&transport=polling",
        "?EIO=4&transport=polling&transport=websocket",
        "?EIO=4&transport=websocket",
        "?EIO=4&transport=polling&EIO=3",
        "?EIO=4&transport=polling&sid=",
        "?EIO=4&transport=polling&j=0&b64=1&t=%00",
        &format!("?EIO=4&transport=polling&sid={long_sid}"),
    ] {
        let path = format!("/socket.io/{query}");
        let _ = http(addr, &get_req(&path)).await;
        let _ = http(addr, &post_req(&path, b"4x")).await;
    }
    for raw in [
        &b"GET /socket.io/?EIO=4&transport=polling&sid=\xff\xfe HTTP/1.1\r\n\r\n"[..],
        b"DELETE /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n",
        b"BREW /socket.io/ HTTP/1.1\r\n\r\n",
        b"GET /socket.io/?EIO=4&transport=polling HTTP/9.9\r\n\r\n",
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.0\r\n\r\n",
        b"GET http://other/socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n",
        b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        // Upgrades without a key, with a bad version, with a POST.
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 99\r\n\r\n",
        b"POST /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n",
    ] {
        tasks.push(tokio::spawn(raw_tcp(addr, raw.to_vec())));
    }
    all(std::mem::take(&mut tasks)).await;

    // Long-polling sessions fed garbage: truncated and malformed payloads, invalid UTF-8,
    // truncated bodies, bodies that stop.
    let mut payloads: Vec<Vec<u8>> = [
        &b""[..],
        b"\x1e",
        b"\x1e\x1e",
        b"4\x1e",
        b"b",
        b"bAAA",
        b"b!!!!",
        b"7",
        b"0",
        b"2",
        b"5",
        b"\xff\xfe\xfd",
        b"4\xff\xfe",
        b"1",
    ]
    .iter()
    .map(|p| p.to_vec())
    .collect();
    payloads.extend(
        bad_socket_io_packets()
            .into_iter()
            .map(|p| [b"4".to_vec(), p].concat()),
    );
    for p in &payloads {
        let sid = polling_handshake(addr).await;
        let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let _ = http(addr, &post_req(&uri, b"40")).await;
        let _ = http(addr, &post_req(&uri, p)).await;
        let _ = http(addr, &get_req(&uri)).await;
    }
    for (claimed, sent, close) in [(1000, 10, true), (1000, 10, false), (5, 50, true)] {
        let sid = polling_handshake(addr).await;
        let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let mut req =
            format!("POST {uri} HTTP/1.1\r\nHost: x\r\nContent-Length: {claimed}\r\n\r\n")
                .into_bytes();
        req.extend(std::iter::repeat_n(b'4', sent));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&req).await.unwrap();
        if close {
            drop(s);
        } else {
            // Keeps the connection, never finishes the body.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(20)).await;
                drop(s);
            });
        }
    }

    // 10,000 tiny POSTs: half to a real session (one at a time, on one keep-alive
    // connection), half to sessions that do not exist (three connections at once).
    let sid = polling_handshake(addr).await;
    let good_uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let tiny = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let bodies: [&[u8]; 4] = [b"40", b"3", b"6", b"42[\"echo\",1]"];
        let mut answered = 0;
        for i in 0..5_000 {
            if s.write_all(&post_req(&good_uri, bodies[i % 4]))
                .await
                .is_err()
            {
                break;
            }
            match read_response(&mut s).await {
                Some(_) => answered += 1,
                None => break,
            }
        }
        answered
    });
    let mut strays = Vec::new();
    for c in 0..3 {
        strays.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut refused = 0;
            for i in 0..1_667 {
                let uri = format!("/socket.io/?EIO=4&transport=polling&sid=stray{c}x{i}");
                s.write_all(&post_req(&uri, b"4x")).await.unwrap();
                let res = read_response(&mut s).await.expect("an answer");
                assert_eq!(res.status, 400);
                refused += 1;
            }
            refused
        }));
    }
    let answered = tiny.await.unwrap();
    let mut refused = 0;
    for s in strays {
        refused += s.await.unwrap();
    }
    eprintln!("tiny POSTs: {answered} answered on the real session, {refused} refused");
    assert!(answered > 0);
    assert_eq!(refused, 3 * 1_667);

    // WebSocket sessions fed garbage: Socket.IO garbage in text frames, binary frames before
    // any CONNECT, attachments out of place, invalid UTF-8, and broken WebSocket framing.
    let mut frames: Vec<Vec<u8>> = bad_socket_io_packets()
        .into_iter()
        .map(|p| text(&[b"4".to_vec(), p].concat()))
        .collect();
    frames.extend([
        ws_frame(0x82, b"\x01\x02\x03", true), // binary before any CONNECT
        [text(b"40"), ws_frame(0x82, b"\x01", true)].concat(), // binary with no packet waiting
        [
            text(b"40"),
            text(b"451-[\"a\",{\"_placeholder\":true,\"num\":0}]"),
            text(b"42[\"a\"]"),
        ]
        .concat(), // text while an attachment is due
        [
            text(b"40"),
            text(b"451-[\"a\",{\"_placeholder\":true,\"num\":0}]"),
        ]
        .concat(), // never comes
        [
            text(b"40"),
            text(b"452-[\"a\",{\"_placeholder\":true,\"num\":0}]"),
            ws_frame(0x82, &[0; 60_000], true),
            ws_frame(0x82, &[0; 60_000], true),
        ]
        .concat(), // attachments past maxPayload
        text(b"\xff\xfe\xfd"),                 // invalid UTF-8 in a text frame
        text(b"4\xc3"),                        // truncated UTF-8
        ws_frame(0x81, b"40", false),          // unmasked client frame
        ws_frame(0xF1, b"40", true),           // reserved bits
        ws_frame(0x83, b"40", true),           // reserved opcode
        ws_frame(0x80, b"40", true),           // continuation with nothing to continue
        ws_frame(0x01, b"4", true),            // a fragment, then a new message
        [ws_frame(0x01, b"4", true), text(b"40")].concat(),
        ws_frame(0x09, &[0; 200], true), // ping over 125 bytes
        ws_frame(0x08, b"\x03", true),   // close with a 1-byte body
        ws_frame(0x88, &[0x03, 0xe8, 0xff, 0xfe], true), // close with a bad reason
        text(&vec![b'4'; 200_000]),      // over maxPayload
        vec![0x81, 0xFF, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // 2^63 length
        vec![0x81, 0xFE],                // truncated header
        [text(b"40"), text(b"1"), text(b"40")].concat(), // after the close packet
        [text(b"2probe"), text(b"5"), text(b"6")].concat(),
    ]);
    for f in frames {
        tasks.push(tokio::spawn(async move {
            if let Some(s) = raw_ws(addr).await {
                throw(s, &f).await;
            }
        }));
    }
    // An upgrade of a polling session that sends garbage instead of the probe.
    for junk in [&b"2prob"[..], b"5", b"\xff", b"3probe"] {
        let sid = polling_handshake(addr).await;
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let upgrade = WS_UPGRADE.replace(
                "transport=websocket",
                &format!("transport=websocket&sid={sid}"),
            );
            s.write_all(upgrade.as_bytes()).await.unwrap();
            let _ = read_response(&mut s).await;
            throw(s, &text(junk)).await;
        }));
    }
    all(std::mem::take(&mut tasks)).await;
    eprintln!("garbage thrown in {:.2?}", start.elapsed());

    // A well-behaved WebSocket client and a long-polling one still get through.
    let target = Target::local(addr);
    let mut good = Client::connect(&target, &ConnectOptions::default())
        .await
        .expect("a good client connects");
    let reply = good
        .emit_with_ack(7, "echo", "{\"ok\":true}")
        .await
        .expect("the echo is acknowledged");
    assert_eq!(reply, "[{\"ok\":true}]");
    let sid = polling_handshake(addr).await;
    let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(
        http(addr, &post_req(&uri, b"40")).await.unwrap().text(),
        "ok"
    );
    assert!(next_polled(addr, &uri).await.starts_with("40{"));
    assert_eq!(
        http(addr, &post_req(&uri, b"421[\"echo\",\"hi\"]"))
            .await
            .unwrap()
            .text(),
        "ok"
    );
    assert_eq!(next_polled(addr, &uri).await, "431[\"hi\"]");
    good.disconnect().await.unwrap();

    assert_eq!(panics(), 0, "something panicked");

    // Every garbage session times out (pingInterval + pingTimeout, connectTimeout), the
    // trickled POST is given up on, and nothing of them stays in memory. (No signal reports
    // it: the metrics are polled, within the bound of a hang.)
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = io.metrics();
        if m.sessions_open == 0 && m.sessions_allocated == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "sessions left behind: {m:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(io.of("/").sockets().is_empty());
    assert_eq!(panics(), 0, "something panicked");
}
