//! Tests of the local adapter: rooms, selection, fan-out, recovery sessions.
use std::sync::{Mutex, Weak};
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::RawArgs;
use crate::adapter::{NamespaceSockets, ServerAck, Session};

#[derive(Default)]
struct Fake {
    sent: Mutex<Vec<String>>,
    events: Mutex<Vec<RoomEvent>>,
}

impl NamespaceSockets for Fake {
    fn send(&self, id: &str, _: &BroadcastPacket, volatile: bool) -> bool {
        if volatile && id == "slow" {
            return false;
        }
        self.sent.lock().unwrap().push(id.to_owned());
        true
    }
    fn send_with_ack(
        &self,
        id: &str,
        p: &BroadcastPacket,
        _: u64,
        v: bool,
        _: &Arc<dyn AckSink>,
    ) -> bool {
        self.send(id, p, v)
    }
    fn info(&self, id: &str, rooms: Vec<Room>) -> Option<SocketInfo> {
        Some(SocketInfo {
            id: id.into(),
            handshake: Value::Null,
            rooms,
            data: Value::Null,
        })
    }
    fn contains(&self, id: &str) -> bool {
        id != "gone"
    }
    fn disconnect(&self, _: &str, _: bool) {}
    fn next_ack_id(&self) -> u64 {
        0
    }
    fn server_event(&self, _: &str, _: RawArgs, _: Option<ServerAck>) {}
    fn room_event(&self, event: RoomEvent) {
        self.events.lock().unwrap().push(event);
    }
}

fn r(s: &str) -> Room {
    Arc::from(s)
}

/// A local adapter without recovery over a fake namespace.
fn plain() -> (Arc<Fake>, LocalAdapter) {
    let fake = Arc::new(Fake::default());
    let weak: Weak<dyn NamespaceSockets> =
        Arc::downgrade(&(fake.clone() as Arc<dyn NamespaceSockets>));
    (fake, LocalAdapter::new(LocalSockets::new(r("/"), weak)))
}

#[test]
fn rooms_and_selection() {
    let (fake, local) = plain();
    local.add_all("a", &[r("a"), r("x")]);
    local.add_all("b", &[r("b"), r("x")]);
    local.add_all("slow", &[r("slow"), r("x")]);
    assert_eq!(
        fake.events.lock().unwrap()[..2],
        [
            RoomEvent::Create(r("a")),
            RoomEvent::Join(r("a"), "a".into())
        ]
    );
    let opts = |rooms: &[&str], except: &[&str]| BroadcastOptions {
        rooms: rooms.iter().map(|s| r(s)).collect(),
        except: except.iter().map(|s| r(s)).collect(),
        ..Default::default()
    };
    let mut ids = local.select(&opts(&["x"], &["b"]));
    ids.sort();
    assert_eq!(ids, [r("a"), r("slow")]);
    let packet = BroadcastPacket::from_parts(b"2[\"e\"]", Vec::new());
    let mut volatile = opts(&["x"], &[]);
    volatile.flags.volatile = true;
    let mut sent = local.deliver(&packet, &volatile);
    sent.sort();
    assert_eq!(sent, [r("a"), r("b")]);
    assert_eq!(local.fetch_local(&opts(&["b"], &[]))[0].rooms.len(), 2);
    local.del_all("a");
    assert!(local.socket_rooms("a").is_empty());
    local.del("b", "x");
    local.del("slow", "x");
    assert!(
        fake.events
            .lock()
            .unwrap()
            .contains(&RoomEvent::Delete(r("x")))
    );
    assert!(matches!(
        local.persist_session(Session {
            id: "a".into(),
            pid: String::new(),
            rooms: vec![],
            data: Value::Null,
            missed_packets: vec![],
        }),
        Err(AdapterError::Unsupported(_))
    ));
}

