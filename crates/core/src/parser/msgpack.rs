//! The MessagePack format of `socket.io-msgpack-parser`: the whole Socket.IO packet is one
//! msgpack map (`type`, `data`, `nsp`, `id`) sent as one binary Engine.IO message; binary data
//! is msgpack `bin`, so there are no attachments and no BINARY_* packet types.
//!
//! Keys we write, in order: `type`, `data` (left out when there is none, as JavaScript's
//! `undefined` is), `nsp`, `id` (only when there is one). Keys are read in any order and
//! unknown keys (the official client's `options`) are skipped. Integers take their smallest
//! encoding, non-integers are float64 (what serde gives an `f64`), as `notepack.io` does.

use std::ops::Range;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize};
use volley_proto::socket::{Packet, PacketData, PacketType};
use volley_proto::{DecodeError, DecodeErrorKind};

use super::CodecError;

/// JavaScript's `undefined` as notepack.io 2.x writes it (fixext 1, type 0).
pub(super) const UNDEFINED: &[u8] = &[0xd4, 0x00, 0x00];

/// An argument: `undefined` becomes `nil` (JSON.stringify makes it `null` too), and other
/// extension values inside are [normalized].
fn arg(frame: &Bytes, r: Range<usize>) -> Bytes {
    normalized(frame, r)
}

/// How deeply arrays and maps may nest in a received packet.
pub(super) const MAX_DEPTH: usize = 128;

fn be(b: &[u8], at: usize, n: usize) -> Option<usize> {
    let s = b.get(at..at.checked_add(n)?)?;
    Some(s.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x)))
}

fn span(b: &[u8], start: usize, len: usize) -> Option<usize> {
    let end = start.checked_add(len)?;
    (end <= b.len()).then_some(end)
}

/// Where the value starting at `pos` ends; `None` when it is malformed, truncated or nested
/// deeper than `depth`.
pub(super) fn skip(b: &[u8], pos: usize, depth: usize) -> Option<usize> {
    walk(b, pos, depth, &mut false)
}

/// [`skip`], noting in `ext` whether an extension value was seen.
fn walk(b: &[u8], pos: usize, depth: usize, ext: &mut bool) -> Option<usize> {
    let m = *b.get(pos)?;
    if matches!(m, 0xc7..=0xc9 | 0xd4..=0xd8) {
        *ext = true;
    }
    let p = pos + 1;
    match m {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some(p),
        0x80..=0x8f => items(b, p, usize::from(m & 0x0f) * 2, depth, ext),
        0x90..=0x9f => items(b, p, usize::from(m & 0x0f), depth, ext),
        0xa0..=0xbf => span(b, p, usize::from(m & 0x1f)),
        0xc4 | 0xd9 => span(b, p + 1, be(b, p, 1)?),
        0xc5 | 0xda => span(b, p + 2, be(b, p, 2)?),
        0xc6 | 0xdb => span(b, p + 4, be(b, p, 4)?),
        0xc7 => span(b, p + 2, be(b, p, 1)?),
        0xc8 => span(b, p + 3, be(b, p, 2)?),
        0xc9 => span(b, p + 5, be(b, p, 4)?),
        0xcc | 0xd0 => span(b, p, 1),
        0xcd | 0xd1 => span(b, p, 2),
        0xca | 0xce | 0xd2 => span(b, p, 4),
        0xcb | 0xcf | 0xd3 => span(b, p, 8),
        0xd4 => span(b, p, 2),
        0xd5 => span(b, p, 3),
        0xd6 => span(b, p, 5),
        0xd7 => span(b, p, 9),
        0xd8 => span(b, p, 17),
        0xdc => items(b, p + 2, be(b, p, 2)?, depth, ext),
        0xdd => items(b, p + 4, be(b, p, 4)?, depth, ext),
        0xde => items(b, p + 2, be(b, p, 2)?.checked_mul(2)?, depth, ext),
        0xdf => items(b, p + 4, be(b, p, 4)?.checked_mul(2)?, depth, ext),
        0xc1 => None,
    }
}

fn items(b: &[u8], mut p: usize, count: usize, depth: usize, ext: &mut bool) -> Option<usize> {
    let depth = depth.checked_sub(1)?;
    // Every value takes at least one byte: the loop ends with the input.
    for _ in 0..count {
        p = walk(b, p, depth, ext)?;
    }
    Some(p)
}

