//! Event arguments as the command line shows and writes them: JSON, with binary data as
//! `{"$binary":"<base64>"}`.
//!
//! [`Value`] is a JSON-like tree with one more case, [`Value::Binary`]. It deserializes from
//! any argument the client received, whatever the parser (binary placeholders and MessagePack
//! `bin` come as bytes), and serializes binary with `serialize_bytes`, so the client sends it
//! as a binary attachment (JSON parser) or a `bin` (MessagePack).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use volley_core::args::{Args, ArgsWriter};
use volley_core::{CodecError, RawArgs};

/// The key of the object that stands for binary data.
pub(crate) const BINARY_KEY: &str = "$binary";

/// One argument: JSON, or binary data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, keys in the order they came.
    Object(Vec<(String, Value)>),
    /// Binary data.
    Binary(Bytes),
}

impl Value {
    /// Converts JSON from the command line: an object whose only key is `$binary`, with a
    /// base64 string, is binary data.
    pub(crate) fn from_json(v: serde_json::Value) -> Result<Self, String> {
        Ok(match v {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Bool(b),
            serde_json::Value::Number(n) => Self::Number(n),
            serde_json::Value::String(s) => Self::String(s),
            serde_json::Value::Array(a) => Self::Array(
                a.into_iter()
                    .map(Self::from_json)
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(m) => {
                if m.len() == 1
                    && let Some(b) = m.get(BINARY_KEY)
                {
                    let text = b
                        .as_str()
                        .ok_or_else(|| format!("{BINARY_KEY} must be a base64 string"))?;
                    let bytes = BASE64
                        .decode(text)
                        .map_err(|e| format!("{BINARY_KEY}: invalid base64: {e}"))?;
                    return Ok(Self::Binary(bytes.into()));
                }
                Self::Object(
                    m.into_iter()
                        .map(|(k, v)| Ok((k, Self::from_json(v)?)))
                        .collect::<Result<_, String>>()?,
                )
            }
        })
    }

    /// The JSON the command line prints: binary as `{"$binary":"<base64>"}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Null => serde_json::Value::Null,
            Self::Bool(b) => serde_json::Value::Bool(*b),
            Self::Number(n) => serde_json::Value::Number(n.clone()),
            Self::String(s) => serde_json::Value::String(s.clone()),
            Self::Array(a) => a.iter().map(Self::to_json).collect(),
            Self::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            Self::Binary(b) => serde_json::json!({ BINARY_KEY: BASE64.encode(b) }),
        }
    }
}

/// The arguments of an event or acknowledgement, as [`Value`]s.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ArgList(pub(crate) Vec<Value>);

impl ArgList {
    /// The command line's JSON: an array is the list of arguments, any other value is one
    /// argument, nothing is no argument.
    pub(crate) fn parse(json: Option<&str>) -> Result<Self, String> {
        let Some(text) = json else {
            return Ok(Self::default());
        };
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON {text:?}: {e}"))?;
        Ok(Self(match Value::from_json(v)? {
            Value::Array(items) => items,
            one => vec![one],
        }))
    }

    /// Reads received arguments; one that does not decode is an error.
    pub(crate) fn from_raw(raw: &RawArgs) -> Result<Self, CodecError> {
        (0..raw.len())
            .map(|i| raw.get::<Value>(i).unwrap_or(Ok(Value::Null)))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The arguments as a JSON array.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        self.0.iter().map(Value::to_json).collect()
    }
}

impl Args for ArgList {
    fn write_to<W: ArgsWriter>(&self, w: &mut W) -> Result<(), CodecError> {
        self.0.iter().try_for_each(|v| w.arg(v))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Number(n) => n.serialize(s),
            Self::String(v) => s.serialize_str(v),
            Self::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                items.iter().try_for_each(|v| seq.serialize_element(v))?;
                seq.end()
            }
            Self::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                entries
                    .iter()
                    .try_for_each(|(k, v)| map.serialize_entry(k, v))?;
                map.end()
            }
            Self::Binary(b) => s.serialize_bytes(b),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// Builds a [`Value`] from whatever the deserializer has.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any Socket.IO argument")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity; JSON.stringify writes them as null.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Binary(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Binary(v.into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Key>()? {
            entries.push((k.0, map.next_value()?));
        }
        Ok(Value::Object(entries))
    }
}

/// A map key: a string, or a number or boolean written as one (MessagePack maps may have
/// such keys; JavaScript would see them as strings).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Key(s)),
            Value::Number(n) => Ok(Key(n.to_string())),
            Value::Bool(b) => Ok(Key(b.to_string())),
            Value::Null => Ok(Key("null".into())),
            _ => Err(de::Error::custom("a map key must be a string or a number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_array_is_several_arguments_anything_else_one() {
        let list = ArgList::parse(Some(r#"[1,"a",[2]]"#)).unwrap();
        assert_eq!(list.to_json(), json!([1, "a", [2]]));
        assert_eq!(list.0.len(), 3);
        let one = ArgList::parse(Some(r#"{"a":1}"#)).unwrap();
        assert_eq!(one.to_json(), json!([{ "a": 1 }]));
        assert_eq!(ArgList::parse(None).unwrap().0.len(), 0);
        assert_eq!(ArgList::parse(Some("[]")).unwrap().0.len(), 0);
        assert!(ArgList::parse(Some("{nope")).is_err());
    }

    #[test]
    fn binary_markers_round_trip() {
        let list = ArgList::parse(Some(r#"[{"file":{"$binary":"AQID"}},"x"]"#)).unwrap();
        assert_eq!(
            list.0[0],
            Value::Object(vec![(
                "file".into(),
                Value::Binary(Bytes::from_static(&[1, 2, 3]))
            )])
        );
        assert_eq!(
            list.to_json(),
            json!([{ "file": { "$binary": "AQID" } }, "x"])
        );
        assert!(ArgList::parse(Some(r#"{"$binary":"%%"}"#)).is_err());
        assert!(ArgList::parse(Some(r#"{"$binary":1}"#)).is_err());
        // With another key it is an ordinary object.
        let plain = ArgList::parse(Some(r#"{"$binary":"AQID","n":1}"#)).unwrap();
        assert!(matches!(plain.0[0], Value::Object(_)));
    }

    #[test]
    fn received_arguments_decode_with_either_parser() {
        use volley_core::Parser;
        let sent = ArgList::parse(Some(
            r#"[{"a":[1,-2,1.5,null,true]},{"$binary":"AAEC"},"é"]"#,
        ))
        .unwrap();
        for parser in [Parser::Json, Parser::MsgPack] {
            let raw = RawArgs::from_args(parser, &sent).unwrap();
            assert_eq!(ArgList::from_raw(&raw).unwrap(), sent, "{parser:?}");
        }
    }

    #[test]
    fn key_order_is_kept() {
        let list = ArgList::parse(Some(r#"{"z":1,"a":2}"#)).unwrap();
        assert_eq!(
            serde_json::to_string(&list.to_json()).unwrap(),
            r#"[{"z":1,"a":2}]"#
        );
    }
}
