//! Connection state recovery on one server, over the wire with a raw Socket.IO client: the
//! CONNECT reply's `pid`, offsets appended to events, restoring a socket (id, rooms, data,
//! missed packets in order, before anything new), recoverable and unrecoverable disconnect
//! reasons, the window (paused time), the packet cap, and forged / malformed / reused /
//! expired session ids.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use volley::adapter::ConnectionStateRecovery;
use volley::{AckSender, ConnectError, Data, DisconnectReason, Socket, SocketIo};
use volley_proto::socket::{PacketData, PacketType};

/// What the server saw: (socket id, recovered) on connection; the reason on disconnect.
struct Signals {
    connected: mpsc::UnboundedReceiver<(String, bool)>,
    disconnected: mpsc::UnboundedReceiver<(String, DisconnectReason)>,
    middleware_runs: Arc<Mutex<usize>>,
}

fn server_with(cfg: Option<ConnectionStateRecovery>) -> (SocketIo, Signals) {
    let mut b = SocketIo::builder();
    if let Some(cfg) = cfg {
        b = b.connection_state_recovery(cfg);
    }
    let io = b.build();
    let (ctx, connected) = mpsc::unbounded_channel();
    let (dtx, disconnected) = mpsc::unbounded_channel();
    let middleware_runs = Arc::new(Mutex::new(0));
    let runs = middleware_runs.clone();
    let ns = io.of("/");
    ns.middleware(move |_s: Socket| {
        let runs = runs.clone();
        async move {
            *runs.lock().unwrap() += 1;
            Ok::<(), ConnectError>(())
        }
    });
    let io2 = io.clone();
    ns.on_connection(move |s: Socket| {
        let (ctx, dtx, io) = (ctx.clone(), dtx.clone(), io2.clone());
        async move {
            if !s.recovered() {
                let _ = s.emit("welcome", &s.id().as_str());
            }
            s.on(
                "join",
                |s: Socket, Data(room): Data<String>, ack: AckSender| async move {
                    s.join(room);
                    let _ = ack.send(&());
                },
            );
            s.on(
                "set-data",
                |s: Socket, Data(v): Data<Value>, ack: AckSender| async move {
                    let _ = s.set_data(&v);
                    let _ = ack.send(&());
                },
            );
            s.on("state", |s: Socket, ack: AckSender| async move {
                let mut rooms: Vec<String> = s.rooms().iter().map(|r| r.to_string()).collect();
                rooms.sort();
                let _ = ack.send(&json!({
                    "id": s.id().as_str(), "recovered": s.recovered(), "rooms": rooms,
                    "data": s.data_value(),
                }));
            });
            let io_all = io.clone();
            s.on(
                "emit-all",
                move |_s: Socket, Data(v): Data<Value>, ack: AckSender| {
                    let io = io_all.clone();
                    async move {
                        let _ = io.emit("all", &v);
                        let _ = ack.send(&());
                    }
                },
            );
            let io_room = io.clone();
            s.on(
                "emit-room",
                move |_s: Socket, Data((room, v)): Data<(String, Value)>, ack: AckSender| {
                    let io = io_room.clone();
                    async move {
                        let _ = io.to(room).emit("room", &v);
                        let _ = ack.send(&());
                    }
                },
            );
            let io_vol = io.clone();
            s.on("emit-volatile", move |_s: Socket, ack: AckSender| {
                let io = io_vol.clone();
                async move {
                    let _ = io.volatile().emit("volatile", &1);
                    let _ = ack.send(&());
                }
            });
            s.on("bye", |s: Socket| async move { s.disconnect() });
            let id = s.id().to_string();
            s.on_disconnect(move |_s, reason| async move {
                let _ = dtx.send((id, reason));
            });
            let _ = ctx.send((s.id().to_string(), s.recovered()));
        }
    });
    (
        io,
        Signals {
            connected,
            disconnected,
            middleware_runs,
        },
    )
}

