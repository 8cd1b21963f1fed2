//! The admin namespace's protocol, as `@socket.io/admin-ui` 0.5.1 speaks it, seen from a
//! plain Socket.IO client (volley-client) in the UI's place: what development mode sends
//! (config, all_sockets, server_stats, live events), the actions, and what production mode
//! leaves out.

mod support;

use serde_json::{Value, json};
use support::{WAIT, names, start, ui, user};
use volley_admin::{AdminOptions, Auth, Mode};

const ALL_FEATURES: [&str; 9] = [
    "EMIT",
    "JOIN",
    "LEAVE",
    "DISCONNECT",
    "MJOIN",
    "MLEAVE",
    "MDISCONNECT",
    "AGGREGATED_EVENTS",
    "ALL_EVENTS",
];

fn find<'a>(sockets: &'a Value, id: &str) -> &'a Value {
    sockets
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("socket {id} not in {sockets}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_mode_sends_config_sockets_and_stats() {
    let (_io, url) = start(AdminOptions::new(Auth::None).server_id("volley-1")).await;
    let (_m, alice) = user(&url).await;
    let _: () = alice.emit_with_ack("join", "lobby").await.expect("joined");
    let mut ui = ui(&url, json!({})).await.expect("no auth: any UI connects");

    let config = ui.next("config").await;
    assert_eq!(config, vec![json!({ "supportedFeatures": ALL_FEATURES })]);

    let all = ui.next("all_sockets").await;
    let alice_id = alice.id().expect("connected").to_string();
    let s = find(&all[0], &alice_id);
    assert_eq!(s["nsp"], "/");
    assert_eq!(s["transport"], "websocket");
    assert_eq!(s["data"], json!({}), "the _admin key is not shown");
    let mut rooms: Vec<&str> = s["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    rooms.sort();
    let mut expected = vec![alice_id.as_str(), "lobby"];
    expected.sort();
    assert_eq!(rooms, expected);
    assert!(s["clientId"].as_str().is_some_and(|c| c.len() == 16), "{s}");
    let hs = &s["handshake"];
    for key in [
        "address", "headers", "query", "issued", "secure", "time", "url", "xdomain",
    ] {
        assert!(hs.get(key).is_some(), "handshake.{key} missing in {hs}");
    }
    assert!(hs.get("auth").is_none(), "auth stays out: {hs}");
    // The UI's own socket is listed too, in the admin namespace.
    let admin_id = ui.socket.id().expect("connected").to_string();
    assert_eq!(find(&all[0], &admin_id)["nsp"], "/admin");

    // A report is a snapshot taken when it is made: one made before the UI's own socket joined
    // can still arrive after it did (the first comes at once). Wait for one that counts both.
    let stats = ui
        .next_where("server_stats", |a| {
            let admin = json!({ "name": "/admin", "socketsCount": 1 });
            a[0]["clientsCount"] == 2
                && a[0]["namespaces"]
                    .as_array()
                    .is_some_and(|n| n.contains(&admin))
        })
        .await;
    let stats = &stats[0];
    let keys: Vec<&str> = stats
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "serverId",
            "hostname",
            "pid",
            "uptime",
            "clientsCount",
            "pollingClientsCount",
            "aggregatedEvents",
            "namespaces",
            "memoryUsage"
        ]
    );
    assert_eq!(stats["serverId"], "volley-1");
    assert_eq!(stats["pid"], std::process::id());
    assert_eq!(stats["clientsCount"], 2, "alice and the UI: {stats}");
    assert_eq!(
        stats["pollingClientsCount"], 0,
        "both on WebSocket: {stats}"
    );
    let namespaces = stats["namespaces"].as_array().unwrap();
    assert!(
        namespaces.contains(&json!({ "name": "/", "socketsCount": 1 })),
        "{stats}"
    );
    assert!(
        namespaces.contains(&json!({ "name": "/admin", "socketsCount": 1 })),
        "{stats}"
    );
}

