use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, DecodeErrorKind};

/// The handshake sent in the `open` packet
/// ([spec, "Handshake"](https://github.com/socketio/engine.io-protocol/tree/main/v4#handshake)).
///
/// The server writes exactly these five keys; the official suite checks that no other key is
/// present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenPacket {
    /// The session id.
    pub sid: String,
    /// Transports the client may upgrade to (`["websocket"]` on polling, `[]` on WebSocket).
    pub upgrades: Vec<String>,
    /// Milliseconds between two pings.
    pub ping_interval: u64,
    /// Milliseconds the peer waits for a pong.
    pub ping_timeout: u64,
    /// The largest payload, in bytes, the server accepts.
    pub max_payload: u64,
}

impl OpenPacket {
    /// Writes the whole `open` packet, `0{...}`, into `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(b'0');
        // Serializing a struct of strings and integers into a Vec cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        out.put_slice(&json);
    }

    /// Parses the JSON part of an `open` packet (what follows the `0`).
    pub fn decode(json: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(json).map_err(|e| {
            DecodeError::new(DecodeErrorKind::InvalidData, e.column().saturating_sub(1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_spec_example_with_exact_keys() {
        let open = OpenPacket {
            sid: "lv_VI97HAXpY6yYWAAAC".into(),
            upgrades: vec!["websocket".into()],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1000000,
        };
        let mut out = BytesMut::new();
        open.encode(&mut out);
        assert_eq!(
            &out[..],
            br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert_eq!(OpenPacket::decode(&out[1..]).unwrap(), open);
    }

    #[test]
    fn rejects_bad_json() {
        assert!(OpenPacket::decode(b"{\"sid\":1}").is_err());
        assert!(OpenPacket::decode(b"").is_err());
    }
}