#[test]
fn fan_out_selects_as_deliver_does_and_names_each_socket_once() {
    let (fake, local) = plain();
    local.add_all("a", &[r("a"), r("x")]);
    local.add_all("b", &[r("b"), r("x"), r("y")]);
    local.add_all("slow", &[r("slow"), r("x")]);
    let packet = BroadcastPacket::from_parts(b"2[\"e\"]", Vec::new());
    let opts = |rooms: &[&str], except: &[&str], volatile: bool| {
        let mut o = BroadcastOptions {
            rooms: rooms.iter().map(|s| r(s)).collect(),
            except: except.iter().map(|s| r(s)).collect(),
            ..Default::default()
        };
        o.flags.volatile = volatile;
        o
    };
    let run = |o: BroadcastOptions| {
        fake.sent.lock().unwrap().clear();
        let n = local.fan_out(&packet, &o);
        let mut sent = std::mem::take(&mut *fake.sent.lock().unwrap());
        sent.sort();
        assert_eq!(n, sent.len());
        let mut selected: Vec<String> = local.select(&o).iter().map(|id| id.to_string()).collect();
        selected.sort();
        (sent, selected)
    };
    // Everyone but the excluded room; a volatile packet skips the slow socket.
    let (sent, _) = run(opts(&[], &["b"], true));
    assert_eq!(sent, ["a"]);
    // A union of rooms names each socket once.
    let (sent, selected) = run(opts(&["x", "y", "b"], &[], false));
    assert_eq!(sent, ["a", "b", "slow"]);
    assert_eq!(sent, selected);
    let (sent, selected) = run(opts(&["x"], &["y", "nobody"], false));
    assert_eq!(sent, ["a", "slow"]);
    assert_eq!(sent, selected);
    let (sent, selected) = run(opts(&[], &[], false));
    assert_eq!(sent, selected);
    assert_eq!(run(opts(&["nobody"], &[], false)).0, Vec::<String>::new());
}

fn recovering(cfg: ConnectionStateRecovery) -> (Arc<Fake>, LocalAdapter) {
    let fake = Arc::new(Fake::default());
    let weak: Weak<dyn NamespaceSockets> =
        Arc::downgrade(&(fake.clone() as Arc<dyn NamespaceSockets>));
    let sockets = LocalSockets::new(r("/"), weak).with_recovery(Some(cfg));
    (fake, LocalAdapter::new(sockets))
}

fn session(pid: &str, rooms: &[&str]) -> Session {
    Session {
        id: "gone".into(),
        pid: pid.into(),
        rooms: rooms.iter().map(|s| r(s)).collect(),
        data: Value::Null,
        missed_packets: vec![],
    }
}

fn to(rooms: &[&str]) -> BroadcastOptions {
    BroadcastOptions {
        rooms: rooms.iter().map(|s| r(s)).collect(),
        ..Default::default()
    }
}

fn texts(s: &Session) -> Vec<String> {
    s.missed_packets
        .iter()
        .map(|p| String::from_utf8(p.text().to_vec()).unwrap())
        .collect()
}

#[test]
fn offsets_round_trip_and_reject_garbage() {
    for n in [0, 1, 63, 64, 4095, u64::MAX] {
        assert_eq!(decode_offset(&encode_offset(n)), Some(n));
    }
    for bad in ["", "!", "a.b", "zzzzzzzzzzzz", "💥"] {
        assert_eq!(decode_offset(bad), None, "{bad:?}");
    }
}

#[test]
fn offsets_are_appended_to_events_without_ack_only() {
    let p = |t: &str| BroadcastPacket::from_parts(t.as_bytes(), vec![]);
    let text =
        |p: Option<BroadcastPacket>| p.map(|p| String::from_utf8(p.text().to_vec()).unwrap());
    assert_eq!(
        text(p("2[\"e\",1]").with_offset("Ab")),
        Some("2[\"e\",1,\"Ab\"]".into())
    );
    assert_eq!(
        text(p("2/chat,[\"e\"]").with_offset("1")),
        Some("2/chat,[\"e\",\"1\"]".into())
    );
    assert_eq!(
        text(p("51-/a,[\"e\",{\"_placeholder\":true,\"num\":0}]").with_offset("1")),
        Some("51-/a,[\"e\",{\"_placeholder\":true,\"num\":0},\"1\"]".into())
    );
    assert_eq!(text(p("212[\"e\"]").with_offset("1")), None, "ack id");
    assert_eq!(text(p("2/a,12[\"e\"]").with_offset("1")), None, "ack id");
    assert_eq!(text(p("0{}").with_offset("1")), None);
    assert_eq!(text(p("3[1]").with_offset("1")), None);
}

