//! The observer seam (`volley::observe`): one observer sees every namespace, dynamic ones
//! included, in the order things happen.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use volley::adapter::RoomEvent;
use volley::{AckSender, Data, DisconnectReason, Observer, Socket, SocketIo};

#[derive(Default)]
struct Log(Mutex<Vec<String>>, tokio::sync::Notify);

impl Log {
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
        self.1.notify_one();
    }
}

impl Observer for Log {
    fn socket_connected(&self, s: &Socket) {
        self.push(format!("connected {}", s.namespace()));
    }
    fn socket_disconnected(&self, s: &Socket, reason: DisconnectReason) {
        self.push(format!(
            "disconnected {} {}",
            s.namespace(),
            reason.as_str()
        ));
    }
    fn room_event(&self, ns: &str, e: &RoomEvent) {
        match e {
            RoomEvent::Join(r, id) if **r == **id => self.push(format!("join {ns} <own>")),
            RoomEvent::Join(r, _) => self.push(format!("join {ns} {r}")),
            RoomEvent::Leave(r, id) if **r == **id => self.push(format!("leave {ns} <own>")),
            RoomEvent::Leave(r, _) => self.push(format!("leave {ns} {r}")),
            RoomEvent::Create(_) | RoomEvent::Delete(_) => {}
        }
    }
    fn data_changed(&self, s: &Socket) {
        self.push(format!("data {} {}", s.namespace(), s.data_value()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_observer_sees_every_namespace() {
    let io = SocketIo::builder().build();
    let log = Arc::new(Log::default());
    io.observe(log.clone());
    io.of_pattern("/room-*")
        .on_connection(|socket: Socket| async move {
            socket.on(
                "enter",
                |s: Socket, Data(room): Data<String>, ack: AckSender| async move {
                    s.join(room);
                    s.set_data(&"ada").unwrap();
                    let _ = ack.send(&());
                },
            );
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(volley::serve(listener, io.service()));

    let manager = volley_client::Manager::builder(&url).build().unwrap();
    // A socket in "/" keeps the connection open when the other leaves (so that it leaves
    // with its DISCONNECT, not with the connection).
    let _main = manager.socket("/").connect().await.unwrap();
    let client = manager.socket("/room-7").connect().await.unwrap();
    let _: () = client.emit_with_ack("enter", "kitchen").await.unwrap();
    // The handles are those of the namespaces that exist: the dynamic child too, now.
    let names = || {
        let mut n: Vec<String> = io
            .namespace_handles()
            .iter()
            .map(|n| n.name().to_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(), ["/", "/room-7"]);
    client.disconnect();
    let want = [
        "join /room-7 <own>",
        "connected /room-7",
        "join /room-7 kitchen",
        "data /room-7 \"ada\"",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen: Vec<String> = log
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.contains("/room-7"))
            .cloned()
            .collect();
        if seen.len() >= want.len() + 3 {
            assert_eq!(seen[..4], want);
            let mut leaves = seen[4..6].to_vec();
            leaves.sort();
            assert_eq!(leaves, ["leave /room-7 <own>", "leave /room-7 kitchen"]);
            assert_eq!(seen[6], "disconnected /room-7 client namespace disconnect");
            break;
        }
        tokio::time::timeout_at(deadline, log.1.notified())
            .await
            .unwrap_or_else(|_| panic!("not everything came: {seen:?}"));
    }
    // Empty, the child was dropped: no handle brings it back.
    assert_eq!(names(), ["/"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ids_group_a_connections_sockets() {
    let io = SocketIo::builder().build();
    io.of("/other");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(volley::serve(listener, io.service()));
    let a = volley_client::Manager::builder(&url).build().unwrap();
    let (a1, a2) = (
        a.socket("/").connect().await.unwrap(),
        a.socket("/other").connect().await.unwrap(),
    );
    let b = volley_client::Manager::builder(&url).build().unwrap();
    let b1 = b.socket("/").connect().await.unwrap();
    let id = |ns: &str, c: &volley_client::Socket| {
        io.of(ns).get_socket(&c.id().unwrap()).unwrap().client_id()
    };
    assert_eq!(id("/", &a1), id("/other", &a2));
    assert_ne!(id("/", &a1), id("/", &b1));
    let sid = a.engine_id().unwrap();
    assert!(
        !id("/", &a1).contains(&sid[..8]),
        "nothing of the session id"
    );
}