/// Joins `/` with `auth`; returns the events that came before the CONNECT reply, in order,
/// and the reply's payload.
async fn connect(c: &mut Client, auth: Option<Value>) -> (Vec<Event>, Value) {
    match auth {
        Some(a) => c.send_raw(&format!("0{a}")),
        None => c.send_raw("0"),
    }
    let mut before = Vec::new();
    loop {
        let p = c.next_packet("/").await;
        match (p.kind, &p.data) {
            (PacketType::Connect, PacketData::Json(j)) => {
                return (before, serde_json::from_slice(j).expect("JSON"));
            }
            _ => before.push(as_event(&p).unwrap_or_else(|| panic!("{}", describe(&p)))),
        }
    }
}

fn offset(e: &Event) -> String {
    e.args
        .last()
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no offset in {e:?}"))
        .to_owned()
}

/// A connected client with recovery on: its id, pid and the offset of its welcome event.
struct Session {
    client: Client,
    id: String,
    pid: String,
    offset: String,
}

async fn fresh(srv: &TestServer, sig: &mut Signals) -> Session {
    let mut client = srv.client().await;
    let (before, reply) = connect(&mut client, None).await;
    assert!(before.is_empty());
    let id = reply["sid"].as_str().expect("sid").to_owned();
    let pid = reply["pid"].as_str().expect("pid").to_owned();
    let welcome = client.expect_next_event("/", "welcome").await;
    assert_eq!(welcome.args[0], json!(id));
    let offset = offset(&welcome);
    assert_eq!(recv(&mut sig.connected).await, (id.clone(), false));
    Session {
        client,
        id,
        pid,
        offset,
    }
}

/// Cuts the transport and waits until the server saw the socket go.
async fn cut(s: Session, sig: &mut Signals) -> (String, String, String) {
    let Session {
        client,
        id,
        pid,
        offset,
    } = s;
    client.drop_tcp();
    let (gone, reason) = recv(&mut sig.disconnected).await;
    assert_eq!(gone, id);
    assert_eq!(reason, DisconnectReason::TransportClose);
    (id, pid, offset)
}

async fn rejoin(srv: &TestServer, pid: &str, offset: &str) -> (Client, Vec<Event>, Value) {
    let mut c = srv.client().await;
    let (before, reply) = connect(&mut c, Some(json!({ "pid": pid, "offset": offset }))).await;
    (c, before, reply)
}

