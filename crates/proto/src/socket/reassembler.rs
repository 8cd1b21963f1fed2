//! Putting binary packets back together: a text packet, then its attachments.

use bytes::Bytes;

use super::packet::{DecodeLimits, Packet};
use super::view::PacketRef;
use crate::error::{DecodeError, DecodeErrorKind};

/// Reassembles Socket.IO packets from the Engine.IO messages of one connection.
///
/// A `BINARY_EVENT` or `BINARY_ACK` arrives as a text message declaring `N` attachments,
/// followed by exactly `N` binary messages. Feed every message of the connection, in order, to
/// [`push_text`](Self::push_text) or [`push_binary`](Self::push_binary); each complete packet
/// comes out once.
///
/// The reassembler does not bound how long or how many bytes it waits for; the caller checks
/// [`is_waiting`](Self::is_waiting) and [`buffered_bytes`](Self::buffered_bytes). After an
/// error the connection is to be closed: the state is left as it was.
///
/// ```
/// use bytes::Bytes;
/// use volley_proto::socket::{DecodeLimits, PacketData, Reassembler};
///
/// let mut r = Reassembler::new(DecodeLimits::default());
/// let text = Bytes::from_static(br#"51-["baz",{"_placeholder":true,"num":0}]"#);
/// assert!(r.push_text(text)?.is_none());
/// assert!(r.is_waiting());
/// let packet = r.push_binary(Bytes::from_static(&[1, 2, 3, 4]))?.expect("complete");
/// assert_eq!(packet.attachments, [Bytes::from_static(&[1, 2, 3, 4])]);
/// assert!(!r.is_waiting());
///
/// // A packet without attachments comes out at once.
/// let packet = r.push_text(Bytes::from_static(br#"2["foo"]"#))?.expect("complete");
/// assert!(matches!(packet.data, PacketData::Event { .. }));
/// # Ok::<(), volley_proto::DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Reassembler {
    limits: DecodeLimits,
    /// The packet waiting for attachments, with those received so far.
    pending: Option<Packet>,
    /// How many attachments `pending` declared.
    expected: usize,
    /// The total length of the attachments received so far.
    buffered: usize,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(DecodeLimits::default())
    }
}

impl Reassembler {
    /// A reassembler decoding with `limits`.
    pub fn new(limits: DecodeLimits) -> Self {
        Self {
            limits,
            pending: None,
            expected: 0,
            buffered: 0,
        }
    }

    /// Takes a text message and decodes it.
    ///
    /// Returns the packet when it is complete (it declares no attachments), `None` when it now
    /// waits for its attachments. A text message while attachments are still awaited is an
    /// error ([`DecodeErrorKind::UnexpectedAttachment`]), as are the errors of
    /// [`Packet::decode`].
    pub fn push_text(&mut self, text: Bytes) -> Result<Option<Packet>, DecodeError> {
        Ok(self.push_text_ref(&text)?.map(PacketRef::into_owned))
    }

