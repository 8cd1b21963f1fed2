//! Between the adapter contract's types and the wire's.

use std::time::Duration;

use volley_core::adapter::{BroadcastFlags, BroadcastOptions, Room, SocketInfo};

use crate::message::Opts;
use crate::value::Value;

pub(crate) fn rooms_of(v: &[String]) -> Vec<Room> {
    v.iter().map(|r| Room::from(r.as_str())).collect()
}

pub(crate) fn strings_of(v: &[Room]) -> Vec<String> {
    v.iter().map(|r| r.to_string()).collect()
}

/// Our options to the wire's.
pub(crate) fn wire_opts(opts: &BroadcastOptions) -> Opts {
    let mut flags = Vec::new();
    if opts.flags.volatile {
        flags.push(("volatile".to_owned(), Value::Bool(true)));
    }
    if let Some(t) = opts.flags.timeout {
        flags.push(("timeout".to_owned(), Value::Int(t.as_millis() as i64)));
    }
    Opts {
        rooms: strings_of(&opts.rooms),
        except: strings_of(&opts.except),
        flags: Some(Value::Map(flags)),
    }
}

/// The wire's options to ours.
pub(crate) fn local_opts(opts: &Opts) -> BroadcastOptions {
    BroadcastOptions {
        rooms: rooms_of(&opts.rooms),
        except: rooms_of(&opts.except),
        flags: BroadcastFlags {
            local: true,
            volatile: opts.volatile(),
            timeout: opts.timeout_ms().map(Duration::from_millis),
        },
    }
}

/// Utility requests (join, leave, disconnect) carry no flags in classic mode.
pub(crate) fn request_opts(opts: &BroadcastOptions, classic: bool) -> Opts {
    let mut o = wire_opts(opts);
    if classic {
        o.flags = None;
    } else {
        o.flags = Some(Value::Map(Vec::new()));
    }
    o
}

pub(crate) fn info_to_value(s: &SocketInfo) -> Value {
    Value::map([
        ("id", Value::Str(s.id.to_string())),
        ("handshake", Value::from_json_value(&s.handshake)),
        ("rooms", Value::strings(s.rooms.iter().map(|r| &**r))),
        ("data", Value::from_json_value(&s.data)),
    ])
}

pub(crate) fn value_to_info(v: &Value) -> Option<SocketInfo> {
    Some(SocketInfo {
        id: v.get("id")?.js_string().into(),
        handshake: v
            .get("handshake")
            .map(Value::to_json_value)
            .unwrap_or(serde_json::Value::Null),
        rooms: v
            .get("rooms")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|r| Room::from(r.js_string())).collect())
            .unwrap_or_default(),
        data: v
            .get("data")
            .map(Value::to_json_value)
            .unwrap_or(serde_json::Value::Null),
    })
}
