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
