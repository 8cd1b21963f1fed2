//! Byte sequences given as an event argument (`Vec<u8>`, `&[u8]`, `[u8; N]`) are sent as
//! binary, as a JavaScript `Buffer` would be, rather than as a JSON array of numbers (serde
//! serializes them as sequences of `u8`; only `Bytes` and `serde_bytes` say "bytes").
//!
//! [`as_byte_seq`] asks the value's `Serialize` whether it is a non-empty sequence whose every
//! element is a `u8`: a probe serializer that stops at the first thing that is not.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// The bytes of `value` if it serializes as a non-empty sequence of `u8`.
pub(super) fn as_byte_seq<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u8>> {
    value.serialize(Top).ok().filter(|b| !b.is_empty())
}

/// "Not a byte sequence": the probe's only error.
#[derive(Debug)]
struct No;

impl fmt::Display for No {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a byte sequence")
    }
}

impl std::error::Error for No {}

impl ser::Error for No {
    fn custom<T: fmt::Display>(_: T) -> Self {
        No
    }
}

/// Declares the serializer methods a probe answers `No` to.
macro_rules! reject {
    ($($name:ident($($arg:ty),*);)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<Self::Ok, No> { Err(No) })*
    };
}

macro_rules! reject_common {
    () => {
        reject! {
            serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
            serialize_i64(i64); serialize_u16(u16); serialize_u32(u32); serialize_u64(u64);
            serialize_f32(f32); serialize_f64(f64); serialize_char(char); serialize_str(&str);
            serialize_bytes(&[u8]); serialize_none(); serialize_unit();
            serialize_unit_struct(&'static str);
            serialize_unit_variant(&'static str, u32, &'static str);
        }
        fn serialize_some<V: Serialize + ?Sized>(self, _: &V) -> Result<Self::Ok, No> {
            Err(No)
        }
        fn serialize_newtype_struct<V: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: &V,
        ) -> Result<Self::Ok, No> {
            Err(No)
        }
        fn serialize_newtype_variant<V: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &V,
        ) -> Result<Self::Ok, No> {
            Err(No)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, No> {
            Err(No)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, No> {
            Err(No)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, No> {
            Err(No)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, No> {
            Err(No)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, No> {
            Err(No)
        }
    };
}

/// The argument itself: a sequence or a tuple (arrays) of `u8`, or not.
struct Top;

/// The bytes collected so far.
struct Seq(Vec<u8>);

impl ser::Serializer for Top {
    type Ok = Vec<u8>;
    type Error = No;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Impossible<Vec<u8>, No>;
    type SerializeTupleVariant = Impossible<Vec<u8>, No>;
    type SerializeMap = Impossible<Vec<u8>, No>;
    type SerializeStruct = Impossible<Vec<u8>, No>;
    type SerializeStructVariant = Impossible<Vec<u8>, No>;

    reject_common!();
    reject! { serialize_u8(u8); }

    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, No> {
        Ok(Seq(Vec::with_capacity(len.unwrap_or(0))))
    }

    fn serialize_tuple(self, len: usize) -> Result<Seq, No> {
        Ok(Seq(Vec::with_capacity(len)))
    }
}

impl ser::SerializeSeq for Seq {
    type Ok = Vec<u8>;
    type Error = No;

    fn serialize_element<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), No> {
        self.0.push(value.serialize(Element)?);
        Ok(())
    }

    fn end(self) -> Result<Vec<u8>, No> {
        Ok(self.0)
    }
}

impl ser::SerializeTuple for Seq {
    type Ok = Vec<u8>;
    type Error = No;

    fn serialize_element<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), No> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Vec<u8>, No> {
        Ok(self.0)
    }
}

/// One element: a `u8`, or not.
struct Element;

impl ser::Serializer for Element {
    type Ok = u8;
    type Error = No;
    type SerializeSeq = Impossible<u8, No>;
    type SerializeTuple = Impossible<u8, No>;
    type SerializeTupleStruct = Impossible<u8, No>;
    type SerializeTupleVariant = Impossible<u8, No>;
    type SerializeMap = Impossible<u8, No>;
    type SerializeStruct = Impossible<u8, No>;
    type SerializeStructVariant = Impossible<u8, No>;

    reject_common!();

    fn serialize_u8(self, v: u8) -> Result<u8, No> {
        Ok(v)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, No> {
        Err(No)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, No> {
        Err(No)
    }
}

#[cfg(test)]
mod tests {
    use super::as_byte_seq;

    #[test]
    fn only_sequences_of_u8_are_bytes() {
        assert_eq!(as_byte_seq(&vec![1u8, 2, 3]), Some(vec![1, 2, 3]));
        assert_eq!(as_byte_seq(&[7u8, 8][..]), Some(vec![7, 8]));
        assert_eq!(as_byte_seq(&[9u8; 2]), Some(vec![9, 9]));
        assert_eq!(as_byte_seq(&Vec::<u8>::new()), None);
        assert_eq!(as_byte_seq(&vec![1u32, 2]), None);
        assert_eq!(as_byte_seq(&vec![1i64]), None);
        assert_eq!(as_byte_seq(&serde_json::json!([1, 2])), None);
        assert_eq!(as_byte_seq("ab"), None);
        assert_eq!(as_byte_seq(&(1u8, 2u8)), Some(vec![1, 2]));
        assert_eq!(as_byte_seq(&(1u8, "x")), None);
        assert_eq!(as_byte_seq(&vec![vec![1u8]]), None);
    }
}
