//! Deserializing data with binary parts: placeholders become the attachments they stand for.

use bytes::Bytes;
use serde::de::value::{BorrowedStrDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

use super::binary_ser::{NUM, PLACEHOLDER};
use super::plain::from_plain_string;

type Error = serde_json::Error;

/// Deserializes a `T` from JSON text whose placeholders `{"_placeholder":true,"num":N}` stand
/// for `attachments[N]`.
///
/// A placeholder is handed to the target as bytes (`visit_bytes` / `visit_byte_buf`), so
/// [`Bytes`], `serde_bytes::ByteBuf` and `#[serde(with = "serde_bytes")]` fields receive the
/// attachment, at any depth; a `Vec<u8>` or `[u8; N]` (which ask for a sequence) receives it as
/// a sequence of bytes. An object whose `_placeholder` is `true` but whose `num` is not the
/// index of an attachment is an error.
///
/// With no attachments this is just [`serde_json::from_slice`]. Otherwise the text is first
/// parsed into a [`serde_json::Value`]. A target that cannot hold bytes, such as
/// `serde_json::Value` itself, fails on a placeholder.
///
/// ```
/// use bytes::Bytes;
/// use volley_proto::socket::from_slice_with_binary;
///
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct File {
///     name: String,
///     content: Bytes,
/// }
///
/// let json = br#"{"name":"a.bin","content":{"_placeholder":true,"num":0}}"#;
/// let file: File = from_slice_with_binary(json, &[Bytes::from_static(&[1, 2, 3])])?;
/// assert_eq!(file, File { name: "a.bin".into(), content: Bytes::from_static(&[1, 2, 3]) });
///
/// let bad = br#"{"name":"a.bin","content":{"_placeholder":true,"num":1}}"#;
/// assert!(from_slice_with_binary::<File>(bad, &[Bytes::new()]).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn from_slice_with_binary<T: DeserializeOwned>(
    json: &[u8],
    attachments: &[Bytes],
) -> Result<T, serde_json::Error> {
    // A string with nothing escaped (a chat message, an id...) is its own value.
    match from_plain_string(json) {
        Some(value) => Ok(value),
        None => from_slice_with_serde_json(json, attachments),
    }
}

/// [`from_slice_with_binary`] for all but plain strings (out of line: the plain-string path
/// stays short).
#[inline(never)]
fn from_slice_with_serde_json<T: DeserializeOwned>(
    json: &[u8],
    attachments: &[Bytes],
) -> Result<T, serde_json::Error> {
    if attachments.is_empty() {
        return serde_json::from_slice(json);
    }
    let value: Value = serde_json::from_slice(json)?;
    T::deserialize(BinaryDeserializer {
        value: &value,
        attachments,
    })
}

/// Deserializes from a parsed JSON value, replacing placeholders by attachments.
#[derive(Clone, Copy)]
struct BinaryDeserializer<'de> {
    value: &'de Value,
    attachments: &'de [Bytes],
}

/// The attachment a placeholder object stands for, `None` if `map` is not a placeholder.
fn placeholder<'de>(
    map: &Map<String, Value>,
    attachments: &'de [Bytes],
) -> Result<Option<&'de Bytes>, Error> {
    if map.get(PLACEHOLDER) != Some(&Value::Bool(true)) {
        return Ok(None);
    }
    map.get(NUM)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .and_then(|n| attachments.get(n))
        .map(Some)
        .ok_or_else(|| {
            de::Error::custom(format_args!(
                "invalid attachment placeholder: {} attachment(s) available",
                attachments.len()
            ))
        })
}

impl<'de> BinaryDeserializer<'de> {
    fn attachment(&self) -> Result<Option<&'de Bytes>, Error> {
        match self.value {
            Value::Object(map) => placeholder(map, self.attachments),
            _ => Ok(None),
        }
    }

    fn unexpected(&self) -> de::Unexpected<'_> {
        match self.value {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    de::Unexpected::Unsigned(u)
                } else if let Some(i) = n.as_i64() {
                    de::Unexpected::Signed(i)
                } else {
                    de::Unexpected::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => de::Unexpected::Str(s),
            Value::Array(_) => de::Unexpected::Seq,
            Value::Object(_) => de::Unexpected::Map,
        }
    }
}