fn sorted(rooms: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = rooms.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn recovery() -> Option<ConnectionStateRecovery> {
    Some(ConnectionStateRecovery::default())
}

#[tokio::test]
async fn connect_reply_has_pid_and_events_carry_offsets() {
    let (io, mut sig) = server_with(recovery());
    let srv = start(io).await;
    let mut s = fresh(&srv, &mut sig).await;
    // The pid: a secret of 144 bits, base64url, never the id.
    assert_eq!(s.pid.len(), 24);
    assert!(
        s.pid
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
    assert_ne!(s.pid, s.id);
    // A broadcast: offset appended; offsets grow with each packet.
    s.client
        .emit_with_ack("/", "emit-all", json!([{"n": 1}]))
        .await;
    let all = s.client.next_event("/", "all").await;
    assert_eq!(all.args.len(), 2);
    assert_eq!(all.args[0], json!({"n": 1}));
    assert_ne!(offset(&all), s.offset);
    // Volatile broadcasts are not kept and carry no offset.
    s.client
        .emit_with_ack("/", "emit-volatile", json!([]))
        .await;
    let v = s.client.next_event("/", "volatile").await;
    assert_eq!(v.args, [json!(1)]);
}

#[tokio::test]
async fn without_recovery_no_pid_and_no_offsets() {
    let (io, mut sig) = server_with(None);
    let srv = start(io).await;
    let mut c = srv.client().await;
    let (_, reply) = connect(&mut c, None).await;
    assert_eq!(reply.as_object().map(|o| o.len()), Some(1), "{reply}");
    let id = reply["sid"].as_str().unwrap().to_owned();
    assert_eq!(c.expect_next_event("/", "welcome").await.args, [json!(id)]);
    recv(&mut sig.connected).await;
    // A pid presented to a server without recovery is ignored.
    let mut c2 = srv.client().await;
    let (_, reply) = connect(&mut c2, Some(json!({"pid": "x", "offset": "1"}))).await;
    assert_ne!(reply["sid"], json!(id));
}

#[tokio::test]
async fn a_cut_transport_recovers_id_rooms_data_and_missed_packets_in_order() {
    let (io, mut sig) = server_with(recovery());
    let srv = start(io).await;
    let mut s = fresh(&srv, &mut sig).await;
    s.client.emit_with_ack("/", "join", json!(["r"])).await;
    s.client
        .emit_with_ack("/", "set-data", json!([{"name": "ann"}]))
        .await;
    let mut other = fresh(&srv, &mut sig).await;
    let (id, pid, off) = cut(s, &mut sig).await;

    // Meanwhile: to everybody, to its room, to another room, to everybody but its room.
    for (ev, args) in [
        ("emit-all", json!([1])),
        ("emit-room", json!(["r", 2])),
        ("emit-room", json!(["elsewhere", "no"])),
        ("emit-all", json!([3])),
    ] {
        other.client.emit_with_ack("/", ev, args).await;
    }

    let (mut c, before, reply) = rejoin(&srv, &pid, &off).await;
    assert_eq!(reply["sid"], json!(id), "same id");
    assert_eq!(reply["pid"], json!(pid), "same pid");
    let got: Vec<(String, Value)> = before
        .iter()
        .map(|e| (e.name.clone(), e.args[0].clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("all".to_owned(), json!(1)),
            ("room".to_owned(), json!(2)),
            ("all".to_owned(), json!(3))
        ],
        "missed packets, in order, before the CONNECT reply"
    );
    // Every replayed packet keeps its offset, in increasing order of emission.
    let offsets: Vec<String> = before.iter().map(offset).collect();
    assert_eq!(offsets.len(), 3);
    assert_eq!(recv(&mut sig.connected).await, (id.clone(), true));
    let state = c.emit_with_ack("/", "state", json!([])).await;
    assert_eq!(
        state[0],
        json!({"id": id, "recovered": true, "rooms": sorted(&[&id, "r"]), "data": {"name": "ann"}})
    );
    // No second welcome; what comes next is new.
    other
        .client
        .emit_with_ack("/", "emit-all", json!([4]))
        .await;
    let next = c.expect_next_event("/", "all").await;
    assert_eq!(next.args[0], json!(4));
    // Middlewares were skipped on recovery (two fresh connections ran them).
    assert_eq!(*sig.middleware_runs.lock().unwrap(), 2);

    // A pid restores once: presenting it again gets a fresh session.
    let (_c2, before, reply) = rejoin(&srv, &pid, &off).await;
    assert!(before.is_empty());
    assert_ne!(reply["sid"], json!(id));
    assert_ne!(reply["pid"], json!(pid));
}

#[tokio::test]
async fn packets_to_the_socket_room_are_kept_too() {
    let (io, mut sig) = server_with(recovery());
    let srv = start(io.clone()).await;
    let s = fresh(&srv, &mut sig).await;
    let (id, pid, off) = cut(s, &mut sig).await;
    // Emitted to the socket's own room while it is away (the way a socket's own emits go
    // when recovery is on, as in Node; the welcome event's offset shows they get one).
    io.of("/").to(id.as_str()).emit("private", &"p1").unwrap();
    let (_c, before, reply) = rejoin(&srv, &pid, &off).await;
    assert_eq!(reply["sid"], json!(id));
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].name, "private");
    assert_eq!(before[0].args[0], json!("p1"));
}

#[tokio::test]
async fn manual_disconnects_are_not_recoverable() {
    let (io, mut sig) = server_with(recovery());
    let srv = start(io).await;

    // The client leaves the namespace.
    let s = fresh(&srv, &mut sig).await;
    s.client.leave_ns("/");
    let (gone, reason) = recv(&mut sig.disconnected).await;
    assert_eq!(
        (gone.as_str(), reason),
        (s.id.as_str(), DisconnectReason::ClientNamespaceDisconnect)
    );
    let (_c, _, reply) = rejoin(&srv, &s.pid, &s.offset).await;
    assert_ne!(reply["sid"], json!(s.id));
    assert!(!recv(&mut sig.connected).await.1);

    // The server disconnects the socket.
    let mut s = fresh(&srv, &mut sig).await;
    s.client.emit("/", "bye", json!([]));
    s.client.expect_disconnect("/").await;
    let (_, reason) = recv(&mut sig.disconnected).await;
    assert_eq!(reason, DisconnectReason::ServerNamespaceDisconnect);
    let (_c, _, reply) = rejoin(&srv, &s.pid, &s.offset).await;
    assert_ne!(reply["sid"], json!(s.id));
    assert!(!recv(&mut sig.connected).await.1);
}

