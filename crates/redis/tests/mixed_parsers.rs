//! Servers whose clients speak different parsers share one cluster: a Volley server with
//! `Parser::MsgPack` and one with the default JSON parser, on one Redis. What crosses Redis
//! is the decoded data (as Node's adapter sends it), so broadcasts and broadcast acks reach
//! each server's clients in their own format. Needs `redis-server` (started on a free port).

mod common;

use std::net::SocketAddr;

use common::{Redis, WAIT, free_port};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;
use volley::{Parser, SocketIo};
use volley_core::{EncodedFrame, RawArgs};
use volley_proto::socket::{DecodeLimits, Packet, PacketData};
use volley_redis::{RedisAdapterConfig, RedisCluster};

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next data frame, answering pings.
async fn next(ws: &mut Client) -> Ws {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame within WAIT")
            .expect("open")
            .expect("no error");
        match msg {
            Ws::Text(t) if t.as_str() == "2" => ws.send(Ws::text("3")).await.unwrap(),
            Ws::Text(_) | Ws::Binary(_) => return msg,
            _ => {}
        }
    }
}

fn binary(f: EncodedFrame) -> Ws {
    match f {
        EncodedFrame::Binary(b) => Ws::binary(b),
        EncodedFrame::Text(t) => Ws::text(String::from_utf8(t[1..].to_vec()).unwrap()),
    }
}

async fn msgpack_packet(ws: &mut Client) -> Packet {
    match next(ws).await {
        Ws::Binary(b) => Parser::MsgPack
            .decoder(DecodeLimits::default())
            .binary(b)
            .expect("a msgpack packet")
            .expect("whole"),
        other => panic!("expected a msgpack frame, got {other:?}"),
    }
}

async fn serve(cluster: &RedisCluster, parser: Parser) -> (SocketIo, SocketAddr) {
    let io = SocketIo::builder()
        .parser(parser)
        .adapter(cluster.factory())
        .build();
    io.of("/").on_connection(|_: volley::Socket| async {});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(volley::serve(listener, io.service()));
    (io, addr)
}

