//! Tracing: a span per connection, per socket and per event, carrying the socket id and the
//! namespace, and nothing a client must keep secret or sent as data: not the Engine.IO
//! session id, not the recovery pid, not an event's arguments (not even in the message
//! logged when they do not fit the handler).

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use volley::adapter::ConnectionStateRecovery;
use volley::{Data, Socket, SocketIo};
use volley_proto::socket::PacketData;

/// What the test subscriber saw: a span (with the fields it got) or an event (with its
/// fields and the names of the spans it happened in, outermost first).
#[derive(Debug, Clone)]
struct Seen {
    span: bool,
    name: String,
    fields: BTreeMap<String, String>,
    scope: Vec<String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Seen>>>);

/// The spans' entries in `Capture`'s list, by span id.
struct Index(usize);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut seen = self.0.lock().unwrap();
        seen.push(Seen {
            span: true,
            name: attrs.metadata().name().to_owned(),
            fields,
            scope: Vec::new(),
        });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Index(seen.len() - 1));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(i) = span.extensions().get::<Index>().map(|i| i.0) else {
            return;
        };
        values.record(&mut Fields(&mut self.0.lock().unwrap()[i].fields));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let scope = ctx
            .event_scope(event)
            .map(|s| s.from_root().map(|span| span.name().to_owned()).collect())
            .unwrap_or_default();
        self.0.lock().unwrap().push(Seen {
            span: false,
            name: event.metadata().name().to_owned(),
            fields,
            scope,
        });
    }
}

const PAYLOAD: &str = "PAYLOAD-xyzzy-do-not-log";

#[tokio::test]
async fn spans_carry_the_socket_and_namespace_and_never_a_payload_pid_or_session_id() {
    let capture = Capture::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    let io = SocketIo::builder()
        .connection_state_recovery(ConnectionStateRecovery::default())
        .build();
    let (tx, mut handled) = mpsc::unbounded_channel();
    io.of("/").on_connection(move |s: Socket| {
        let tx = tx.clone();
        async move {
            tracing::info!("connected handler");
            s.on("typed", |_: Socket, Data(_n): Data<u32>| async {});
            s.on("secret", move |_: Socket, Data(v): Data<String>| {
                let tx = tx.clone();
                async move {
                    tracing::info!(len = v.len(), "event handler");
                    let _ = tx.send(());
                }
            });
        }
    });
    let srv = start(io).await;
    let mut client = srv.client().await;
    let engine_sid = client.open["sid"]
        .as_str()
        .expect("an engine sid")
        .to_owned();
    client.send_raw("0");
    let reply = client.next_packet("/").await;
    let PacketData::Json(json) = &reply.data else {
        panic!("a CONNECT reply with a payload");
    };
    let reply: Value = serde_json::from_slice(json).unwrap();
    let (socket_id, pid) = (
        reply["sid"].as_str().unwrap().to_owned(),
        reply["pid"]
            .as_str()
            .expect("recovery on: a pid")
            .to_owned(),
    );
    // Arguments that do not fit the handler (a string for a u32), then ones that do.
    client.emit("/", "typed", json!([PAYLOAD]));
    client.emit("/", "secret", json!([PAYLOAD]));
    recv(&mut handled).await;

    let seen = capture.0.lock().unwrap().clone();
    let span =
        |name: &str| -> Vec<&Seen> { seen.iter().filter(|s| s.span && s.name == name).collect() };
    assert_eq!(span("volley.connection").len(), 1, "{seen:#?}");
    assert_eq!(
        span("volley.connection")[0]
            .fields
            .get("transport")
            .map(String::as_str),
        Some("websocket")
    );
    let sockets = span("volley.socket");
    assert_eq!(sockets.len(), 1, "{seen:#?}");
    assert_eq!(sockets[0].fields["ns"], "/");
    assert_eq!(sockets[0].fields["socket"], socket_id);
    let events = span("volley.event");
    assert_eq!(events.len(), 2, "{seen:#?}");
    for (e, name) in events.iter().zip(["typed", "secret"]) {
        assert_eq!(e.fields["ns"], "/");
        assert_eq!(e.fields["socket"], socket_id);
        assert_eq!(e.fields["event"], name);
    }
    // What handlers log happens inside those spans.
    let logged = |msg: &str| -> &Seen {
        seen.iter()
            .find(|s| !s.span && s.fields.get("message").is_some_and(|m| m == msg))
            .unwrap_or_else(|| panic!("no event {msg:?} in {seen:#?}"))
    };
    assert_eq!(
        logged("connected handler").scope,
        ["volley.connection", "volley.socket"]
    );
    assert_eq!(
        logged("event handler").scope,
        ["volley.connection", "volley.event"]
    );
    // The misfit arguments were reported, without quoting them.
    logged("event arguments do not fit the handler");

    for s in &seen {
        for v in s.fields.values() {
            for secret in [PAYLOAD, &pid, &engine_sid] {
                assert!(!v.contains(secret), "{secret:?} was traced: {s:#?}");
            }
        }
    }
}
