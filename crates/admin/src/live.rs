//! Development mode's live events: sockets connecting, changing and leaving, rooms joined
//! and left, every event received and sent, broadcast to the admin namespace (so, in a
//! cluster, to the UIs connected to any server).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Value, json};
use volley::adapter::RoomEvent;
use volley::{Args, DisconnectReason, Namespace, Observer, RawArgs, Socket, TransportKind};

use crate::serialize::{self, ADMIN_KEY};

/// The UI's timestamps: a JavaScript `Date` as JSON (`2026-01-02T03:04:05.678Z`).
pub(crate) fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

pub(crate) fn transport_name(t: TransportKind) -> &'static str {
    match t {
        TransportKind::WebSocket => "websocket",
        _ => "polling",
    }
}

/// Marks a socket whose `socket_connected` went out (later data changes are news).
#[derive(Clone, Copy)]
struct Announced;

/// `[event, ...args]`, as the UI reads `event_received` / `event_sent`.
fn event_args(event: &str, args: &RawArgs) -> Value {
    let mut list = vec![json!(event)];
    list.extend((0..args.len()).filter_map(|i| args.get::<Value>(i)?.ok()));
    Value::Array(list)
}

/// The development-mode observer of the whole server.
pub(crate) struct Live {
    admin: Namespace,
    /// Sockets last seen on long-polling, checked for an upgrade at each sample.
    polling: Mutex<Vec<Socket>>,
}

impl Live {
    pub(crate) fn new(admin: Namespace) -> Arc<Self> {
        Arc::new(Self {
            admin,
            polling: Mutex::new(Vec::new()),
        })
    }

    fn send(&self, event: &str, args: impl Args) {
        if let Err(e) = self.admin.emit_args(event, args) {
            tracing::debug!(error = %e, event, "admin event not sent");
        }
    }

    /// Reports the sockets that moved from long-polling to WebSocket since the last call,
    /// as the package does on the connection's `upgrade`.
    pub(crate) fn check_upgrades(&self) {
        let upgraded: Vec<Socket> = {
            let mut list = self.polling.lock().unwrap_or_else(|p| p.into_inner());
            let (gone, keep): (Vec<_>, Vec<_>) = list
                .drain(..)
                .partition(|s| !s.connected() || s.transport() == TransportKind::WebSocket);
            *list = keep;
            gone.into_iter().filter(Socket::connected).collect()
        };
        for s in upgraded {
            let mut data = s.data_value();
            if let Some(admin) = data.get_mut(ADMIN_KEY).and_then(Value::as_object_mut) {
                admin.insert("transport".into(), json!("websocket"));
                // Not news for the UI (the package's proxy does not see this change either).
                let announced = s.extensions().remove::<Announced>();
                let _ = s.set_data(&data);
                if let Some(a) = announced {
                    s.extensions().insert(a);
                }
            }
            self.send(
                "socket_updated",
                (json!({ "id": s.id(), "nsp": s.namespace(), "transport": "websocket" }),),
            );
        }
    }
}

impl Observer for Live {
    fn socket_connected(&self, s: &Socket) {
        let transport = s.transport();
        let admin = json!({ "clientId": s.client_id(), "transport": transport_name(transport) });
        let mut data = s.data_value();
        match &mut data {
            Value::Object(map) => {
                map.insert(ADMIN_KEY.into(), admin);
            }
            Value::Null => data = json!({ ADMIN_KEY: admin }),
            _ => {}
        }
        let _ = s.set_data(&data);
        s.extensions().insert(Announced);
        if s.namespace() == self.admin.name() {
            // Node sends a socket's own room_joined before its CONNECT answer, so a UI gets
            // its own; Volley joins that room before the socket can take broadcasts.
            let _ = s.emit_args("room_joined", (s.namespace(), s.id(), s.id(), now()));
        }
        self.send("socket_connected", (serialize::local(s), now()));
        if transport != TransportKind::WebSocket {
            self.polling
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(s.clone());
        }
        if s.namespace() == self.admin.name() {
            return;
        }
        let admin = self.admin.clone();
        s.on_any(move |s: Socket, event: String, args: RawArgs| {
            let sent = admin.emit_args(
                "event_received",
                (s.namespace(), s.id(), event_args(&event, &args), now()),
            );
            async move {
                let _ = sent;
            }
        });
        let admin = self.admin.clone();
        s.on_any_outgoing(move |s: &Socket, event: &str, args: &RawArgs| {
            let _ = admin.emit_args(
                "event_sent",
                (s.namespace(), s.id(), event_args(event, args), now()),
            );
        });
    }

    fn socket_disconnected(&self, s: &Socket, reason: DisconnectReason) {
        self.send(
            "socket_disconnected",
            (s.namespace(), s.id(), reason.as_str(), now()),
        );
    }

    fn room_event(&self, namespace: &str, event: &RoomEvent) {
        match event {
            RoomEvent::Join(room, id) => {
                self.send("room_joined", (namespace, &**room, id, now()));
            }
            RoomEvent::Leave(room, id) => {
                self.send("room_left", (namespace, &**room, id, now()));
            }
            RoomEvent::Create(_) | RoomEvent::Delete(_) => {}
        }
    }

    fn data_changed(&self, s: &Socket) {
        if s.extensions().get::<Announced>().is_none() {
            return;
        }
        let mut data = s.data_value();
        if let Value::Object(map) = &mut data
            && !map.contains_key(ADMIN_KEY)
        {
            // The application replaced the data: keep what other servers read.
            let admin =
                json!({ "clientId": s.client_id(), "transport": transport_name(s.transport()) });
            map.insert(ADMIN_KEY.into(), admin);
            let _ = s.set_data(&data); // comes back here, with the key
            return;
        }
        self.send(
            "socket_updated",
            (json!({ "id": s.id(), "nsp": s.namespace(), "data": serialize::public_data(&data) }),),
        );
    }
}