impl<'de> Deserializer<'de> for BinaryDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else if let Some(f) = n.as_f64() {
                    visitor.visit_f64(f)
                } else {
                    Err(de::Error::custom("unrepresentable number"))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut seq = Seq {
                    iter: items.iter(),
                    attachments: self.attachments,
                };
                let value = visitor.visit_seq(&mut seq)?;
                match seq.iter.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(
                        items.len(),
                        &"fewer elements in array",
                    )),
                }
            }
            Value::Object(map) => {
                if let Some(bytes) = placeholder(map, self.attachments)? {
                    return visitor.visit_borrowed_bytes(bytes);
                }
                let mut access = Entries {
                    iter: map.iter(),
                    value: None,
                    attachments: self.attachments,
                };
                let value = visitor.visit_map(&mut access)?;
                match access.iter.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(
                        map.len(),
                        &"fewer elements in map",
                    )),
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.attachment()? {
            Some(bytes) => visitor.visit_borrowed_bytes(bytes),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.attachment()? {
            Some(bytes) => visitor.visit_byte_buf(bytes.to_vec()),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.attachment()? {
            Some(bytes) => {
                SeqDeserializer::<_, Error>::new(bytes.iter().copied()).deserialize_any(visitor)
            }
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::String(s) => visitor.visit_enum(BorrowedStrDeserializer::<Error>::new(s)),
            Value::Object(map) if map.len() == 1 => {
                let Some((variant, value)) = map.iter().next() else {
                    return Err(de::Error::custom("empty enum object"));
                };
                visitor.visit_enum(Enum {
                    variant,
                    value,
                    attachments: self.attachments,
                })
            }
            _ => Err(de::Error::invalid_type(
                self.unexpected(),
                &"a string or an object with a single key",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        tuple_struct map struct identifier
    }
}

/// The elements of an array.
struct Seq<'de> {
    iter: std::slice::Iter<'de, Value>,
    attachments: &'de [Bytes],
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some(value) => seed
                .deserialize(BinaryDeserializer {
                    value,
                    attachments: self.attachments,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// The entries of an object.
struct Entries<'de> {
    iter: serde_json::map::Iter<'de>,
    value: Option<&'de Value>,
    attachments: &'de [Bytes],
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(Key(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(BinaryDeserializer {
                value,
                attachments: self.attachments,
            }),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An object key: a string, also readable as a number or a bool as `serde_json` allows
/// (`HashMap<u32, _>`).
struct Key<'de>(&'de str);

macro_rules! parsed_key {
    ($($method:ident => $visit:ident: $ty:ty,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                match self.0.parse::<$ty>() {
                    Ok(v) => visitor.$visit(v),
                    Err(_) => visitor.visit_borrowed_str(self.0),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Key<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    parsed_key! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(BorrowedStrDeserializer::<Error>::new(self.0))
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// An enum written as `{"Variant": content}`.
struct Enum<'de> {
    variant: &'de str,
    value: &'de Value,
    attachments: &'de [Bytes],
}

impl<'de> EnumAccess<'de> for Enum<'de> {
    type Error = Error;
    type Variant = BinaryDeserializer<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let variant = seed.deserialize(Key(self.variant))?;
        Ok((
            variant,
            BinaryDeserializer {
                value: self.value,
                attachments: self.attachments,
            },
        ))
    }
}

impl<'de> VariantAccess<'de> for BinaryDeserializer<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            Value::Null => Ok(()),
            _ => Err(de::Error::invalid_type(self.unexpected(), &"unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(_) => self.deserialize_any(visitor),
            _ => Err(de::Error::invalid_type(self.unexpected(), &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(_) | Value::Array(_) => self.deserialize_any(visitor),
            _ => Err(de::Error::invalid_type(
                self.unexpected(),
                &"struct variant",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::socket::to_writer_with_binary;

    /// A byte buffer the way `serde_bytes::ByteBuf` is one: `serialize_bytes`,
    /// `deserialize_byte_buf`.
    #[derive(Debug, Clone, PartialEq)]
    struct Buf(Vec<u8>);

    impl Serialize for Buf {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    impl<'de> Deserialize<'de> for Buf {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Buf;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Buf, E> {
                    Ok(Buf(v.to_vec()))
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Buf, E> {
                    Ok(Buf(v))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        New(Bytes),
        Tuple(u8, Bytes),
        Struct { b: Bytes, n: i32 },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Inner {
        list: Vec<Bytes>,
        map: BTreeMap<String, Bytes>,
        by_id: HashMap<u32, Buf>,
        opt: Option<Bytes>,
        none: Option<Bytes>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Outer {
        a: Bytes,
        inner: Inner,
        shapes: Vec<Shape>,
        tuple: (Bytes, u32),
        buf: Buf,
        plain: Vec<u8>,
        from_binary: Vec<u8>,
        array: [u8; 3],
        text: String,
        unit: (),
        newtype: Wrapper,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Wrapper(Bytes);

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    fn roundtrip<T: Serialize + DeserializeOwned>(value: &T) -> (String, Vec<Bytes>, T) {
        let mut json = Vec::new();
        let mut attachments = Vec::new();
        to_writer_with_binary(&mut json, value, &mut attachments).unwrap();
        let back = from_slice_with_binary(&json, &attachments).unwrap();
        (String::from_utf8(json).unwrap(), attachments, back)
    }

    #[test]
    fn nested_bytes_round_trip() {
        let outer = Outer {
            a: b(&[1]),
            inner: Inner {
                list: vec![b(&[2]), b(&[]), b(&[3, 3])],
                map: [("x".to_owned(), b(&[4])), ("y".to_owned(), b(&[5]))].into(),
                by_id: [(7, Buf(vec![6])), (8, Buf(vec![]))].into(),
                opt: Some(b(&[7])),
                none: None,
            },
            shapes: vec![
                Shape::Unit,
                Shape::New(b(&[8])),
                Shape::Tuple(9, b(&[9])),
                Shape::Struct { b: b(&[10]), n: -1 },
            ],
            tuple: (b(&[11]), 12),
            buf: Buf(vec![13]),
            plain: vec![14, 15],
            from_binary: vec![],
            array: [1, 2, 3],
            text: "é😀\u{2028}\"".into(),
            unit: (),
            newtype: Wrapper(b(&[16])),
        };
        let (json, attachments, back) = roundtrip(&outer);
        assert_eq!(back, outer);
        // 1 + 3 + 2 + 2 + 1 + 3 + 1 + 1 + 1 buffers; the plain Vec<u8> is an array of numbers.
        assert_eq!(attachments.len(), 15, "{json}");
        assert!(json.contains(r#""plain":[14,15]"#), "{json}");
        assert!(
            json.contains(r#""a":{"_placeholder":true,"num":0}"#),
            "{json}"
        );
        assert!(
            json.contains(r#"{"New":{"_placeholder":true,"num":"#),
            "{json}"
        );
        assert!(json.contains(r#""none":null"#), "{json}");
    }

    #[test]
    fn exact_text() {
        let mut json = Vec::new();
        let mut attachments = Vec::new();
        let value = ("message-back", b(&[1, 2, 3]), b(&[4, 5, 6]));
        to_writer_with_binary(&mut json, &value, &mut attachments).unwrap();
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(attachments, [b(&[1, 2, 3]), b(&[4, 5, 6])]);

        // Numbering continues after attachments already present, and `out` is appended to.
        to_writer_with_binary(&mut json, &[b(&[7])], &mut attachments).unwrap();
        assert!(json.ends_with(br#"[{"_placeholder":true,"num":2}]"#));
        assert_eq!(attachments.len(), 3);

        // No buffer: plain JSON.
        let mut json = Vec::new();
        to_writer_with_binary(
            &mut json,
            &serde_json::json!({"a":[1,"x",null]}),
            &mut attachments,
        )
        .unwrap();
        assert_eq!(json, br#"{"a":[1,"x",null]}"#);
    }

    #[test]
    fn errors_leave_output_unchanged() {
        let mut json = b"keep".to_vec();
        let mut attachments = vec![b(&[0])];
        // A map key that JSON cannot have, after a buffer was already taken.
        let bad: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let value = (b(&[1]), bad);
        assert!(to_writer_with_binary(&mut json, &value, &mut attachments).is_err());
        assert_eq!(json, b"keep");
        assert_eq!(attachments, [b(&[0])]);
        // A byte buffer as a key is refused without recording an attachment.
        let bad: BTreeMap<Bytes, u8> = [(b(&[1]), 3)].into();
        assert!(to_writer_with_binary(&mut json, &bad, &mut attachments).is_err());
        assert_eq!(attachments, [b(&[0])]);
    }

    #[test]
    fn placeholder_targets() {
        let att = [b(&[1, 2, 3]), b(&[4])];
        let ph = br#"{"_placeholder":true,"num":0}"#;
        assert_eq!(from_slice_with_binary::<Bytes>(ph, &att).unwrap(), att[0]);
        assert_eq!(
            from_slice_with_binary::<Buf>(ph, &att).unwrap(),
            Buf(vec![1, 2, 3])
        );
        assert_eq!(
            from_slice_with_binary::<Vec<u8>>(ph, &att).unwrap(),
            [1, 2, 3]
        );
        assert_eq!(
            from_slice_with_binary::<[u8; 3]>(ph, &att).unwrap(),
            [1, 2, 3]
        );
        assert!(from_slice_with_binary::<[u8; 2]>(ph, &att).is_err());
        assert_eq!(
            from_slice_with_binary::<Option<Bytes>>(ph, &att).unwrap(),
            Some(att[0].clone())
        );
        assert_eq!(
            from_slice_with_binary::<Wrapper>(br#"{"_placeholder":true,"num":1}"#, &att).unwrap(),
            Wrapper(att[1].clone())
        );
        // Extra keys are ignored, as socket.io-parser does.
        let extra = br#"{"num":1,"x":2,"_placeholder":true}"#;
        assert_eq!(
            from_slice_with_binary::<Bytes>(extra, &att).unwrap(),
            att[1]
        );
        // Not a placeholder: `_placeholder` is not `true`.
        let not = br#"{"_placeholder":false,"num":0}"#;
        let map: BTreeMap<String, serde_json::Value> = from_slice_with_binary(not, &att).unwrap();
        assert_eq!(map.len(), 2);
        assert!(from_slice_with_binary::<Bytes>(not, &att).is_err());
        // Ordinary data is untouched by the attachment path.
        let v: (u8, i64, f64, String, bool, Option<u8>, Bytes) =
            from_slice_with_binary(br#"[1,-2,0.5,"s",true,null,[9,8]]"#, &att).unwrap();
        assert_eq!(v, (1, -2, 0.5, "s".into(), true, None, b(&[9, 8])));
        let v: serde_json::Value =
            from_slice_with_binary(br#"{"a":[1,{"b":null}]}"#, &att).unwrap();
        assert_eq!(v, serde_json::json!({"a":[1,{"b":null}]}));
        // serde_json::Value cannot hold bytes.
        assert!(from_slice_with_binary::<serde_json::Value>(ph, &att).is_err());
        // Untagged enums buffer the content; bytes survive.
        #[derive(Debug, PartialEq, Deserialize)]
        #[serde(untagged)]
        enum Either {
            Data { data: Bytes },
            Text(String),
        }
        let v: Vec<Either> =
            from_slice_with_binary(br#"[{"data":{"_placeholder":true,"num":1}},"t"]"#, &att)
                .unwrap();
        assert_eq!(
            v,
            [
                Either::Data {
                    data: att[1].clone()
                },
                Either::Text("t".into())
            ]
        );
        // Enums as strings and single-key objects; map keys as numbers.
        let v: Vec<Shape> = from_slice_with_binary(
            br#"["Unit",{"New":{"_placeholder":true,"num":1}},{"Tuple":[3,{"_placeholder":true,"num":0}]}]"#,
            &att,
        )
        .unwrap();
        assert_eq!(
            v,
            [
                Shape::Unit,
                Shape::New(att[1].clone()),
                Shape::Tuple(3, att[0].clone())
            ]
        );
        let v: HashMap<i16, Bytes> =
            from_slice_with_binary(br#"{"-3":{"_placeholder":true,"num":1}}"#, &att).unwrap();
        assert_eq!(v[&-3], att[1]);
        assert!(from_slice_with_binary::<HashMap<u8, u8>>(br#"{"x":1}"#, &att).is_err());
        // Lengths must match exactly.
        assert!(from_slice_with_binary::<(u8, u8)>(b"[1,2,3]", &att).is_err());
        assert!(from_slice_with_binary::<(u8, u8)>(b"[1]", &att).is_err());
    }

    #[test]
    fn bad_placeholders_are_errors() {
        let att = [b(&[1])];
        for bad in [
            &br#"{"_placeholder":true,"num":1}"#[..],
            br#"{"_placeholder":true,"num":-1}"#,
            br#"{"_placeholder":true,"num":0.5}"#,
            br#"{"_placeholder":true,"num":"0"}"#,
            br#"{"_placeholder":true}"#,
            br#"{"_placeholder":true,"num":18446744073709551615}"#,
        ] {
            let text = String::from_utf8_lossy(bad);
            assert!(
                from_slice_with_binary::<Bytes>(bad, &att).is_err(),
                "{text}"
            );
            // Also when the target is not bytes at all.
            assert!(
                from_slice_with_binary::<BTreeMap<String, serde_json::Value>>(bad, &att).is_err(),
                "{text}"
            );
            assert!(
                from_slice_with_binary::<Vec<u8>>(bad, &att).is_err(),
                "{text}"
            );
        }
        // Invalid JSON and trailing garbage.
        assert!(from_slice_with_binary::<Bytes>(b"{", &att).is_err());
        assert!(from_slice_with_binary::<u8>(b"1 x", &att).is_err());
        assert!(from_slice_with_binary::<u8>(b"1 x", &[]).is_err());
        // Without attachments, a placeholder is just an object.
        let ph = br#"{"_placeholder":true,"num":0}"#;
        assert!(from_slice_with_binary::<Bytes>(ph, &[]).is_err());
        let v: serde_json::Value = from_slice_with_binary(ph, &[]).unwrap();
        assert_eq!(v["num"], 0);
    }

    /// A tree of values with byte buffers at any depth.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Node {
        Leaf(Bytes),
        Num(i64),
        Str(String),
        List(Vec<Node>),
        Map(BTreeMap<String, Node>),
        Opt(Option<Box<Node>>),
        Pair { left: Box<Node>, right: Bytes },
    }

    fn node() -> impl Strategy<Value = Node> {
        let leaf = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..8).prop_map(|v| Node::Leaf(Bytes::from(v))),
            any::<i64>().prop_map(Node::Num),
            any::<String>().prop_map(Node::Str),
            Just(Node::Opt(None)),
        ];
        leaf.prop_recursive(5, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Node::List),
                prop::collection::btree_map(any::<String>(), inner.clone(), 0..4)
                    .prop_map(Node::Map),
                inner.clone().prop_map(|n| Node::Opt(Some(Box::new(n)))),
                (inner, prop::collection::vec(any::<u8>(), 0..4)).prop_map(|(n, b)| {
                    Node::Pair {
                        left: Box::new(n),
                        right: Bytes::from(b),
                    }
                }),
            ]
        })
    }

    fn count_buffers(n: &Node) -> usize {
        match n {
            Node::Leaf(_) => 1,
            Node::Num(_) | Node::Str(_) | Node::Opt(None) => 0,
            Node::List(l) => l.iter().map(count_buffers).sum(),
            Node::Map(m) => m.values().map(count_buffers).sum(),
            Node::Opt(Some(n)) => count_buffers(n),
            Node::Pair { left, .. } => count_buffers(left) + 1,
        }
    }

    proptest! {
        #[test]
        fn binary_round_trip(tree in node()) {
            let (json, attachments, back) = roundtrip(&tree);
            prop_assert_eq!(&back, &tree);
            prop_assert_eq!(attachments.len(), count_buffers(&tree));
            // The text is plain JSON.
            prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
        }

        #[test]
        fn binary_event_through_packet_and_reassembler(name in any::<String>(), tree in node()) {
            use crate::socket::{encode_header, PacketData, PacketType, Reassembler};
            let mut json = Vec::new();
            let mut attachments = Vec::new();
            to_writer_with_binary(&mut json, &(&name, &tree), &mut attachments).unwrap();
            let kind = if attachments.is_empty() { PacketType::Event } else { PacketType::BinaryEvent };
            let mut out = bytes::BytesMut::new();
            encode_header(&mut out, kind, attachments.len(), "/ns", Some(3));
            out.extend_from_slice(&json);
            let mut r = Reassembler::default();
            let mut got = r.push_text(out.freeze()).unwrap();
            for a in &attachments {
                prop_assert!(got.is_none());
                got = r.push_binary(a.clone()).unwrap();
            }
            let packet = got.unwrap();
            prop_assert_eq!(&packet.attachments, &attachments);
            let PacketData::Event { name: got_name, args } = &packet.data else {
                return Err(TestCaseError::fail("not an event"));
            };
            prop_assert_eq!(got_name, &name);
            prop_assert_eq!(args.len(), 1);
            let back: Node = from_slice_with_binary(&args[0], &packet.attachments).unwrap();
            prop_assert_eq!(back, tree);
        }
    }
}
