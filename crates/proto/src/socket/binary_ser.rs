//! Serializing data with binary parts: byte buffers become placeholders and attachments.
//!
//! [`BinarySerializer`] wraps any serde [`Serializer`] and forwards every call to it, except
//! `serialize_bytes`, which it turns into `{"_placeholder":true,"num":N}` while moving the
//! bytes to the attachment list. Compound serializers are wrapped too, so byte buffers are
//! found at any depth. Wrapped over `serde_json::Serializer`, it writes the JSON text directly,
//! with no intermediate `serde_json::Value`.

use std::cell::RefCell;

use bytes::Bytes;

use super::plain::write_plain;
use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// The key that marks a placeholder object.
pub(crate) const PLACEHOLDER: &str = "_placeholder";
/// The key holding the index of the attachment a placeholder stands for.
pub(crate) const NUM: &str = "num";

/// Serializes `value` as compact JSON into `out`, replacing every byte buffer with a
/// placeholder `{"_placeholder":true,"num":N}` and pushing its bytes onto `attachments`.
///
/// A byte buffer is anything that calls `serialize_bytes`: [`Bytes`], `serde_bytes::ByteBuf`,
/// `#[serde(with = "serde_bytes")]` fields. A plain `Vec<u8>` serializes as an array of
/// numbers, as with `serde_json`. `N` is the index of the buffer in `attachments`, so numbering
/// continues after any attachments already there. Buffers are found anywhere: in structs,
/// maps, sequences, enums and options.
///
/// On error, `out` and `attachments` are left as they were.
///
/// ```
/// use bytes::Bytes;
/// use volley_proto::socket::to_writer_with_binary;
///
/// #[derive(serde::Serialize)]
/// struct File {
///     name: String,
///     content: Bytes,
/// }
///
/// let mut json = Vec::new();
/// let mut attachments = Vec::new();
/// let file = File { name: "a.bin".into(), content: Bytes::from_static(&[1, 2, 3]) };
/// to_writer_with_binary(&mut json, &("upload", file), &mut attachments)?;
/// assert_eq!(json, br#"["upload",{"name":"a.bin","content":{"_placeholder":true,"num":0}}]"#);
/// assert_eq!(attachments, [Bytes::from_static(&[1, 2, 3])]);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn to_writer_with_binary<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    attachments: &mut Vec<Bytes>,
) -> Result<(), serde_json::Error> {
    // A value that is one string is written straight away (escaped eight bytes at a time);
    // anything else is refused at the first call, before a byte is written.
    match write_plain(out, value) {
        true => Ok(()),
        false => to_writer_with_serde_json(out, value, attachments),
    }
}

/// [`to_writer_with_binary`] for all but plain strings (out of line: the plain-string path
/// stays short).
#[inline(never)]
fn to_writer_with_serde_json<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    attachments: &mut Vec<Bytes>,
) -> Result<(), serde_json::Error> {
    let out_len = out.len();
    let attachments_len = attachments.len();
    let found = RefCell::new(std::mem::take(attachments));
    let result = value.serialize(BinarySerializer {
        inner: &mut serde_json::Serializer::new(&mut *out),
        attachments: &found,
    });
    *attachments = found.into_inner();
    if result.is_err() {
        out.truncate(out_len);
        attachments.truncate(attachments_len);
    }
    result
}

/// A serializer that forwards to `inner`, turning byte buffers into placeholders.
struct BinarySerializer<'a, S> {
    inner: S,
    attachments: &'a RefCell<Vec<Bytes>>,
}

/// A value to be serialized through a [`BinarySerializer`] around whatever serializer it is
/// given.
struct Wrap<'a, T: ?Sized> {
    value: &'a T,
    attachments: &'a RefCell<Vec<Bytes>>,
}

impl<T: Serialize + ?Sized> Serialize for Wrap<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(BinarySerializer {
            inner: serializer,
            attachments: self.attachments,
        })
    }
}

/// A compound serializer (sequence, map, struct...) whose elements are wrapped.
struct Compound<'a, C> {
    inner: C,
    attachments: &'a RefCell<Vec<Bytes>>,
}

impl<'a, C> Compound<'a, C> {
    fn wrap<'v, T: ?Sized>(&self, value: &'v T) -> Wrap<'v, T>
    where
        'a: 'v,
    {
        Wrap {
            value,
            attachments: self.attachments,
        }
    }
}

impl<'a, S: Serializer> BinarySerializer<'a, S> {
    fn wrap<'v, T: ?Sized>(&self, value: &'v T) -> Wrap<'v, T>
    where
        'a: 'v,
    {
        Wrap {
            value,
            attachments: self.attachments,
        }
    }
}

macro_rules! forward {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'a, S: Serializer> Serializer for BinarySerializer<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<'a, S::SerializeSeq>;
    type SerializeTuple = Compound<'a, S::SerializeTuple>;
    type SerializeTupleStruct = Compound<'a, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<'a, S::SerializeTupleVariant>;
    type SerializeMap = Compound<'a, S::SerializeMap>;
    type SerializeStruct = Compound<'a, S::SerializeStruct>;
    type SerializeStructVariant = Compound<'a, S::SerializeStructVariant>;

    forward! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_unit_struct(&'static str);
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        let num = {
            let mut attachments = self.attachments.borrow_mut();
            attachments.push(Bytes::copy_from_slice(v));
            attachments.len() - 1
        };
        let mut map = self.inner.serialize_map(Some(2))?;
        map.serialize_entry(PLACEHOLDER, &true)?;
        map.serialize_entry(NUM, &num)?;
        map.end()
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let value = self.wrap(value);
        self.inner.serialize_some(&value)
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, index, variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = self.wrap(value);
        self.inner.serialize_newtype_struct(name, &value)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = self.wrap(value);
        self.inner
            .serialize_newtype_variant(name, index, variant, &value)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        let attachments = self.attachments;
        let c = self.inner.serialize_seq(len)?;
        Ok(Compound {
            inner: c,
            attachments,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        let attachments = self.attachments;
        let c = self.inner.serialize_tuple(len)?;
        Ok(Compound {
            inner: c,
            attachments,
        })
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        let attachments = self.attachments;
        let c = self.inner.serialize_tuple_struct(name, len)?;
        Ok(Compound {
            inner: c,
            attachments,
        })
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        let attachments = self.attachments;
        let c = self
            .inner
            .serialize_tuple_variant(name, index, variant, len)?;
        Ok(Compound {
            inner: c,
            attachments,
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let attachments = self.attachments;
        let c = self.inner.serialize_map(len)?;
        Ok(Compound {
            inner: c,
            attachments,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let attachments = self.attachments;
        let c = self.inner.serialize_struct(name, len)?;
        Ok(Compound {
            inner: c,
            attachments,
        })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let attachments = self.attachments;
        let c = self
            .inner
            .serialize_struct_variant(name, index, variant, len)?;
        Ok(Compound {
            inner: c,
            attachments,
        })
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

impl<C: SerializeSeq> SerializeSeq for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_element(&value)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeTuple> SerializeTuple for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_element(&value)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeTupleStruct> SerializeTupleStruct for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(&value)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeTupleVariant> SerializeTupleVariant for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(&value)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeMap> SerializeMap for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    // Keys are not wrapped: a byte buffer cannot be a JSON key, and the inner serializer says
    // so without an attachment being recorded for it.
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.inner.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_value(&value)
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_entry(key, &value)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeStruct> SerializeStruct for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(key, &value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.inner.skip_field(key)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: SerializeStructVariant> SerializeStructVariant for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(key, &value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.inner.skip_field(key)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}
