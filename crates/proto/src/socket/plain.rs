//! Plain strings (JSON strings with nothing escaped, the usual chat message or id) decoded
//! and encoded without serde_json, with exactly serde_json's results.

use serde::ser::{self, Impossible, Serialize, Serializer};

use super::json_str::{plain_string, write_json_str};
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::forward_to_deserialize_any;

/// `deserialize_<kind>` methods that leave the value to serde_json (which refuses a string
/// there, with its position in the error).
macro_rules! refuse {
    ($($method:ident($($arg:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $(_: $arg,)* _: V) -> Result<V::Value, Fallback> {
                Err(Fallback)
            }
        )*
    };
}

/// `json` deserialized as a `T` without serde_json, if it is a JSON string with nothing escaped
/// and `T` takes it the way serde_json hands it over (a string, bytes, an option, a newtype, a
/// unit enum variant). `None` means: ask serde_json (which also tells why a value is refused).
pub(crate) fn from_plain_string<T: DeserializeOwned>(json: &[u8]) -> Option<T> {
    T::deserialize(PlainStr(plain_string(json)?)).ok()
}

/// The content of a JSON string without escapes, deserialized as serde_json's `Deserializer`
/// would on the same text, for every kind of target that it can take; any other kind says
/// [`Fallback`] and serde_json decides.
struct PlainStr<'de>(&'de str);

/// serde_json's name for [`RawValue`](serde_json::value::RawValue)'s newtype (the raw text,
/// quotes included, is what such a target gets: left to serde_json).
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Not decoded here: serde_json decides.
#[derive(Debug)]
struct Fallback;

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a plain string target")
    }
}

impl std::error::Error for Fallback {}

impl de::Error for Fallback {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Fallback
    }
}