/// One received value (a well-formed one, checked by [`skip`]) as JSON would carry it:
/// notepack.io 2.x's extension values rewritten. `undefined` (fixext 1, type 0) is dropped
/// from maps and becomes `nil` elsewhere; a `Date` (fixext 8, type 0: milliseconds) becomes
/// its ISO-8601 string, as `JSON.stringify` gives; other extensions become `nil`. Values
/// without extensions are returned as they are.
pub(super) fn normalized(frame: &Bytes, r: Range<usize>) -> Bytes {
    let mut ext = false;
    if walk(frame, r.start, MAX_DEPTH, &mut ext).is_none() || !ext {
        return frame.slice(r);
    }
    let mut out = Vec::with_capacity(r.len());
    match rewrite(frame, r.start, &mut out) {
        Some((_, true)) => Bytes::from(out),
        _ => Bytes::from_static(&[0xc0]),
    }
}

/// Rewrites the value at `pos` into `out`: (where it ended, whether anything was written:
/// `false` for `undefined`).
fn rewrite(b: &[u8], pos: usize, out: &mut Vec<u8>) -> Option<(usize, bool)> {
    let m = *b.get(pos)?;
    let (count, start, map) = match m {
        0x80..=0x8f => (usize::from(m & 0x0f), pos + 1, true),
        0xde => (be(b, pos + 1, 2)?, pos + 3, true),
        0xdf => (be(b, pos + 1, 4)?, pos + 5, true),
        0x90..=0x9f => (usize::from(m & 0x0f), pos + 1, false),
        0xdc => (be(b, pos + 1, 2)?, pos + 3, false),
        0xdd => (be(b, pos + 1, 4)?, pos + 5, false),
        0xc7..=0xc9 | 0xd4..=0xd8 => {
            let end = skip(b, pos, 1)?;
            let (tag, data) = match m {
                0xd4..=0xd8 => (*b.get(pos + 1)?, b.get(pos + 2..end)?),
                0xc7 => (*b.get(pos + 2)?, b.get(pos + 3..end)?),
                0xc8 => (*b.get(pos + 3)?, b.get(pos + 4..end)?),
                _ => (*b.get(pos + 5)?, b.get(pos + 6..end)?),
            };
            return Some(match (tag, data.len()) {
                (0, 1) => (end, false),
                (0, 8) => {
                    let hi = i32::from_be_bytes(data[..4].try_into().ok()?);
                    let lo = u32::from_be_bytes(data[4..].try_into().ok()?);
                    let ms = i64::from(hi) * (1 << 32) + i64::from(lo);
                    write_str(out, &iso_date(ms));
                    (end, true)
                }
                _ => {
                    out.push(0xc0);
                    (end, true)
                }
            });
        }
        _ => {
            let end = skip(b, pos, 1)?;
            out.extend_from_slice(b.get(pos..end)?);
            return Some((end, true));
        }
    };
    let mut body = Vec::new();
    let mut kept = 0;
    let mut p = start;
    for _ in 0..count {
        if map {
            let key_end = skip(b, p, MAX_DEPTH)?;
            let mark = body.len();
            body.extend_from_slice(b.get(p..key_end)?);
            let (end, written) = rewrite(b, key_end, &mut body)?;
            if written {
                kept += 1;
            } else {
                body.truncate(mark);
            }
            p = end;
        } else {
            let (end, written) = rewrite(b, p, &mut body)?;
            if !written {
                body.push(0xc0);
            }
            kept += 1;
            p = end;
        }
    }
    if map {
        let _ = rmp::encode::write_map_len(out, kept as u32);
    } else {
        write_array_len(out, kept);
    }
    out.extend_from_slice(&body);
    Some((p, true))
}