async fn ws(addr: SocketAddr) -> Client {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(matches!(next(&mut ws).await, Ws::Text(t) if t.starts_with("0{")));
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_and_json_servers_share_one_cluster() {
    let port = free_port();
    let _redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let config = || RedisAdapterConfig {
        command_timeout: WAIT,
        ..Default::default()
    };
    let a = RedisCluster::connect(&url, config())
        .await
        .expect("connects");
    let b = RedisCluster::connect(&url, config())
        .await
        .expect("connects");
    let (io_a, addr_a) = serve(&a, Parser::MsgPack).await;
    let (io_b, addr_b) = serve(&b, Parser::Json).await;
    a.ready(WAIT).await.unwrap();
    b.ready(WAIT).await.unwrap();
    assert_eq!(io_a.server_count().await.unwrap(), 2);
    assert_eq!(io_b.server_count().await.unwrap(), 2);

    // A msgpack client on A, a JSON client on B.
    let mut mp = ws(addr_a).await;
    mp.send(binary(Parser::MsgPack.connect("/", None).first_frame()))
        .await
        .unwrap();
    assert!(matches!(
        msgpack_packet(&mut mp).await.data,
        PacketData::Json(_)
    ));
    let mut js = ws(addr_b).await;
    js.send(Ws::text("40")).await.unwrap();
    assert!(matches!(next(&mut js).await, Ws::Text(t) if t.starts_with("40{")));

    // From the msgpack server: its own client gets msgpack, the JSON server's client JSON
    // with the binary as an attachment.
    let args = (1, 1.5, "é", Bytes::from_static(&[1, 2]));
    io_a.emit_args("from-a", args.clone()).unwrap();
    let p = msgpack_packet(&mut mp).await;
    let PacketData::Event { name, args: got } = p.data else {
        panic!("{p:?}")
    };
    assert_eq!(name, "from-a");
    let got: (u8, f64, String, Bytes) = RawArgs::with_parser(Parser::MsgPack, got, vec![])
        .parse()
        .unwrap();
    assert_eq!(got, (1, 1.5, "é".into(), Bytes::from_static(&[1, 2])));
    let text = next(&mut js).await;
    assert_eq!(
        text,
        Ws::text(r#"451-["from-a",1,1.5,"é",{"_placeholder":true,"num":0}]"#)
    );
    assert_eq!(next(&mut js).await, Ws::binary(vec![1u8, 2]));

    // From the JSON server: the msgpack server's client gets msgpack, integers and floats
    // apart, binary inline.
    io_b.emit_args("from-b", (2, 2.5, Bytes::from_static(&[3])))
        .unwrap();
    let p = msgpack_packet(&mut mp).await;
    let PacketData::Event { name, args: got } = p.data else {
        panic!("{p:?}")
    };
    assert_eq!(name, "from-b");
    let raw = RawArgs::with_parser(Parser::MsgPack, got, vec![]);
    assert!(raw.get::<serde_json::Value>(0).unwrap().unwrap().is_u64());
    assert!(raw.get::<serde_json::Value>(1).unwrap().unwrap().is_f64());
    assert_eq!(
        raw.parse::<(u8, f64, Bytes)>().unwrap(),
        (2, 2.5, Bytes::from_static(&[3]))
    );
    assert!(matches!(next(&mut js).await, Ws::Text(t) if t.starts_with("451-[\"from-b\"")));
    assert_eq!(next(&mut js).await, Ws::binary(vec![3u8]));

    // A broadcast with acks from the JSON server: the msgpack client answers in msgpack.
    let mut acks = io_b.timeout(WAIT).emit_with_ack::<String, _>("ask", "q");
    let ask = match next(&mut js).await {
        Ws::Text(t) => t.to_string(),
        other => panic!("{other:?}"),
    };
    let id: String = ask[2..].chars().take_while(char::is_ascii_digit).collect();
    js.send(Ws::text(format!(r#"43{id}["from json"]"#)))
        .await
        .unwrap();
    let p = msgpack_packet(&mut mp).await;
    let remote_id = p.id.expect("an ack id");
    let reply = Parser::MsgPack
        .ack("/", remote_id, &volley::One(&"from msgpack"))
        .unwrap();
    mp.send(binary(reply.first_frame())).await.unwrap();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let answer = tokio::time::timeout(WAIT, acks.next())
            .await
            .expect("an answer")
            .expect("the stream is not over");
        answers.push(answer.result.expect("a string"));
    }
    answers.sort();
    assert_eq!(answers, ["from json", "from msgpack"]);

    // serverSideEmit with acks, both ways: arguments arrive as values whatever the format of
    // the sender, and the answers come back. (No binary: Node's adapter sends these requests
    // as JSON, where a Buffer becomes {"type":"Buffer","data":[...]}.)
    for io in [&io_a, &io_b] {
        io.of("/").on_server_event("sse", |args, ack| async move {
            let (n, f, s): (u8, f64, String) = args.parse().expect("typed arguments");
            if let Some(ack) = ack {
                // One value per server, as Node's adapter answers.
                ack.send(&(n + 1, f * 2.0, s + "!")).expect("answer");
            }
        });
    }
    for (from, to) in [(&io_a, "json"), (&io_b, "msgpack")] {
        let mut answers = from
            .of("/")
            .server_side_emit_with_ack::<(u8, f64, String)>("sse", (1, 1.25, "é"), WAIT)
            .await
            .expect("sent");
        let answer = tokio::time::timeout(WAIT, answers.next())
            .await
            .expect("an answer")
            .expect("the stream is not over");
        assert_eq!(
            answer.result.expect("typed answer"),
            (2, 2.5, "é!".to_owned()),
            "answer from the {to} server"
        );
    }
    a.close();
    b.close();
}
