//! Engine.IO v3 / Socket.IO protocol v4 bytes on the wire (`allow_eio3`), over raw HTTP
//! long-polling. Every expected body is what the official Node server (socket.io 4.8,
//! engine.io 6.6, `allowEIO3: true`) answers to the same requests.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use volley::{AckSender, ConnectError, RawArgs, Socket, SocketIo};

/// One HTTP/1.1 request on a new connection: status, content type, body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    s.write_all(body).await.expect("write body");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("an answer within 10 s")
        .expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head[9..12].parse().expect("status");
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (status, ctype, buf[split + 4..].to_vec())
}

struct V3 {
    addr: SocketAddr,
    sid: String,
}

impl V3 {
    async fn open(addr: SocketAddr) -> Self {
        let (status, _, body) =
            http(addr, "GET", "/socket.io/?EIO=3&transport=polling", "", b"").await;
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        let (len, open) = text.split_once(':').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), open.encode_utf16().count());
        let v: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
        Self {
            addr,
            sid: v["sid"].as_str().unwrap().to_owned(),
        }
    }

    fn path(&self) -> String {
        format!("/socket.io/?EIO=3&transport=polling&sid={}", self.sid)
    }

    async fn post(&self, body: &str) {
        let (status, _, body) = http(
            self.addr,
            "POST",
            &self.path(),
            "text/plain;charset=UTF-8",
            body.as_bytes(),
        )
        .await;
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
    }

    /// GETs until the bodies, put together, are `expected` (a server may split what Node
    /// sends in one payload across two answers).
    async fn expect(&self, expected: &[u8]) -> String {
        let mut got = Vec::new();
        let mut ctype = String::new();
        while got.len() < expected.len() {
            let (status, t, body) = http(self.addr, "GET", &self.path(), "", b"").await;
            assert_eq!(status, 200);
            ctype = t;
            got.extend_from_slice(&body);
        }
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
        ctype
    }
}

/// H2 of the conformance handlers: the arguments back as `message-back`.
async fn message_back(socket: Socket, args: RawArgs) {
    let _ = socket.emit_args("message-back", args);
}

/// H3: the arguments back as the acknowledgement.
async fn answer_with_args(_: Socket, args: RawArgs, ack: AckSender) {
    let _ = ack.send_args(args);
}

async fn server() -> SocketAddr {
    let io = SocketIo::builder().allow_eio3(true).build();
    for nsp in ["/", "/custom"] {
        io.of(nsp).on_connection(|socket: Socket| async move {
            let _ = socket.emit("auth", socket.handshake().auth());
            socket
                .on("message", message_back)
                .on("message-with-ack", answer_with_args);
        });
    }
    io.of("/secret")
        .middleware(|_: Socket| async { Err(ConnectError::new("not authorized")) });
    io.of("/secret-data").middleware(|_: Socket| async {
        Err(ConnectError::new("not authorized").with_data(serde_json::json!({"code": 7})))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(volley::serve(listener, io.service()));
    addr
}

#[tokio::test]
async fn connect_rules_and_payload_shapes_match_node() {
    let addr = server().await;
    let c = V3::open(addr).await;
    // In "/" at once: `40` without a payload, then the handler's event.
    c.expect(br#"2:4013:42["auth",{}]"#).await;
    c.post("1:2").await;
    c.expect(b"1:3").await;
    // The namespace query is the auth.
    c.post("14:40/custom?x=y,").await;
    c.expect(br#"10:40/custom,28:42/custom,["auth",{"x":"y"}]"#)
        .await;
    c.post("10:40/random,").await;
    c.expect(br#"41:44/random,{"message":"Invalid namespace"}"#)
        .await;
    // Middleware refusals: the data, or else the message, as a plain value.
    c.post("10:40/secret,15:40/secret-data,").await;
    c.expect(br#"26:44/secret,"not authorized"25:44/secret-data,{"code":7}"#)
        .await;
    // Lengths in UTF-16 units.
    c.post(r#"31:421["message-with-ack",1,"é😀"]"#).await;
    c.expect(r#"12:431[1,"é😀"]"#.as_bytes()).await;
}

#[tokio::test]
async fn binary_payloads_match_node() {
    let addr = server().await;
    let c = V3::open(addr).await;
    c.expect(br#"2:4013:42["auth",{}]"#).await;
    // A binary event posted as a binary payload (engine.io-client 3 with XHR2).
    let text = br#"451-["message",{"_placeholder":true,"num":0}]"#;
    let mut body = vec![0u8];
    body.extend(text.len().to_string().bytes().map(|d| d - b'0'));
    body.push(0xff);
    body.extend_from_slice(text);
    body.extend_from_slice(&[1, 4, 0xff, 4, 1, 2, 3]);
    let (status, _, _) = http(addr, "POST", &c.path(), "application/octet-stream", &body).await;
    assert_eq!(status, 200);
    let back = br#"451-["message-back",{"_placeholder":true,"num":0}]"#;
    let mut expected = vec![0u8];
    expected.extend(back.len().to_string().bytes().map(|d| d - b'0'));
    expected.push(0xff);
    expected.extend_from_slice(back);
    expected.extend_from_slice(&[1, 4, 0xff, 4, 1, 2, 3]);
    assert_eq!(c.expect(&expected).await, "application/octet-stream");
    // The same as base64 text (`b4`), as a client without binary support posts it.
    c.post(r#"45:451-["message",{"_placeholder":true,"num":0}]10:b4AQIDBA=="#)
        .await;
    let mut expected = vec![0u8];
    expected.extend(back.len().to_string().bytes().map(|d| d - b'0'));
    expected.push(0xff);
    expected.extend_from_slice(back);
    expected.extend_from_slice(&[1, 5, 0xff, 4, 1, 2, 3, 4]);
    c.expect(&expected).await;
}
