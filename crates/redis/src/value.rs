//! The value model shared by both encodings: what a JavaScript value looks like once it
//! crossed Redis as MessagePack (notepack.io) or JSON, binary included.

mod msgpack;

use bytes::Bytes;

pub use msgpack::{from_msgpack, to_msgpack};

/// A JavaScript value as the Node adapters exchange it.
///
/// Maps keep their key order (JSON key order differs between senders; nothing relies on
/// it, but re-encoding keeps what was received). Integers stay integers; any other number
/// is a `Float`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, and `undefined` in an array.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integral number.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A string (a `Date` arrives as its ISO-8601 string).
    Str(String),
    /// Binary data (Buffer, TypedArray, ArrayBuffer).
    Bin(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The value under `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number as an unsigned integer, if it is a non-negative integral number.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Int(i) => u64::try_from(*i).ok(),
            Self::Float(f) if *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19 => Some(*f as u64),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Whether binary data is anywhere inside.
    pub fn has_binary(&self) -> bool {
        match self {
            Self::Bin(_) => true,
            Self::Array(a) => a.iter().any(Value::has_binary),
            Self::Map(m) => m.iter().any(|(_, v)| v.has_binary()),
            _ => false,
        }
    }

    /// A map from `(key, value)` pairs.
    pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Self {
        Self::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An array of strings.
    pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        Self::Array(
            items
                .into_iter()
                .map(|s| Self::Str(s.as_ref().to_owned()))
                .collect(),
        )
    }

    /// The value as JavaScript's `String(value)` would print it, for room names sent as
    /// numbers (`socket.join(123)`).
    pub fn js_string(&self) -> String {
        match self {
            Self::Str(s) => s.clone(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => js_number(*f),
            Self::Bool(b) => b.to_string(),
            Self::Null => "null".into(),
            _ => String::new(),
        }
    }

    /// From a `serde_json` value (no binary there).
    pub fn from_json_value(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Bool(*b),
            serde_json::Value::Number(n) => number(n),
            serde_json::Value::String(s) => Self::Str(s.clone()),
            serde_json::Value::Array(a) => {
                Self::Array(a.iter().map(Self::from_json_value).collect())
            }
            serde_json::Value::Object(o) => Self::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Self::from_json_value(v)))
                    .collect(),
            ),
        }
    }

    /// To a `serde_json` value; binary becomes what `JSON.stringify` makes of a Buffer,
    /// `{"type":"Buffer","data":[...]}`.
    pub fn to_json_value(&self) -> serde_json::Value {
        match self {
            Self::Null => serde_json::Value::Null,
            Self::Bool(b) => serde_json::Value::Bool(*b),
            Self::Int(i) => serde_json::Value::from(*i),
            Self::Float(f) => float_json(*f),
            Self::Str(s) => serde_json::Value::String(s.clone()),
            Self::Bin(b) => serde_json::json!({"type": "Buffer", "data": b.to_vec()}),
            Self::Array(a) => serde_json::Value::Array(a.iter().map(Self::to_json_value).collect()),
            Self::Map(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.to_json_value()))
                    .collect(),
            ),
        }
    }
}

fn number(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else {
        Value::Float(n.as_f64().unwrap_or(0.0))
    }
}

/// A float as JSON the way `JSON.stringify` writes it: integral values without `.0`,
/// non-finite ones as `null`.
fn float_json(f: f64) -> serde_json::Value {
    if !f.is_finite() {
        return serde_json::Value::Null;
    }
    if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        return serde_json::Value::from(f as i64);
    }
    serde_json::Number::from_f64(f)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

fn js_number(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i128)
    } else {
        format!("{f}")
    }
}

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

/// Parses JSON into a [`Value`].
pub fn from_json(bytes: &[u8]) -> Result<Value, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(Value::from_json_value(&v))
}

/// Writes `v` as JSON the way `JSON.stringify` would (Buffers as `{"type":"Buffer",...}`).
pub fn to_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_json(v, &mut out, &mut None);
    out
}

/// Writes `v` as JSON; with `attachments`, binary becomes Socket.IO placeholders
/// (`{"_placeholder":true,"num":N}`) and the bytes are pushed there.
pub(crate) fn write_json(v: &Value, out: &mut Vec<u8>, attachments: &mut Option<&mut Vec<Bytes>>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => out.extend_from_slice(itoa_i64(*i).as_bytes()),
        Value::Float(f) => {
            let j = float_json(*f);
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &j);
        }
        Value::Str(s) => {
            let _ = serde_json::to_writer(&mut *out, s);
        }
        Value::Bin(b) => match attachments {
            Some(att) => {
                out.extend_from_slice(br#"{"_placeholder":true,"num":"#);
                out.extend_from_slice(att.len().to_string().as_bytes());
                out.push(b'}');
                att.push(b.clone());
            }
            None => {
                out.extend_from_slice(br#"{"type":"Buffer","data":["#);
                for (i, byte) in b.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(byte.to_string().as_bytes());
                }
                out.extend_from_slice(b"]}");
            }
        },
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(x, out, attachments);
            }
            out.push(b']');
        }
        Value::Map(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_json(x, out, attachments);
            }
            out.push(b'}');
        }
    }
}

fn itoa_i64(i: i64) -> String {
    i.to_string()
}

/// Parses Socket.IO JSON whose binary placeholders refer to `attachments`.
pub(crate) fn from_socketio_json(json: &[u8], attachments: &[Bytes]) -> Result<Value, String> {
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    Ok(resolve_placeholders(&v, attachments))
}

fn resolve_placeholders(v: &serde_json::Value, att: &[Bytes]) -> Value {
    match v {
        serde_json::Value::Array(a) => {
            Value::Array(a.iter().map(|x| resolve_placeholders(x, att)).collect())
        }
        serde_json::Value::Object(o) => {
            if o.len() == 2 && o.get("_placeholder") == Some(&serde_json::Value::Bool(true)) {
                if let Some(b) = o
                    .get("num")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|n| att.get(n as usize))
                {
                    return Value::Bin(b.clone());
                }
            }
            Value::Map(
                o.iter()
                    .map(|(k, x)| (k.clone(), resolve_placeholders(x, att)))
                    .collect(),
            )
        }
        other => Value::from_json_value(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_use_the_smallest_format() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (2000, &[0xcd, 0x07, 0xd0]),
            (70_000, &[0xce, 0, 1, 0x11, 0x70]),
            (-1, &[0xff]),
            (-32, &[0xe0]),
            (-33, &[0xd0, 0xdf]),
            (-200, &[0xd1, 0xff, 0x38]),
        ];
        for (i, bytes) in cases {
            assert_eq!(to_msgpack(&Value::Int(*i)), bytes.to_vec(), "{i}");
            assert_eq!(from_msgpack(bytes).unwrap(), Value::Int(*i));
        }
        // An integral float is written as an integer, as in JavaScript.
        assert_eq!(to_msgpack(&Value::Float(2.0)), vec![0x02]);
        assert_eq!(to_msgpack(&Value::Float(1.5))[0], 0xcb);
    }

    #[test]
    fn timestamps_and_legacy_forms() {
        assert_eq!(
            from_msgpack(&[0xd6, 0xff, 0, 0, 0, 0]).unwrap(),
            Value::Str("1970-01-01T00:00:00.000Z".into())
        );
        // 2026-11-24T18:50:53.280Z as timestamp 64 (nanos 280,000,000).
        let secs: u64 = 1_795_546_253;
        let x = (280_000_000u64 << 34) | secs;
        let mut b = vec![0xd7, 0xff];
        b.extend_from_slice(&x.to_be_bytes());
        assert_eq!(
            from_msgpack(&b).unwrap(),
            Value::Str("2026-11-24T18:50:53.280Z".into())
        );
        assert_eq!(from_msgpack(&[0xd4, 0x00, 0x00]).unwrap(), Value::Null);
        assert_eq!(
            from_msgpack(&[0xc7, 0x02, 0x00, 9, 8]).unwrap(),
            Value::Bin(Bytes::from_static(&[9, 8]))
        );
    }

    #[test]
    fn json_like_javascript() {
        let v = Value::map([
            ("a", Value::Float(3.0)),
            ("b", Value::Bin(Bytes::from_static(&[1, 2]))),
            ("c", Value::Float(f64::NAN)),
        ]);
        assert_eq!(
            String::from_utf8(to_json(&v)).unwrap(),
            r#"{"a":3,"b":{"type":"Buffer","data":[1,2]},"c":null}"#
        );
        assert_eq!(Value::Float(1.5).js_string(), "1.5");
        assert_eq!(Value::Int(123).js_string(), "123");
    }
}
