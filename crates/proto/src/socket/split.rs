//! Taking a packet's JSON array apart: the byte range of each element, the JSON checked on the
//! way, without building anything.
//!
//! This is the fast path of [`Packet::decode`](super::Packet::decode) for `EVENT` and `ACK`
//! data. It accepts exactly what serde_json accepts for an array of `RawValue`s (strict JSON,
//! whitespace around tokens, any nesting) and says only yes or no: on a no, or past
//! [`MAX_DEPTH`], the caller asks serde_json again, which finds the error and its offset. It
//! also checks UTF-8, so that the text need not be checked first: bytes of 0x80 and above are
//! accepted inside strings when they are valid UTF-8 (nowhere else does the grammar allow them).

use super::json_str::ascii_prefix;

/// The deepest nesting followed here (an element's own arrays and objects); deeper elements go
/// to serde_json.
const MAX_DEPTH: u32 = 128;

/// Calls `each(start, end, escaped)` with the byte range of every element of the JSON array
/// `json`, in order (`escaped`: the element has a `\` escape in some string), and returns
/// `true`, if `json` is one well-formed JSON array with only whitespace around it. Returns
/// `false` otherwise (some elements may have been reported by then).
pub(super) fn array_elements(json: &[u8], mut each: impl FnMut(usize, usize, bool)) -> bool {
    let mut s = Scanner {
        b: json,
        i: 0,
        escaped: false,
    };
    s.ws();
    if !s.eat(b'[') {
        return false;
    }
    s.ws();
    if !s.eat(b']') {
        loop {
            s.ws();
            let start = s.i;
            s.escaped = false;
            // A string (an event name, most arguments) straight away; anything else, nested
            // values included, through `value`.
            let ok = if s.eat(b'"') { s.string() } else { s.value() };
            if !ok {
                return false;
            }
            each(start, s.i, s.escaped);
            s.ws();
            match s.next() {
                Some(b',') => {}
                Some(b']') => break,
                _ => return false,
            }
        }
    }
    s.ws();
    s.i == json.len()
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// A string had an escape.
    escaped: bool,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> bool {
        let yes = self.peek() == Some(c);
        self.i += usize::from(yes);
        yes
    }

    /// JSON whitespace.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// One JSON value, nested ones included, without recursion: `stack` holds one bit per
    /// open container (1 = object).
    fn value(&mut self) -> bool {
        let mut stack: u128 = 0;
        let mut depth = 0;
        loop {
            // A value is expected here.
            self.ws();
            let scalar = match self.peek() {
                Some(c @ (b'[' | b'{')) => {
                    self.i += 1;
                    if depth == MAX_DEPTH {
                        return false;
                    }
                    depth += 1;
                    stack = stack << 1 | u128::from(c == b'{');
                    self.ws();
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.eat(close) {
                        depth -= 1;
                        stack >>= 1;
                        true
                    } else if c == b'{' && !self.key() {
                        return false;
                    } else {
                        continue;
                    }
                }
                Some(b'"') => {
                    self.i += 1;
                    self.string()
                }
                Some(b't') => self.literal(b"true"),
                Some(b'f') => self.literal(b"false"),
                Some(b'n') => self.literal(b"null"),
                Some(b'-' | b'0'..=b'9') => self.number(),
                _ => false,
            };
            if !scalar {
                return false;
            }
            // After a value: close containers, or go on after a comma.
            loop {
                if depth == 0 {
                    return true;
                }
                self.ws();
                let in_object = stack & 1 == 1;
                match self.next() {
                    Some(b',') => {
                        if in_object && !self.key() {
                            return false;
                        }
                        break;
                    }
                    Some(b']') if !in_object => {}
                    Some(b'}') if in_object => {}
                    _ => return false,
                }
                depth -= 1;
                stack >>= 1;
            }
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> bool {
        self.ws();
        if !self.eat(b'"') || !self.string() {
            return false;
        }
        self.ws();
        self.eat(b':')
    }

    /// The rest of a string after its opening quote.
    fn string(&mut self) -> bool {
        loop {
            // Runs of plain ASCII characters eight bytes at a time.
            self.i += ascii_prefix(&self.b[self.i..]);
            let Some(c) = self.next() else {
                return false;
            };
            match c {
                b'"' => return true,
                b'\\' => self.escaped = true,
                0x80.. => {
                    // Multi-byte characters are made of such bytes only: each run of them must
                    // be valid UTF-8 by itself.
                    let start = self.i - 1;
                    while self.peek().is_some_and(|c| c >= 0x80) {
                        self.i += 1;
                    }
                    if std::str::from_utf8(&self.b[start..self.i]).is_err() {
                        return false;
                    }
                    continue;
                }
                // A control character.
                _ => return false,
            }
            match self.next() {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                Some(b'u') => {
                    let hex = self.b.get(self.i..self.i + 4);
                    if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                        return false;
                    }
                    self.i += 4;
                }
                _ => return false,
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let yes = self.b[self.i..].starts_with(word);
        self.i += if yes { word.len() } else { 0 };
        yes
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> bool {
        self.eat(b'-');
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return false,
        }
        if self.eat(b'.') && !self.some_digits() {
            return false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !self.some_digits() {
                return false;
            }
        }
        true
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> bool {
        let start = self.i;
        self.digits();
        self.i > start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    /// What serde_json says: the elements' ranges, or `None` if it refuses the array.
    fn serde_split(json: &str) -> Option<Vec<(usize, usize)>> {
        let items: Vec<&RawValue> = serde_json::from_str(json).ok()?;
        let base = json.as_ptr() as usize;
        Some(
            items
                .iter()
                .map(|r| {
                    let start = r.get().as_ptr() as usize - base;
                    (start, start + r.get().len())
                })
                .collect(),
        )
    }

    fn fast_split(json: &str) -> Option<Vec<(usize, usize)>> {
        let mut out = Vec::new();
        array_elements(json.as_bytes(), |s, e, escaped| {
            assert_eq!(escaped, json[s..e].contains('\\'), "{json:?}");
            out.push((s, e));
        })
        .then_some(out)
    }

    fn agree(json: &str) {
        let fast = fast_split(json);
        // Past the depth followed here the fast path may say no; serde_json decides then.
        if fast.is_some() || !json.contains(&"[".repeat(MAX_DEPTH as usize)) {
            assert_eq!(fast, serde_split(json), "{json:?}");
        }
    }

    #[test]
    fn agrees_with_serde_json_on_examples() {
        for json in [
            r#"["echo","1733|xxxxxxxx"]"#,
            r#" [ "a" , 1 , -2.5e+3 , true , false , null , {} , [] ] "#,
            r#"["a",{"k":[1,{"x":"\u00e9\n"}],"k2":null}]"#,
            r#"["é ü 😀", "\ud83d\ude00"]"#,
            "[]",
            "[ ]",
            "[1,]",
            "[,1]",
            "[01]",
            "[-]",
            "[1.]",
            "[1e]",
            "[1e+]",
            "[.5]",
            "[tru]",
            "[nul]",
            r#"["\x"]"#,
            r#"["\u12"]"#,
            r#"["\u12G4"]"#,
            "[\"a\u{1}\"]",
            r#"["a"] x"#,
            r#"["a"]]"#,
            r#"[{"a":1,}]"#,
            r#"[{"a" 1}]"#,
            r#"[{1:1}]"#,
            r#"[{"a":1 "b":2}]"#,
            "[[[[]]]]",
            "[[[[]]]",
            "[}",
            "[{]}",
            "[\"unterminated",
            "[1 2]",
            "",
            "{}",
            "\"a\"",
        ] {
            agree(json);
        }
        let deep = format!("[{}{}]", "[".repeat(200), "]".repeat(200));
        assert_eq!(fast_split(&deep), None);
        assert!(serde_split(&deep).is_some());
        let ok = format!("[{}{}]", "[".repeat(127), "]".repeat(127));
        assert_eq!(fast_split(&ok), serde_split(&ok));
    }

    #[test]
    fn agrees_with_serde_json_on_strings_with_a_special_at_every_position() {
        let specials = [
            "\\\"", "\\\\", "\\/", "\\n", "\\u00e9", "\\uD83D", "\\x", "\\u12", "\"", "\u{1}",
            "\u{1f}", "\t", "\u{7f}", "é", "😀", " ",
        ];
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 40] {
            for at in 0..=len {
                for sp in specials {
                    let plain = "x".repeat(len);
                    let text = format!("{}{sp}{}", &plain[..at], &plain[at..]);
                    agree(&format!(r#"["e","{text}",1]"#));
                    agree(&format!(r#"["{text}"]"#));
                }
            }
        }
    }

    #[test]
    fn refuses_invalid_utf8_in_strings_and_high_bytes_elsewhere() {
        for (json, ok) in [
            (&b"[\"\xc3\xa9\"]"[..], true),
            (b"[\"a\xf0\x9f\x98\x80b\xc3\xa9\"]", true),
            (b"[\"\xc3\"]", false),
            (b"[\"\xc3a\xa9\"]", false),
            (b"[\"\xff\"]", false),
            (b"[\"\xed\xa0\x80\"]", false),
            (b"[\"a\xc0\xafb\"]", false),
            (b"[\xc3\xa9]", false),
            (b"[1]\xc3\xa9", false),
            (b"[{\"\xc3\":1}]", false),
        ] {
            assert_eq!(array_elements(json, |_, _, _| {}), ok, "{json:?}");
        }
    }

    /// Strings of every kind, long ones too, in arrays written by hand (so escapes and raw
    /// control characters serde_json would never write are in them).
    fn string_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-z]{0,20}",
            "[\\x00-\\x7f]{0,3}",
            "[é😀\\u{2028}\\u{7ff}]{0,3}",
            Just("\\\"".to_owned()),
            Just("\\\\".to_owned()),
            Just("\\u00e9".to_owned()),
            Just("\\uDEAD".to_owned()),
            Just("\\u0".to_owned()),
            Just("\\q".to_owned()),
            Just("\\".to_owned()),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
    }

    /// Small JSON arrays, well-formed or nearly.
    fn json_like() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just(",".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("\"k\"".to_owned()),
            Just("\"a\\\"b\\u00E9\\n\"".to_owned()),
            Just("\"é\"".to_owned()),
            Just("true".to_owned()),
            Just("null".to_owned()),
            Just("fals".to_owned()),
            "-?[0-9]{1,3}(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?",
            "[\\\\\"a-z0-9\\x00-\\x1f.+-]{1,3}",
        ];
        proptest::collection::vec(token, 0..14).prop_map(|t| format!("[{}]", t.concat()))
    }

    /// Well-formed values, nested.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".*".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(".*", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn agrees_with_serde_json_on_near_json(json in json_like()) {
            agree(&json);
        }

        #[test]
        fn accepts_a_string_exactly_when_it_is_utf8(mut bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            bytes.retain(|&c| c >= 0x20 && c != b'"' && c != b'\\');
            let json = [&b"[\""[..], &bytes, b"\"]"].concat();
            prop_assert_eq!(array_elements(&json, |_, _, _| {}), std::str::from_utf8(&bytes).is_ok());
        }

        #[test]
        fn agrees_with_serde_json_on_strings(a in string_like(), b in string_like()) {
            agree(&format!(r#"["{a}",1,"{b}"]"#));
            agree(&format!(r#"[{{"{a}":"{b}"}}]"#));
        }

        #[test]
        fn agrees_with_serde_json_on_values(values in proptest::collection::vec(json_value(), 0..5), pretty: bool) {
            let v = serde_json::Value::from(values);
            let json = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            prop_assert!(fast_split(&json).is_some());
            agree(&json);
        }
    }
}
