//! Sockets as the UI reads them (the package's `serialize`), from what `fetch_sockets`
//! returns, so that sockets of every server of a cluster (Node ones included) look alike.

use serde_json::{Map, Value, json};
use volley::{RemoteSocket, Socket};

/// The key under which development mode keeps `{clientId, transport}` in a socket's data,
/// where the package keeps it, so that other servers of a cluster read it too.
pub(crate) const ADMIN_KEY: &str = "_admin";

/// The package's `serializeData`: the socket's data without [`ADMIN_KEY`].
pub(crate) fn public_data(data: &Value) -> Value {
    match data {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != ADMIN_KEY)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        // Node spreads whatever it is into an object: nothing of a non-object survives.
        _ => Value::Object(Map::new()),
    }
}

/// One socket in the UI's shape: `id`, `clientId`, `transport`, `nsp`, `data`,
/// `handshake` (without `auth`), `rooms`.
pub(crate) fn socket(
    id: &str,
    nsp: &str,
    handshake: &Value,
    data: &Value,
    rooms: Vec<String>,
) -> Value {
    let admin = data.get(ADMIN_KEY);
    let header = |name: &str| handshake.get("headers").and_then(|h| h.get(name));
    let address = header("cf-connecting-ip")
        .or_else(|| header("x-forwarded-for"))
        .or_else(|| handshake.get("address"));
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    // Left out when unknown, as JSON.stringify leaves out `undefined`.
    for (key, field) in [("clientId", "clientId"), ("transport", "transport")] {
        if let Some(v) = admin.and_then(|a| a.get(field)) {
            out.insert(key.into(), v.clone());
        }
    }
    out.insert("nsp".into(), json!(nsp));
    out.insert("data".into(), public_data(data));
    let mut hs = Map::new();
    if let Some(a) = address {
        hs.insert("address".into(), a.clone());
    }
    for key in [
        "headers", "query", "issued", "secure", "time", "url", "xdomain",
    ] {
        if let Some(v) = handshake.get(key) {
            hs.insert(key.into(), v.clone());
        }
    }
    out.insert("handshake".into(), Value::Object(hs));
    out.insert("rooms".into(), json!(rooms));
    Value::Object(out)
}

/// A socket returned by `fetch_sockets` (this server's or another's).
pub(crate) fn remote(s: &RemoteSocket, nsp: &str) -> Value {
    let rooms = s.rooms().iter().map(|r| r.to_string()).collect();
    socket(s.id(), nsp, s.handshake(), s.data(), rooms)
}

/// A socket of this server: its client id and transport are read from the socket itself,
/// so they are right even where the data could not hold them (data that is not an object,
/// production mode).
pub(crate) fn local(s: &Socket) -> Value {
    let handshake = serde_json::to_value(s.handshake()).unwrap_or(Value::Null);
    let rooms = s.rooms().iter().map(|r| r.to_string()).collect();
    let mut v = socket(s.id(), s.namespace(), &handshake, &s.data_value(), rooms);
    if let Value::Object(map) = &mut v {
        let transport = crate::live::transport_name(s.transport());
        // Re-inserted in the UI's key order: id, clientId, transport, nsp, ...
        let rest: Vec<(String, Value)> = std::mem::take(map)
            .into_iter()
            .filter(|(k, _)| k != "clientId" && k != "transport")
            .collect();
        for (k, val) in rest {
            map.insert(k.clone(), val);
            if k == "id" {
                map.insert("clientId".into(), json!(s.client_id()));
                map.insert("transport".into(), json!(transport));
            }
        }
    }
    v
}
