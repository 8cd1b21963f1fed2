//! The Redis Streams adapter's forms (`@socket.io/redis-streams-adapter` 0.3): stream
//! entries, and the sessions kept for connection state recovery.
//!
//! An entry has the string fields `uid`, `nsp`, `type` (the cluster type, in decimal) and,
//! when the message has any, `data`: `JSON.stringify(data)` (so it starts with `{`), or the
//! base64 of its MessagePack when the type may carry binary and does. A session is the
//! base64 of the MessagePack map `{sid, pid, rooms, data}`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use volley_core::adapter::{Room, Session};

use super::cluster::{binary_capable, cluster_data};
use super::{Envelope, Message, Opts, decode_cluster_data};
use crate::value::{Value, from_json, from_msgpack, to_json, to_msgpack};

/// The fields of the stream entry for `message`, in Node's order; `None` for the
/// classic-only messages. With `only_plaintext`, `data` is always JSON.
pub fn encode_stream_entry(
    uid: &str,
    nsp: &str,
    message: &Message,
    only_plaintext: bool,
) -> Option<Vec<(&'static str, Vec<u8>)>> {
    let (code, data) = cluster_data(message)?;
    let mut fields = vec![
        ("uid", uid.as_bytes().to_vec()),
        ("nsp", nsp.as_bytes().to_vec()),
        ("type", code.to_string().into_bytes()),
    ];
    if let Some(d) = data {
        let body = if !only_plaintext && binary_capable(code) && d.has_binary() {
            BASE64.encode(to_msgpack(&d)).into_bytes()
        } else {
            to_json(&d)
        };
        fields.push(("data", body));
    }
    Some(fields)
}

/// Decodes a stream entry from its fields (by name; unknown fields are ignored). An entry
/// without `nsp` is refused, as Node skips it.
pub fn decode_stream_entry<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    fields: &[(K, V)],
) -> Result<Envelope, String> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.as_ref() == name.as_bytes())
            .map(|(_, v)| v.as_ref())
    };
    let text = |name: &str| field(name).map(|v| String::from_utf8_lossy(v).into_owned());
    let nsp = text("nsp")
        .filter(|n| !n.is_empty())
        .ok_or("an entry has an nsp")?;
    let code = text("type")
        .and_then(|t| parse_int(&t))
        .ok_or("an entry has a numeric type")?;
    let data = match field("data").filter(|d| !d.is_empty()) {
        None => Value::Map(Vec::new()),
        Some(d) if d.first() == Some(&b'{') => from_json(d)?,
        Some(d) => {
            let bytes = BASE64.decode(d).map_err(|e| format!("data: {e}"))?;
            from_msgpack(&bytes)?
        }
    };
    Ok(Envelope {
        uid: text("uid"),
        nsp: Some(nsp),
        message: decode_cluster_data(code, &data)?,
    })
}

/// `parseInt(s, 10)`: leading digits, the rest ignored.
fn parse_int(s: &str) -> Option<u64> {
    let digits: String = s
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A stream entry id `ms-seq` (what a client sends back as its offset).
pub fn parse_entry_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(ms) || !all_digits(seq) {
        return None;
    }
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The id right after `id` (an exclusive XRANGE start for Redis before 6.2).
pub fn next_entry_id(id: &str) -> Option<String> {
    let (ms, seq) = parse_entry_id(id)?;
    Some(match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.checked_add(1)?),
    })
}

/// Whether a broadcast to `opts` reaches a socket in `rooms` (Node's `shouldIncludePacket`).
pub fn reaches(rooms: &[Room], opts: &Opts) -> bool {
    let included =
        opts.rooms.is_empty() || rooms.iter().any(|r| opts.rooms.iter().any(|o| **r == **o));
    let excluded = rooms.iter().any(|r| opts.except.iter().any(|o| **r == **o));
    included && !excluded
}

/// A session as Node keeps it: base64 of MessagePack `{sid, pid, rooms, data}` (missed
/// packets are not kept; they are read from the stream on restore).
pub fn encode_session(session: &Session) -> String {
    encode_session_leased(session, None)
}

/// [`encode_session`], plus a `lease` key naming the connected socket that keeps this
/// snapshot (Volley's live snapshots; Node ignores the extra key).
pub fn encode_session_leased(session: &Session, lease: Option<&str>) -> String {
    let mut fields = vec![
        ("sid", Value::Str(session.id.to_string())),
        ("pid", Value::Str(session.pid.clone())),
        ("rooms", Value::strings(session.rooms.iter().map(|r| &**r))),
        ("data", Value::from_json_value(&session.data)),
    ];
    if let Some(lease) = lease {
        fields.push(("lease", Value::Str(lease.to_owned())));
    }
    BASE64.encode(to_msgpack(&Value::map(fields)))
}

/// Decodes a session kept by [`encode_session`] or by Node (no missed packets yet).
pub fn decode_session(text: &[u8]) -> Result<Session, String> {
    let bytes = BASE64.decode(text).map_err(|e| format!("session: {e}"))?;
    let v = from_msgpack(&bytes)?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(Session {
        id: text("sid").ok_or("a session has a sid")?.into(),
        pid: text("pid").ok_or("a session has a pid")?,
        rooms: v
            .get("rooms")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|r| Room::from(r.js_string())).collect())
            .unwrap_or_default(),
        data: v
            .get("data")
            .map(Value::to_json_value)
            .unwrap_or(serde_json::Value::Null),
        missed_packets: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids() {
        assert_eq!(parse_entry_id("1795546290686-0"), Some((1795546290686, 0)));
        assert_eq!(parse_entry_id("1-"), None);
        assert_eq!(parse_entry_id("x-1"), None);
        assert_eq!(parse_entry_id("1-2-3"), None);
        assert_eq!(next_entry_id("5-9").as_deref(), Some("5-10"));
    }

    #[test]
    fn rooms_filter() {
        let rooms: Vec<Room> = vec!["sid".into(), "a".into()];
        let opts = |r: &[&str], e: &[&str]| Opts {
            rooms: r.iter().map(|s| s.to_string()).collect(),
            except: e.iter().map(|s| s.to_string()).collect(),
            flags: None,
        };
        assert!(reaches(&rooms, &opts(&[], &[])));
        assert!(reaches(&rooms, &opts(&["a", "b"], &[])));
        assert!(!reaches(&rooms, &opts(&["b"], &[])));
        assert!(!reaches(&rooms, &opts(&[], &["a"])));
    }

    #[test]
    fn plain_entries_round_trip() {
        let msg = Message::SocketsJoin {
            opts: Opts {
                rooms: vec!["r".into()],
                except: vec![],
                flags: Some(Value::Map(vec![])),
            },
            rooms: vec!["x".into()],
        };
        let fields = encode_stream_entry("u", "/", &msg, false).unwrap();
        assert_eq!(fields[2], ("type", b"4".to_vec()));
        assert_eq!(
            fields[3].1,
            br#"{"opts":{"rooms":["r"],"except":[],"flags":{}},"rooms":["x"]}"#
        );
        let env = decode_stream_entry(&fields).unwrap();
        assert_eq!(env.message, msg);
        assert_eq!(env.uid.as_deref(), Some("u"));
        let no_nsp: Vec<(&str, &[u8])> = vec![("uid", b"u"), ("type", b"3")];
        assert!(decode_stream_entry(&no_nsp).is_err());
    }
}