impl<'de> Deserializer<'de> for PlainStr<'de> {
    type Error = Fallback;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        visitor.visit_borrowed_bytes(self.0.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Fallback> {
        if name == RAW_VALUE_TOKEN {
            return Err(Fallback);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Fallback> {
        // A unit variant named by the string; serde's access refuses the other kinds.
        visitor.visit_enum(BorrowedStrDeserializer::new(self.0))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Fallback> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        str string char identifier
    }

    refuse! {
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_unit();
        deserialize_seq();
        deserialize_map();
        deserialize_unit_struct(&'static str);
        deserialize_tuple(usize);
        deserialize_tuple_struct(&'static str, usize);
        deserialize_struct(&'static str, &'static [&'static str]);
    }
}

impl ser::Error for Fallback {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Fallback
    }
}

/// Writes `value` as JSON into `out` if it serializes as one string (a `str`, `String`,
/// `char`, unit enum variant, or one of those in a `Some` or a newtype), escaped as serde_json
/// would, and returns `true`; otherwise writes nothing and returns `false`, the first call to
/// the serializer being refused (a struct, a map, a number...).
pub(crate) fn write_plain<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> bool {
    value.serialize(StrWriter(out)).is_ok()
}

/// A serializer for values that are one string, refusing everything else before it writes.
struct StrWriter<'a>(&'a mut Vec<u8>);

type Refused = Impossible<(), Fallback>;

/// `serialize_<kind>` methods that refuse.
macro_rules! refuse_ser {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(
            fn $method(self, $(_: $arg),*) -> Result<$ok, Fallback> {
                Err(Fallback)
            }
        )*
    };
}

impl Serializer for StrWriter<'_> {
    type Ok = ();
    type Error = Fallback;
    type SerializeSeq = Refused;
    type SerializeTuple = Refused;
    type SerializeTupleStruct = Refused;
    type SerializeTupleVariant = Refused;
    type SerializeMap = Refused;
    type SerializeStruct = Refused;
    type SerializeStructVariant = Refused;

    fn serialize_str(self, v: &str) -> Result<(), Fallback> {
        write_json_str(self.0, v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Fallback> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Fallback> {
        self.serialize_str(variant)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Fallback> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Fallback> {
        value.serialize(self)
    }

    refuse_ser! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_seq(Option<usize>) -> Refused;
        serialize_tuple(usize) -> Refused;
        serialize_tuple_struct(&'static str, usize) -> Refused;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Refused;
        serialize_map(Option<usize>) -> Refused;
        serialize_struct(&'static str, usize) -> Refused;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Refused;
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Fallback> {
        Err(Fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::super::json_str::is_special;
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    enum Kind {
        Plain,
        #[serde(rename = "x y")]
        Spaced,
        Newtype(String),
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Name(String);

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    struct Point {
        x: i32,
    }

    /// What `from_slice_with_binary` (which tries the plain-string path first) makes of
    /// `json` as a `T` is what serde_json makes of it, error messages included; `fast` says
    /// whether the plain-string path decided.
    fn same<T>(json: &str, fast: bool)
    where
        T: DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let ours = super::super::from_slice_with_binary::<T>(json.as_bytes(), &[]);
        let theirs = serde_json::from_slice::<T>(json.as_bytes());
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{json}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{json}"),
            _ => panic!("{json}: {ours:?} against serde_json's {theirs:?}"),
        }
        assert_eq!(
            from_plain_string::<T>(json.as_bytes()).is_some(),
            fast,
            "{json}"
        );
    }

    #[test]
    fn decodes_plain_strings_as_serde_json_does() {
        for json in [
            r#""""#,
            r#""hello""#,
            r#""x y""#,
            r#""Plain""#,
            r#""é😀""#,
            r#""7""#,
        ] {
            same::<serde_json::Value>(json, true);
            same::<String>(json, true);
            same::<Option<String>>(json, true);
            same::<Name>(json, true);
            same::<bytes::Bytes>(json, true);
            same::<Box<str>>(json, true);
            same::<std::borrow::Cow<'static, str>>(json, true);
            same::<serde::de::IgnoredAny>(json, true);
            same::<Vec<u8>>(json, false);
            same::<u64>(json, false);
            same::<bool>(json, false);
            same::<()>(json, false);
            same::<Point>(json, false);
            same::<(String,)>(json, false);
            same::<std::collections::HashMap<String, i32>>(json, false);
            same::<Option<Point>>(json, false);
            // The raw text, quotes included.
            let raw: Box<serde_json::value::RawValue> =
                super::super::from_slice_with_binary(json.as_bytes(), &[]).unwrap();
            assert_eq!(raw.get(), json);
        }
        same::<Kind>(r#""Plain""#, true);
        same::<Kind>(r#""x y""#, true);
        same::<Kind>(r#""Newtype""#, false);
        same::<Kind>(r#""Other""#, false);
        same::<char>(r#""é""#, true);
        same::<char>(r#""ab""#, false);
        // Escaped, spaced or not strings at all: serde_json's.
        for json in [
            r#""a\nb""#,
            r#" "a""#,
            r#""a" "#,
            "1",
            "null",
            r#"["a"]"#,
            r#"{"x":1}"#,
        ] {
            same::<serde_json::Value>(json, false);
            same::<String>(json, false);
            same::<Option<String>>(json, false);
        }
    }

    #[derive(serde::Serialize)]
    enum Status {
        Ready,
        Busy(u8),
    }

    #[derive(serde::Serialize)]
    struct Id(&'static str);

    /// What `write_plain` writes, if it takes `value`, is serde_json's text; `fast` says
    /// whether it takes it.
    fn writes_like_serde_json<T: Serialize + ?Sized>(value: &T, fast: bool) {
        let mut out = b"[".to_vec();
        assert_eq!(write_plain(&mut out, value), fast);
        if fast {
            assert_eq!(out[1..], serde_json::to_vec(value).unwrap());
        } else {
            assert_eq!(out, b"[");
        }
    }

    #[test]
    fn writes_strings_as_serde_json_does() {
        writes_like_serde_json("a\"b\\c\n\u{1}é😀\u{7f}", true);
        writes_like_serde_json(&"echo".to_owned(), true);
        writes_like_serde_json(&serde_json::json!("x\ty"), true);
        writes_like_serde_json(&Some("x"), true);
        writes_like_serde_json(&'"', true);
        writes_like_serde_json(&Status::Ready, true);
        writes_like_serde_json(&Id("a/b"), true);
        writes_like_serde_json(&std::borrow::Cow::Borrowed("c"), true);
        writes_like_serde_json(&Status::Busy(1), false);
        writes_like_serde_json(&None::<&str>, false);
        writes_like_serde_json(&serde_json::json!({"a": "b"}), false);
        writes_like_serde_json(&serde_json::json!(["a"]), false);
        writes_like_serde_json(&serde_json::json!(null), false);
        writes_like_serde_json(&1, false);
        writes_like_serde_json(&true, false);
        writes_like_serde_json(&Point { x: 1 }, false);
        writes_like_serde_json(&("a",), false);
        writes_like_serde_json(
            &serde_json::value::RawValue::from_string("\"a\"".into()).unwrap(),
            false,
        );
        writes_like_serde_json(&bytes::Bytes::from_static(b"a"), false);
    }

    proptest! {
        #[test]
        fn writes_any_string_as_serde_json_does(s in any::<String>()) {
            writes_like_serde_json(&s, true);
            writes_like_serde_json(&serde_json::Value::from(s), true);
        }

        #[test]
        fn decodes_any_string_as_serde_json_does(s in any::<String>()) {
            let json = serde_json::to_string(&s).unwrap();
            let plain = !s.bytes().any(is_special);
            same::<serde_json::Value>(&json, plain);
            same::<String>(&json, plain);
        }

    }
}