#[tokio::test]
async fn forged_malformed_and_foreign_session_ids_get_a_fresh_session() {
    let (io, mut sig) = server_with(recovery());
    let srv = start(io).await;
    let s = fresh(&srv, &mut sig).await;
    let (id, pid, off) = cut(s, &mut sig).await;
    // One character changed (to one that differs from the real one: the pid is random, so a
    // fixed replacement would equal it now and then).
    let last = if pid.ends_with('A') { "B" } else { "A" };
    let forged_pid = format!("{}{last}", &pid[..pid.len() - 1]);
    let attempts = [
        json!({"pid": forged_pid, "offset": off}),
        json!({"pid": id, "offset": off}), // the public id is not the pid
        json!({"pid": pid, "offset": 12}), // offset not a string
        json!({"pid": [pid], "offset": off}),
        json!({"pid": null, "offset": off}),
        json!({"pid": "", "offset": ""}),
        json!({"pid": "\u{0}\u{ffff}", "offset": "💥"}),
        json!({"pid": "x".repeat(100_000), "offset": "y".repeat(100_000)}),
    ];
    for auth in attempts {
        let mut c = srv.client().await;
        let (before, reply) = connect(&mut c, Some(auth.clone())).await;
        assert!(before.is_empty(), "{auth}");
        assert_ne!(reply["sid"], json!(id), "{auth}");
        assert_ne!(reply["pid"], json!(pid), "{auth}");
        assert!(!recv(&mut sig.connected).await.1, "{auth}");
    }
    // A CONNECT payload that is not an object does not decode: the connection is closed
    // (Node too), nobody gets the session.
    for auth in [json!("not an object"), json!([1, 2]), json!(pid)] {
        let mut c = srv.client().await;
        c.send_raw(&format!("0{auth}"));
        c.expect_closed().await;
    }
    // The real owner still gets it back (failed attempts with the right pid but a
    // non-string offset never reached the store).
    let (_c, _, reply) = rejoin(&srv, &pid, &off).await;
    assert_eq!(reply["sid"], json!(id));
}

#[tokio::test]
async fn unknown_offsets_get_a_fresh_session() {
    let (io, mut sig) = server_with(recovery());
    let srv = start(io).await;
    let mut keep = Vec::new();
    for bad in ["", "zzzzzzzzzzzz", "not-an-offset!", "_________", "0"] {
        let s = fresh(&srv, &mut sig).await;
        let (id, pid, _) = cut(s, &mut sig).await;
        let (c, before, reply) = rejoin(&srv, &pid, bad).await;
        keep.push(c);
        assert!(before.is_empty());
        assert_ne!(reply["sid"], json!(id), "offset {bad:?}");
        assert!(!recv(&mut sig.connected).await.1);
    }
}

#[tokio::test]
async fn past_the_packet_cap_the_session_is_not_recoverable() {
    let cfg = ConnectionStateRecovery::default().max_buffered_packets(3);
    let (io, mut sig) = server_with(Some(cfg));
    let srv = start(io).await;
    let s = fresh(&srv, &mut sig).await;
    let mut other = fresh(&srv, &mut sig).await;
    let (id, pid, off) = cut(s, &mut sig).await;
    for i in 0..4 {
        other
            .client
            .emit_with_ack("/", "emit-all", json!([i]))
            .await;
    }
    let (_c, before, reply) = rejoin(&srv, &pid, &off).await;
    assert!(before.is_empty());
    assert_ne!(reply["sid"], json!(id));
    assert!(!recv(&mut sig.connected).await.1);
}