/// Milliseconds since the epoch as `Date.prototype.toISOString` writes them.
fn iso_date(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, min, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// A map header: (entries, where the first key starts).
fn map_header(b: &[u8], pos: usize) -> Option<(usize, usize)> {
    match *b.get(pos)? {
        m @ 0x80..=0x8f => Some((usize::from(m & 0x0f), pos + 1)),
        0xde => Some((be(b, pos + 1, 2)?, pos + 3)),
        0xdf => Some((be(b, pos + 1, 4)?, pos + 5)),
        _ => None,
    }
}

/// An array header: (elements, where the first element starts).
fn array_header(b: &[u8], pos: usize) -> Option<(usize, usize)> {
    match *b.get(pos)? {
        m @ 0x90..=0x9f => Some((usize::from(m & 0x0f), pos + 1)),
        0xdc => Some((be(b, pos + 1, 2)?, pos + 3)),
        0xdd => Some((be(b, pos + 1, 4)?, pos + 5)),
        _ => None,
    }
}

/// A string: (its bytes' range, where it ends).
fn str_at(b: &[u8], pos: usize) -> Option<Range<usize>> {
    let (len, start) = match *b.get(pos)? {
        m @ 0xa0..=0xbf => (usize::from(m & 0x1f), pos + 1),
        0xd9 => (be(b, pos + 1, 1)?, pos + 2),
        0xda => (be(b, pos + 1, 2)?, pos + 3),
        0xdb => (be(b, pos + 1, 4)?, pos + 5),
        _ => return None,
    };
    Some(start..span(b, start, len)?)
}

fn utf8(b: &[u8], r: Range<usize>) -> Option<&str> {
    std::str::from_utf8(b.get(r)?).ok()
}

/// A non-negative integer (any integer encoding, or a float64 holding an integer, which is
/// what JavaScript's `Number.isInteger` accepts).
fn uint_at(b: &[u8], pos: usize) -> Option<u64> {
    let m = *b.get(pos)?;
    let n = |len| -> Option<u64> {
        let s = b.get(pos + 1..pos + 1 + len)?;
        Some(s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    match m {
        0x00..=0x7f => Some(u64::from(m)),
        0xcc => n(1),
        0xcd => n(2),
        0xce => n(4),
        0xcf => n(8),
        // Signed encodings of non-negative values.
        0xd0 => n(1).filter(|v| *v < 0x80),
        0xd1 => n(2).filter(|v| *v < 0x8000),
        0xd2 => n(4).filter(|v| *v < 0x8000_0000),
        0xd3 => n(8).filter(|v| *v < 0x8000_0000_0000_0000),
        0xcb => {
            let f = f64::from_bits(n(8)?);
            // Exact integers below 2^53, as JavaScript numbers.
            (f >= 0.0 && f.fract() == 0.0 && f < 9_007_199_254_740_992.0).then_some(f as u64)
        }
        _ => None,
    }
}

fn bad(kind: DecodeErrorKind, at: usize) -> DecodeError {
    DecodeError::new(kind, at)
}

/// The fields of a packet map: type, namespace, id, and where the data value is.
pub(super) struct Fields {
    pub(super) kind: PacketType,
    pub(super) nsp: String,
    pub(super) id: Option<u64>,
    pub(super) data: Option<Range<usize>>,
}

/// Reads and checks the packet map's keys as `socket.io-msgpack-parser` does.
pub(super) fn fields(b: &[u8]) -> Result<Fields, DecodeError> {
    if b.is_empty() {
        return Err(bad(DecodeErrorKind::Empty, 0));
    }
    let (count, mut p) = map_header(b, 0).ok_or(bad(DecodeErrorKind::InvalidData, 0))?;
    let (mut kind, mut nsp, mut id, mut data) = (None, None, None, None);
    for _ in 0..count {
        let key = str_at(b, p).ok_or(bad(DecodeErrorKind::InvalidData, p))?;
        let v = key.end;
        let end = skip(b, v, MAX_DEPTH).ok_or(bad(DecodeErrorKind::InvalidData, v))?;
        // notepack.io 2.x (what socket.io-msgpack-parser 3.0.2 uses) writes `undefined` as
        // fixext 1 of type 0 instead of leaving the key out (the official client's CONNECT
        // without auth): the key is absent.
        let key = if b.get(v..end) == Some(UNDEFINED) {
            0..0
        } else {
            key
        };
        match b.get(key) {
            Some(b"type") => {
                let t = uint_at(b, v)
                    .filter(|t| *t <= 4)
                    .ok_or(bad(DecodeErrorKind::UnknownPacketType, v))?;
                kind = PacketType::from_digit(b'0' + t as u8);
            }
            Some(b"nsp") => {
                let s = str_at(b, v)
                    .and_then(|r| utf8(b, r))
                    .ok_or(bad(DecodeErrorKind::InvalidNamespace, v))?;
                nsp = Some(s.to_owned());
            }
            Some(b"id") => id = Some(uint_at(b, v).ok_or(bad(DecodeErrorKind::InvalidNumber, v))?),
            Some(b"data") => data = Some(v..end),
            _ => {}
        }
        p = end;
    }
    if p != b.len() {
        return Err(bad(DecodeErrorKind::InvalidData, p));
    }
    Ok(Fields {
        kind: kind.ok_or(bad(DecodeErrorKind::UnknownPacketType, 0))?,
        nsp: nsp.ok_or(bad(DecodeErrorKind::InvalidNamespace, 0))?,
        id,
        data,
    })
}

/// The elements of the array at `r`, as ranges.
fn elements(b: &[u8], r: Range<usize>) -> Option<Vec<Range<usize>>> {
    let (count, mut p) = array_header(b, r.start)?;
    let mut out = Vec::with_capacity(count.min(r.end - p));
    for _ in 0..count {
        let end = skip(b, p, MAX_DEPTH)?;
        out.push(p..end);
        p = end;
    }
    (p == r.end).then_some(out)
}

/// A map or string value (a CONNECT or CONNECT_ERROR payload) as JSON text.
fn to_json(b: &[u8], r: Range<usize>, maps_only: bool) -> Option<Bytes> {
    let m = *b.get(r.start)?;
    let is_map = matches!(m, 0x80..=0x8f | 0xde | 0xdf);
    let is_str = matches!(m, 0xa0..=0xbf | 0xd9..=0xdb);
    if !(is_map || is_str && !maps_only) {
        return None;
    }
    let v: serde_json::Value = decode(&normalized(&Bytes::copy_from_slice(b), r)).ok()?;
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

/// Decodes one packet from a binary frame. Arguments are slices of `frame`.
pub(super) fn decode_packet(frame: &Bytes) -> Result<Packet, DecodeError> {
    let b = &frame[..];
    let f = fields(b)?;
    let invalid = |r: &Option<Range<usize>>| {
        bad(
            DecodeErrorKind::InvalidData,
            r.as_ref().map_or(0, |r| r.start),
        )
    };
    let data = match f.kind {
        PacketType::Connect => match &f.data {
            None => PacketData::None,
            Some(r) => PacketData::Json(to_json(b, r.clone(), true).ok_or(invalid(&f.data))?),
        },
        PacketType::Disconnect => match f.data {
            None => PacketData::None,
            Some(_) => return Err(invalid(&f.data)),
        },
        PacketType::ConnectError => {
            let r = f.data.clone().ok_or(invalid(&f.data))?;
            PacketData::Json(to_json(b, r, false).ok_or(invalid(&f.data))?)
        }
        PacketType::Event => {
            let r = f.data.clone().ok_or(invalid(&f.data))?;
            let els = elements(b, r).ok_or(invalid(&f.data))?;
            let (first, rest) = els.split_first().ok_or(invalid(&f.data))?;
            let name = str_at(b, first.start)
                .filter(|s| s.end == first.end)
                .and_then(|s| utf8(b, s))
                .ok_or(invalid(&f.data))?
                .to_owned();
            let args = rest.iter().map(|r| arg(frame, r.clone())).collect();
            PacketData::Event { name, args }
        }
        PacketType::Ack => {
            let r = f.data.clone().ok_or(invalid(&f.data))?;
            if f.id.is_none() {
                return Err(bad(DecodeErrorKind::InvalidNumber, 0));
            }
            let els = elements(b, r).ok_or(invalid(&f.data))?;
            PacketData::Ack {
                args: els.into_iter().map(|r| arg(frame, r)).collect(),
            }
        }
        _ => return Err(bad(DecodeErrorKind::UnknownPacketType, 0)),
    };
    Ok(Packet {
        kind: f.kind,
        namespace: f.nsp,
        id: f.id,
        data,
        attachments: Vec::new(),
    })
}

/// Serializes one value (structs as maps, byte buffers as `bin`).
pub(super) fn write_value<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), CodecError> {
    let mut ser = rmp_serde::Serializer::new(out)
        .with_struct_map()
        .with_human_readable();
    value.serialize(&mut ser).map_err(CodecError::custom)
}

/// Deserializes one value.
pub(super) fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, CodecError> {
    // One well-formed value, not nested too deeply, nothing after it.
    if skip(b, 0, MAX_DEPTH) != Some(b.len()) {
        return Err(CodecError::custom("malformed MessagePack value"));
    }
    let mut de = rmp_serde::Deserializer::from_read_ref(b).with_human_readable();
    T::deserialize(&mut de).map_err(CodecError::custom)
}

/// An array header of `n` elements, smallest form.
pub(super) fn write_array_len(out: &mut Vec<u8>, n: usize) {
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_array_len(out, n as u32);
}

/// A string, smallest form.
pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    let _ = rmp::encode::write_str(out, s);
}

/// A packet map: `type`, `data` (raw msgpack, if any), `nsp`, `id` (if any).
pub(super) fn packet(kind: u8, data: Option<&[u8]>, nsp: &str, id: Option<u64>) -> Bytes {
    let n = 2 + usize::from(data.is_some()) + usize::from(id.is_some());
    let mut out = Vec::with_capacity(16 + nsp.len() + data.map_or(0, <[u8]>::len));
    let _ = rmp::encode::write_map_len(&mut out, n as u32);
    write_str(&mut out, "type");
    let _ = rmp::encode::write_uint(&mut out, u64::from(kind));
    if let Some(d) = data {
        write_str(&mut out, "data");
        out.extend_from_slice(d);
    }
    write_str(&mut out, "nsp");
    write_str(&mut out, nsp);
    if let Some(id) = id {
        write_str(&mut out, "id");
        let _ = rmp::encode::write_uint(&mut out, id);
    }
    Bytes::from(out)
}

/// The same packet with `s` appended to its data array; `None` when it has no array.
pub(super) fn append_string(frame: &[u8], s: &str) -> Option<Bytes> {
    let f = fields(frame).ok()?;
    let r = f.data?;
    let els = elements(frame, r.clone())?;
    let mut data = Vec::with_capacity(r.len() + s.len() + 8);
    write_array_len(&mut data, els.len() + 1);
    let first = els.first().map_or(r.end, |e| e.start);
    data.extend_from_slice(&frame[first..r.end]);
    write_str(&mut data, s);
    let kind = f.kind as u8;
    Some(packet(kind, Some(&data), &f.nsp, f.id))
}

/// Any value, to carry an argument from one format to the other (binary stays binary,
/// integers stay integers).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tree {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Tree>),
    Map(Vec<(Tree, Tree)>),
}

impl Serialize for Tree {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Nil => s.serialize_unit(),
            Self::Bool(v) => s.serialize_bool(*v),
            Self::Int(v) => s.serialize_i64(*v),
            Self::UInt(v) => s.serialize_u64(*v),
            Self::Float(v) => s.serialize_f64(*v),
            Self::Str(v) => s.serialize_str(v),
            Self::Bin(v) => s.serialize_bytes(v),
            Self::Array(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                v.iter().try_for_each(|e| seq.serialize_element(e))?;
                seq.end()
            }
            Self::Map(v) => {
                let mut map = s.serialize_map(Some(v.len()))?;
                v.iter().try_for_each(|(k, e)| map.serialize_entry(k, e))?;
                map.end()
            }
        }
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tree, E> {
        Ok(if v >= 0 {
            Tree::UInt(v as u64)
        } else {
            Tree::Int(v)
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::UInt(v))
    }
    fn visit_f32<E>(self, v: f32) -> Result<Tree, E> {
        Ok(Tree::Float(f64::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Tree, E> {
        Ok(Tree::Bin(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Tree, E> {
        Ok(Tree::Bin(v))
    }
    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Nil)
    }
    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Nil)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Tree, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Tree, A::Error> {
        let mut v = Vec::new();
        while let Some(e) = a.next_element()? {
            v.push(e);
        }
        Ok(Tree::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Tree, A::Error> {
        let mut v = Vec::new();
        while let Some(e) = a.next_entry()? {
            v.push(e);
        }
        Ok(Tree::Map(v))
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_and_dates_read_as_json_gives_them() {
        // {sid: "x", pid: undefined}, as socket.io 4.8's CONNECT reply without recovery.
        let b = Bytes::from_static(&[
            0x82, 0xa3, b's', b'i', b'd', 0xa1, b'x', 0xa3, b'p', b'i', b'd', 0xd4, 0, 0,
        ]);
        let n = normalized(&b, 0..b.len());
        assert_eq!(&n[..], &[0x81, 0xa3, b's', b'i', b'd', 0xa1, b'x']);
        // [undefined, Date(0), Date(1_700_000_000_123)] (notepack.io 2.x's fixext 8).
        let ms: i64 = 1_700_000_000_123;
        let mut b = vec![0x93, 0xd4, 0, 0, 0xd7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xd7, 0];
        b.extend_from_slice(&((ms >> 32) as i32).to_be_bytes());
        b.extend_from_slice(&(ms as u32).to_be_bytes());
        let b = Bytes::from(b);
        let v: serde_json::Value = decode(&normalized(&b, 0..b.len())).unwrap();
        assert_eq!(
            v,
            serde_json::json!([null, "1970-01-01T00:00:00.000Z", "2023-11-14T22:13:20.123Z"])
        );
        assert_eq!(iso_date(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso_date(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn skip_rejects_truncation_and_depth() {
        assert_eq!(skip(&[0x92, 0x01, 0x02], 0, 4), Some(3));
        assert_eq!(skip(&[0x92, 0x01], 0, 4), None);
        assert_eq!(skip(&[0xdd, 0xff, 0xff, 0xff, 0xff], 0, 4), None);
        assert_eq!(skip(&[0x91, 0x91, 0x91, 0xc0], 0, 2), None);
        assert_eq!(skip(&[0xc1], 0, 2), None);
        assert_eq!(skip(&[0xc6, 0, 0, 0, 2, 1], 0, 2), None);
    }
}
