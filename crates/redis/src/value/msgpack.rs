//! MessagePack, as notepack.io 3.x writes and reads it (and @msgpack/msgpack 2.x, which the
//! Redis Streams adapter uses, writes the same forms for these values).

use bytes::Bytes;

use super::Value;

/// Encodes `v` as notepack.io does: smallest integer formats, float64 for other numbers,
/// str8 for strings of 32..255 bytes, `bin` for binary.
pub fn to_msgpack(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    write_msgpack(v, &mut out);
    out
}

fn write_msgpack(v: &Value, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail: the `rmp` results are ignored.
    match v {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => write_int(*i, out),
        Value::Float(f) => {
            if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 {
                write_int(*f as i64, out);
            } else {
                let _ = rmp::encode::write_f64(out, *f);
            }
        }
        Value::Str(s) => {
            let _ = rmp::encode::write_str(out, s);
        }
        Value::Bin(b) => {
            let _ = rmp::encode::write_bin(out, b);
        }
        Value::Array(a) => {
            let _ = rmp::encode::write_array_len(out, a.len() as u32);
            for x in a {
                write_msgpack(x, out);
            }
        }
        Value::Map(m) => {
            let _ = rmp::encode::write_map_len(out, m.len() as u32);
            for (k, x) in m {
                let _ = rmp::encode::write_str(out, k);
                write_msgpack(x, out);
            }
        }
    }
}

fn write_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        let u = i as u64;
        if u < 128 {
            out.push(u as u8);
        } else if u < 256 {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u < 65_536 {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u < 1 << 32 {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32_768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// Decodes one MessagePack value (the whole input).
///
/// nil and the legacy `fixext1` type 0 (`undefined`) give `Null`; `bin` and ext type 0
/// give binary; ext type -1 (a timestamp, notepack's `Date`) gives the ISO-8601 string
/// `Date.toJSON()` prints; map keys that are not strings are printed as JavaScript would.
pub fn from_msgpack(bytes: &[u8]) -> Result<Value, String> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let v = r.value(0)?;
    if r.pos != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - r.pos));
    }
    Ok(v)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

const MAX_DEPTH: usize = 128;

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| "unexpected end of MessagePack data".to_owned())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("MessagePack nesting too deep".into());
        }
        use rmp::Marker as M;
        let marker = M::from_u8(self.u8()?);
        Ok(match marker {
            M::FixPos(n) => Value::Int(i64::from(n)),
            M::FixNeg(n) => Value::Int(i64::from(n)),
            M::Null => Value::Null,
            M::True => Value::Bool(true),
            M::False => Value::Bool(false),
            M::U8 => Value::Int(self.be(1)? as i64),
            M::U16 => Value::Int(self.be(2)? as i64),
            M::U32 => Value::Int(self.be(4)? as i64),
            M::U64 => {
                let u = self.be(8)?;
                i64::try_from(u).map_or(Value::Float(u as f64), Value::Int)
            }
            M::I8 => Value::Int(i64::from(self.be(1)? as u8 as i8)),
            M::I16 => Value::Int(i64::from(self.be(2)? as u16 as i16)),
            M::I32 => Value::Int(i64::from(self.be(4)? as u32 as i32)),
            M::I64 => Value::Int(self.be(8)? as i64),
            M::F32 => Value::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            M::F64 => Value::Float(f64::from_bits(self.be(8)?)),
            M::FixStr(n) => self.string(usize::from(n))?,
            M::Str8 => {
                let n = self.be(1)? as usize;
                self.string(n)?
            }
            M::Str16 => {
                let n = self.be(2)? as usize;
                self.string(n)?
            }
            M::Str32 => {
                let n = self.be(4)? as usize;
                self.string(n)?
            }
            M::Bin8 => {
                let n = self.be(1)? as usize;
                Value::Bin(Bytes::copy_from_slice(self.take(n)?))
            }
            M::Bin16 => {
                let n = self.be(2)? as usize;
                Value::Bin(Bytes::copy_from_slice(self.take(n)?))
            }
            M::Bin32 => {
                let n = self.be(4)? as usize;
                Value::Bin(Bytes::copy_from_slice(self.take(n)?))
            }
            M::FixArray(n) => self.array(usize::from(n), depth)?,
            M::Array16 => {
                let n = self.be(2)? as usize;
                self.array(n, depth)?
            }
            M::Array32 => {
                let n = self.be(4)? as usize;
                self.array(n, depth)?
            }
            M::FixMap(n) => self.map(usize::from(n), depth)?,
            M::Map16 => {
                let n = self.be(2)? as usize;
                self.map(n, depth)?
            }
            M::Map32 => {
                let n = self.be(4)? as usize;
                self.map(n, depth)?
            }
            M::FixExt1 => self.ext(1)?,
            M::FixExt2 => self.ext(2)?,
            M::FixExt4 => self.ext(4)?,
            M::FixExt8 => self.ext(8)?,
            M::FixExt16 => self.ext(16)?,
            M::Ext8 => {
                let n = self.be(1)? as usize;
                self.ext(n)?
            }
            M::Ext16 => {
                let n = self.be(2)? as usize;
                self.ext(n)?
            }
            M::Ext32 => {
                let n = self.be(4)? as usize;
                self.ext(n)?
            }
            M::Reserved => return Err("reserved MessagePack marker 0xc1".into()),
        })
    }

    fn string(&mut self, n: usize) -> Result<Value, String> {
        let s = self.take(n)?;
        Ok(Value::Str(String::from_utf8_lossy(s).into_owned()))
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, String> {
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(out))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, String> {
        let mut out: Vec<(String, Value)> = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let k = self.value(depth + 1)?.js_string();
            let v = self.value(depth + 1)?;
            // A later duplicate key wins, as in a JavaScript object.
            if let Some(slot) = out.iter_mut().find(|(x, _)| *x == k) {
                slot.1 = v;
            } else {
                out.push((k, v));
            }
        }
        Ok(Value::Map(out))
    }

    fn ext(&mut self, n: usize) -> Result<Value, String> {
        let kind = self.u8()? as i8;
        let data = self.take(n)?;
        Ok(match kind {
            // notepack 2.x: fixext1 type 0 was `undefined`, other ext 0 an ArrayBuffer.
            0 if n == 1 => Value::Null,
            0 => Value::Bin(Bytes::copy_from_slice(data)),
            -1 => match timestamp(data) {
                Some((secs, nanos)) => Value::Str(iso_date(secs, nanos)),
                None => Value::Null,
            },
            _ => Value::Null,
        })
    }
}

/// The seconds and nanoseconds of a MessagePack timestamp (ext -1, 4, 8 or 12 bytes).
fn timestamp(d: &[u8]) -> Option<(i64, u32)> {
    match d.len() {
        4 => Some((i64::from(u32::from_be_bytes(d.try_into().ok()?)), 0)),
        8 => {
            let x = u64::from_be_bytes(d.try_into().ok()?);
            Some(((x & 0x3_ffff_ffff) as i64, (x >> 34) as u32))
        }
        12 => {
            let nanos = u32::from_be_bytes(d[..4].try_into().ok()?);
            let secs = i64::from_be_bytes(d[4..].try_into().ok()?);
            Some((secs, nanos))
        }
        _ => None,
    }
}

/// `Date.prototype.toJSON()`: `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, millisecond precision).
pub(crate) fn iso_date(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let ms = nanos / 1_000_000;
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else if year < 0 {
        format!("-{:06}", -year)
    } else {
        format!("+{year:06}")
    };
    format!("{year}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}