    /// [`push_text`](Self::push_text) for a receiver that only looks at the packet: a
    /// complete one comes out as a [`PacketRef`] borrowing from `text` (no `String`s made).
    #[inline]
    pub fn push_text_ref<'t>(
        &mut self,
        text: &'t Bytes,
    ) -> Result<Option<PacketRef<'t>>, DecodeError> {
        if self.pending.is_some() {
            return Err(DecodeError::new(DecodeErrorKind::UnexpectedAttachment, 0));
        }
        let (packet, count) = PacketRef::decode(text, &self.limits)?;
        if count == 0 {
            return Ok(Some(packet));
        }
        self.expected = count;
        self.buffered = 0;
        self.pending = Some(Packet {
            attachments: Vec::with_capacity(count),
            ..packet.into_owned()
        });
        Ok(None)
    }

    /// Takes a binary message: the next attachment of the waiting packet.
    ///
    /// Returns the packet once its last attachment has arrived, `None` while more are awaited.
    /// An attachment that no packet waits for is an error
    /// ([`DecodeErrorKind::UnexpectedAttachment`]).
    pub fn push_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        let Some(packet) = self.pending.as_mut() else {
            return Err(DecodeError::new(DecodeErrorKind::UnexpectedAttachment, 0));
        };
        self.buffered += data.len();
        packet.attachments.push(data);
        if packet.attachments.len() < self.expected {
            return Ok(None);
        }
        self.expected = 0;
        self.buffered = 0;
        Ok(self.pending.take())
    }

    /// Whether a packet is waiting for attachments.
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// The total length in bytes of the attachments received for the waiting packet.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::packet::tests::valid_packet;
    use crate::socket::{PacketData, PacketType};
    use bytes::BytesMut;
    use proptest::prelude::*;

    fn text(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn bin(b: &'static [u8]) -> Bytes {
        Bytes::from_static(b)
    }

    #[test]
    fn suite_binary_event() {
        let mut r = Reassembler::default();
        let t =
            r#"52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert_eq!(r.push_text(text(t)).unwrap(), None);
        assert!(r.is_waiting());
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.push_binary(bin(&[1, 2, 3])).unwrap(), None);
        assert_eq!(r.buffered_bytes(), 3);
        let p = r.push_binary(bin(&[4, 5, 6, 7])).unwrap().unwrap();
        assert_eq!(p.kind, PacketType::BinaryEvent);
        assert_eq!(p.attachments, [bin(&[1, 2, 3]), bin(&[4, 5, 6, 7])]);
        assert!(!r.is_waiting());
        assert_eq!(r.buffered_bytes(), 0);

        // The same packet again, as a binary ack.
        let t = r#"62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert_eq!(r.push_text(text(t)).unwrap(), None);
        assert_eq!(r.push_binary(bin(&[])).unwrap(), None);
        let p = r.push_binary(bin(&[9])).unwrap().unwrap();
        assert_eq!((p.kind, p.id), (PacketType::BinaryAck, Some(789)));
        assert_eq!(p.attachments, [bin(&[]), bin(&[9])]);
    }

    #[test]
    fn complete_packets_pass_through() {
        let mut r = Reassembler::default();
        let p = r.push_text(text(r#"2["a"]"#)).unwrap().unwrap();
        assert_eq!(p.kind, PacketType::Event);
        let p = r.push_text(text("0")).unwrap().unwrap();
        assert_eq!(p.data, PacketData::None);
        // A binary packet declaring no attachment is complete at once.
        let p = r.push_text(text(r#"50-["a"]"#)).unwrap().unwrap();
        assert_eq!(p.kind, PacketType::BinaryEvent);
        assert!(p.attachments.is_empty());
        assert!(!r.is_waiting());
    }

    #[test]
    fn unexpected_messages() {
        let mut r = Reassembler::default();
        let e = r.push_binary(bin(&[1])).unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::UnexpectedAttachment);
        assert_eq!(
            r.push_text(text(r#"51-["a",{"_placeholder":true,"num":0}]"#))
                .unwrap(),
            None
        );
        let e = r.push_text(text(r#"2["a"]"#)).unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::UnexpectedAttachment);
        assert!(r.is_waiting());
        // Decode errors come through, and limits apply.
        let mut r = Reassembler::new(DecodeLimits { max_attachments: 1 });
        let e = r.push_text(text(r#"52-["a"]"#)).unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::TooManyAttachments);
        assert!(!r.is_waiting());
        let e = r.push_text(text("2")).unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::InvalidData);
    }

    proptest! {
        #[test]
        fn reassembles_encoded_packets(packets in prop::collection::vec(valid_packet(), 1..6)) {
            let mut r = Reassembler::default();
            for p in &packets {
                let mut out = BytesMut::new();
                p.encode(&mut out);
                let mut got = r.push_text(out.freeze()).unwrap();
                for (i, a) in p.attachments.iter().enumerate() {
                    prop_assert!(got.is_none());
                    prop_assert_eq!(r.buffered_bytes(), p.attachments[..i].iter().map(Bytes::len).sum::<usize>());
                    got = r.push_binary(a.clone()).unwrap();
                }
                prop_assert_eq!(got.as_ref(), Some(p));
                prop_assert!(!r.is_waiting());
            }
        }
    }
}