#[tokio::test]
async fn the_window_expires() {
    let window = Duration::from_secs(2);
    let cfg = ConnectionStateRecovery::default().max_disconnection_duration(window);
    let (io, mut sig) = server_with(Some(cfg));
    let srv = start(io).await;

    // Back just within the window: recovered.
    let s = fresh(&srv, &mut sig).await;
    let (id, pid, off) = cut(s, &mut sig).await;
    tokio::time::pause();
    tokio::time::advance(window - Duration::from_millis(100)).await;
    tokio::time::resume();
    let (c, _, reply) = rejoin(&srv, &pid, &off).await;
    assert_eq!(reply["sid"], json!(id));
    assert_eq!(recv(&mut sig.connected).await, (id, true));
    drop(c);
    recv(&mut sig.disconnected).await;

    // Back just after: a fresh session.
    let s = fresh(&srv, &mut sig).await;
    let (id, pid, off) = cut(s, &mut sig).await;
    tokio::time::pause();
    tokio::time::advance(window + Duration::from_millis(1)).await;
    tokio::time::resume();
    let (_c, before, reply) = rejoin(&srv, &pid, &off).await;
    assert!(before.is_empty());
    assert_ne!(reply["sid"], json!(id));
    assert!(!recv(&mut sig.connected).await.1);
}

#[tokio::test]
async fn middlewares_run_on_recovery_when_not_skipped() {
    let cfg = ConnectionStateRecovery::default().skip_middlewares(false);
    let (io, mut sig) = server_with(Some(cfg));
    let srv = start(io).await;
    let s = fresh(&srv, &mut sig).await;
    let (id, pid, off) = cut(s, &mut sig).await;
    let (_c, _, reply) = rejoin(&srv, &pid, &off).await;
    assert_eq!(reply["sid"], json!(id));
    assert_eq!(*sig.middleware_runs.lock().unwrap(), 2);
}

/// Broadcasts go on, from another thread, all the time the client is away and while it is
/// being restored: it still gets every packet exactly once and in order (the adapter
/// numbers and delivers under one lock, and holds the restored socket's packets until its
/// replay is out). Twenty cuts and restores in a row. The ticker emits 400 ticks per round
/// (permits): 8,000 in all, under the 10,000-packet cap however slow the machine is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_broadcasts_during_a_restore_arrive_exactly_once_in_order() {
    let (io, mut sig) = server_with(recovery());
    let srv = start(io.clone()).await;
    let s = fresh(&srv, &mut sig).await;
    let permits = Arc::new(tokio::sync::Semaphore::new(0));
    let ticker = {
        let (io, permits) = (io.clone(), permits.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            // Ends when the semaphore is closed.
            while let Ok(p) = permits.acquire().await {
                p.forget();
                io.emit("tick", &n).unwrap();
                n += 1;
                if n % 4 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let (mut client, id, pid) = (s.client, s.id, s.pid);
    let mut last_n = None;
    for round in 0..20 {
        // 30 ticks are read now; the others go out around the cut and the restore.
        permits.add_permits(400);
        // Read ticks up to some point; remember the last one read, then cut.
        let mut seen: Vec<u64> = Vec::new();
        let mut last_off = None;
        for _ in 0..30 {
            let e = client.next_event("/", "tick").await;
            seen.push(e.args[0].as_u64().unwrap());
            last_off = Some(offset(&e));
        }
        if let Some(prev) = last_n {
            let expected: Vec<u64> = (prev + 1..=*seen.last().unwrap()).collect();
            assert_eq!(seen, expected, "round {round}: every tick once, in order");
        } else {
            let first = seen[0];
            assert_eq!(seen, (first..first + 30).collect::<Vec<_>>());
        }
        last_n = seen.last().copied();
        client.drop_tcp();
        let (gone, _) = recv(&mut sig.disconnected).await;
        assert_eq!(gone, id);
        let (c, before, reply) = rejoin(&srv, &pid, &last_off.unwrap()).await;
        assert_eq!(reply["sid"], json!(id), "round {round}");
        assert_eq!(recv(&mut sig.connected).await, (id.clone(), true));
        let replayed: Vec<u64> = before.iter().map(|e| e.args[0].as_u64().unwrap()).collect();
        let prev = last_n.unwrap();
        assert_eq!(
            replayed,
            (prev + 1..prev + 1 + replayed.len() as u64).collect::<Vec<_>>(),
            "round {round}: the replay continues where the client was"
        );
        if let Some(&l) = replayed.last() {
            last_n = Some(l);
        }
        client = c;
    }
    permits.close();
    ticker.await.unwrap();
}