#[tokio::test(start_paused = true)]
async fn sessions_restore_once_within_the_window_with_their_packets() {
    let cfg = ConnectionStateRecovery::default();
    let (fake, local) = recovering(cfg);
    local.add_all("gone", &[r("gone"), r("x")]);
    local.broadcast(
        &BroadcastPacket::from_parts(b"2[\"first\"]", vec![]),
        &to(&[]),
    );
    local.persist_session(session("p", &["gone", "x"])).unwrap();
    local.del_all("gone");
    for (ev, rooms) in [("all", vec![]), ("x", vec!["x"]), ("y", vec!["y"])] {
        let t = format!("2[\"{ev}\"]");
        local.broadcast(
            &BroadcastPacket::from_parts(t.as_bytes(), vec![]),
            &to(&rooms),
        );
    }
    let mut except = to(&[]);
    except.except = vec![r("x")];
    local.broadcast(
        &BroadcastPacket::from_parts(b"2[\"not-x\"]", vec![]),
        &except,
    );
    assert_eq!(local.recovery_stats(), (5, 1));
    // Nothing sent to the socket while it is gone.
    assert_eq!(fake.sent.lock().unwrap().len(), 1);

    // Unknown pid, unknown offset: none (an unknown offset consumes the session).
    assert_eq!(local.restore_session("nope", "1").await, Ok(None));
    tokio::time::advance(cfg.max_disconnection_duration).await;
    // At exactly the window it is still there (Node: expired when `at + max < now`).
    let s = local.restore_session("p", "1").await.unwrap().unwrap();
    assert_eq!(texts(&s), ["2[\"all\",\"2\"]", "2[\"x\",\"3\"]"]);
    assert_eq!(s.id, "gone");
    // It joined its rooms again, at once.
    let mut rooms = local.socket_rooms("gone");
    rooms.sort();
    assert_eq!(rooms, [r("gone"), r("x")]);
    // Once only.
    assert_eq!(local.restore_session("p", "1").await, Ok(None));
}

#[tokio::test(start_paused = true)]
async fn sessions_and_packets_expire_and_packets_are_capped() {
    let cfg = ConnectionStateRecovery::default().max_buffered_packets(2);
    let (_fake, local) = recovering(cfg);
    let send = |n: u32| {
        let t = format!("2[\"e\",{n}]");
        local.broadcast(&BroadcastPacket::from_parts(t.as_bytes(), vec![]), &to(&[]));
    };
    send(1);
    local.persist_session(session("p", &["gone"])).unwrap();
    send(2);
    send(3);
    // Offset 1 was dropped by the cap.
    assert_eq!(local.recovery_stats(), (2, 1));
    assert_eq!(local.restore_session("p", "1").await, Ok(None));

    local.persist_session(session("q", &["gone"])).unwrap();
    tokio::time::advance(cfg.max_disconnection_duration + Duration::from_millis(1)).await;
    assert_eq!(local.restore_session("q", "3").await, Ok(None));
    send(4);
    assert_eq!(
        local.recovery_stats(),
        (1, 0),
        "expired packets and sessions are dropped"
    );
    // Volatile broadcasts and packets with acks are not kept.
    let mut v = to(&[]);
    v.flags.volatile = true;
    local.broadcast(&BroadcastPacket::from_parts(b"2[\"v\"]", vec![]), &v);
    local.broadcast(&BroadcastPacket::from_parts(b"27[\"a\"]", vec![]), &to(&[]));
    assert_eq!(local.recovery_stats(), (1, 0));
}