/// The sum of `type`'s counts in one `server_stats`.
fn count(stats: &Value, kind: &str) -> u64 {
    stats["aggregatedEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .map(|e| e["count"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_events_count_connections_packets_and_bytes() {
    let (_io, url) = start(AdminOptions::new(Auth::None).mode(Mode::Production)).await;
    let mut ui = ui(&url, json!({})).await.expect("connects");
    // A tick reads the counters, then emits to the sockets in `/admin` at that moment: the
    // first stats the UI gets may have been read just before its own connection, which then
    // comes in the next one. After two, the UI's connection has been reported.
    let _ = ui.next("server_stats").await;
    let _ = ui.next("server_stats").await;
    // Counted from here: one connection, its CONNECT and 3 events with ack each way.
    let (m, bob) = user(&url).await;
    for i in 0..3 {
        let _: Value = bob.emit_with_ack("echo", &i).await.expect("echoed");
    }
    m.close();
    let (mut conns, mut closes, mut packets_in, mut bytes_in, mut packets_out) = (0, 0, 0, 0, 0);
    while conns < 1 || closes < 1 || packets_in < 4 || packets_out < 7 {
        let stats = ui.next("server_stats").await;
        let stats = &stats[0];
        for e in stats["aggregatedEvents"].as_array().unwrap() {
            assert!(
                e["timestamp"].as_u64().is_some_and(|t| t % 1000 == 0),
                "{e}"
            );
            assert_eq!(
                e.as_object().unwrap().len(),
                3,
                "timestamp, type, count: {e}"
            );
        }
        conns += count(stats, "rawConnection");
        closes += count(stats, "rawDisconnection");
        packets_in += count(stats, "packetsIn");
        bytes_in += count(stats, "bytesIn");
        packets_out += count(stats, "packetsOut");
    }
    assert_eq!(conns, 1);
    assert!(bytes_in >= packets_in, "every packet has bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_follow_a_socket() {
    let (_io, url) = start(AdminOptions::new(Auth::None)).await;
    let mut ui = ui(&url, json!({})).await.expect("connects");
    let _ = ui.next("all_sockets").await;

    let (m, carol) = user(&url).await;
    let id = carol.id().expect("connected").to_string();
    let _: Value = carol.emit_with_ack("echo", "hi").await.expect("echoed");
    let _: () = carol.emit_with_ack("join", "garden").await.expect("joined");
    m.close();
    let events = ui
        .collect_until("socket_disconnected", |a| a[1] == id.as_str())
        .await;
    let mine: Vec<&(String, Vec<Value>)> = events
        .iter()
        .filter(|(_, a)| a.iter().any(|v| v == id.as_str() || v["id"] == id.as_str()))
        .collect();
    let mine_names: Vec<&str> = mine.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        mine_names,
        [
            "room_joined",
            "socket_connected",
            "event_received",
            "event_sent",
            "event_received",
            "room_joined",
            "room_left",
            "room_left",
            "socket_disconnected",
        ],
        "{events:?}"
    );
    let date = |v: &Value| {
        let s = v.as_str().unwrap();
        assert!(
            s.len() == 24 && s.ends_with('Z') && s.contains('T'),
            "a JS Date: {s}"
        );
    };
    let [
        (_, joined),
        (_, connected),
        (_, received),
        (_, sent),
        _,
        (_, garden),
        ..,
    ] = &mine[..]
    else {
        unreachable!()
    };
    assert_eq!(joined[..3], [json!("/"), json!(id), json!(id)]);
    date(&joined[3]);
    assert_eq!(connected[0]["nsp"], "/");
    assert_eq!(connected[0]["transport"], "websocket");
    date(&connected[1]);
    assert_eq!(
        received[..3],
        [json!("/"), json!(id), json!(["echo", "hi"])]
    );
    date(&received[3]);
    assert_eq!(
        sent[..3],
        [json!("/"), json!(id), json!(["echo-back", "hi"])]
    );
    assert_eq!(garden[..3], [json!("/"), json!("garden"), json!(id)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_reach_the_sockets() {
    let (io, url) = start(AdminOptions::new(Auth::None)).await;
    let mut ui = ui(&url, json!({})).await.expect("connects");
    let _ = ui.next("all_sockets").await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let m = volley_client::Manager::builder(&url)
        .transports(&[volley_client::TransportKind::WebSocket])
        .build()
        .unwrap();
    let tx2 = tx.clone();
    let dave = m
        .socket("/")
        .on_any(move |_, event: String, args: volley::RawArgs| {
            let _ = tx.send(format!("{event} {:?}", args.parse::<Value>().ok()));
            async {}
        })
        .on_disconnect(move |_, reason: volley_client::DisconnectReason| {
            let _ = tx2.send(format!("disconnect {}", reason.as_str()));
            async {}
        })
        .connect()
        .await
        .expect("dave connects");
    let id = dave.id().unwrap().to_string();

    // emit(nsp, filter, event, ...args): to that socket only.
    ui.socket
        .emit_args("emit", ("/", &id, "news", 1, "two"))
        .unwrap();
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, r#"news Some(Array [Number(1), String("two")])"#);

    // join(nsp, room, filter), leave(nsp, room, filter).
    ui.socket.emit_args("join", ("/", "vip", &id)).unwrap();
    ui.next_where("room_joined", |a| a[1] == "vip").await;
    assert!(
        io.of("/")
            .get_socket(&id)
            .unwrap()
            .rooms()
            .iter()
            .any(|r| &**r == "vip")
    );
    ui.socket.emit_args("leave", ("/", "vip", &id)).unwrap();
    ui.next_where("room_left", |a| a[1] == "vip").await;

    // _disconnect(nsp, close, filter): the client hears it from the server.
    ui.socket
        .emit_args("_disconnect", ("/", false, &id))
        .unwrap();
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "disconnect io server disconnect");
    let gone = ui.next("socket_disconnected").await;
    assert_eq!(
        gone[..3],
        [json!("/"), json!(id), json!("server namespace disconnect")]
    );

    // Without a filter: every socket of the namespace; an unknown namespace is ignored.
    let (_m2, erin) = support::user(&url).await;
    ui.socket
        .emit_args("_disconnect", ("/nowhere", false))
        .unwrap();
    ui.socket.emit_args("_disconnect", ("/", false)).unwrap();
    let erin_id = erin.id().unwrap().to_string();
    ui.next_where("socket_disconnected", |a| a[1] == erin_id.as_str())
        .await;
    assert!(!io.namespaces().contains(&"/nowhere".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mode_sends_no_live_events() {
    let (io, url) = start(AdminOptions::new(Auth::None).mode(Mode::Production)).await;
    let mut ui = ui(&url, json!({})).await.expect("connects");
    let (m, frank) = user(&url).await;
    let _: Value = frank.emit_with_ack("echo", "hi").await.expect("echoed");
    let _: () = frank.emit_with_ack("join", "garden").await.expect("joined");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    let server_side = io
        .of("/")
        .get_socket(&frank.id().unwrap())
        .expect("frank is in /");
    server_side.on_disconnect(move |_, _| {
        let tx = tx.lock().unwrap().take();
        async move {
            let _ = tx.map(|t| t.send(()));
        }
    });
    m.close();
    // Once the server saw frank leave, nothing about him can come any more.
    tokio::time::timeout(WAIT, rx)
        .await
        .expect("frank leaves")
        .expect("signalled");
    let events = ui.until_marker(&io, "/admin").await;
    assert_eq!(names(&events), ["config"], "{events:?}");
    let mut features: Vec<&str> = ALL_FEATURES.to_vec();
    features.pop();
    assert_eq!(events[0].1, vec![json!({ "supportedFeatures": features })]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readonly_refuses_actions() {
    let (io, url) = start(AdminOptions::new(Auth::None).readonly(true)).await;
    let mut ui = ui(&url, json!({})).await.expect("connects");
    assert_eq!(
        ui.next("config").await,
        vec![json!({ "supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"] })]
    );
    let (_m, gina) = user(&url).await;
    let id = gina.id().unwrap().to_string();
    ui.socket
        .emit_args("_disconnect", ("/", false, &id))
        .unwrap();
    ui.socket.emit_args("join", ("/", "vip", &id)).unwrap();
    ui.socket.emit_args("emit", ("/", &id, "news", 1)).unwrap();
    // The UI's next packets are handled after those: once the server answered a probe on
    // the same connection, any action would have happened.
    let probe = io.of("/admin").sockets().pop().expect("the UI's socket");
    probe.on(
        "probe",
        |_: volley::Socket, ack: volley::AckSender| async move {
            let _ = ack.send(&());
        },
    );
    let _: () = ui
        .socket
        .emit_with_ack("probe", &())
        .await
        .expect("probe answered");
    let server_side = io.of("/").get_socket(&id).expect("still connected");
    assert!(!server_side.rooms().iter().any(|r| &**r == "vip"));
    assert!(gina.connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_the_app_owns_stays_as_it_is() {
    let (io, url) = start(AdminOptions::new(Auth::None)).await;
    let (_m, hana) = user(&url).await;
    let id = hana.id().unwrap().to_string();
    let server_side = io.of("/").get_socket(&id).expect("hana is in /");
    // The app keeps a plain string (as the chat example does): the admin adds nothing to it.
    server_side.set_data(&"hana").unwrap();
    assert_eq!(server_side.data::<String>().as_deref(), Some("hana"));
    // An object gets the package's `_admin` key back when the app replaces it...
    server_side.set_data(&json!({ "name": "hana" })).unwrap();
    assert_eq!(server_side.data_value()["name"], "hana");
    assert_eq!(server_side.data_value()["_admin"]["transport"], "websocket");
    // ... which the UI never sees; and the UI still gets the transport and client id.
    let mut ui = ui(&url, json!({})).await.expect("connects");
    let all = ui.next("all_sockets").await;
    let s = find(&all[0], &id);
    assert_eq!(s["data"], json!({ "name": "hana" }));
    assert_eq!(s["transport"], "websocket");
    assert_eq!(s["clientId"].as_str().map(str::len), Some(16));
    server_side.set_data(&"hana again").unwrap();
    let update = ui.next("socket_updated").await;
    assert_eq!(update[0], json!({ "id": id, "nsp": "/", "data": {} }));
}
