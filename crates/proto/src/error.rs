use std::fmt;

/// Why a decoder refused its input.
///
/// Every decoder in this crate returns this type, so a transport can report one kind of error
/// whatever layer the bad bytes belonged to. `offset` is the byte position in the decoder's own
/// input where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    offset: usize,
}

/// The kinds of [`DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input was empty where a packet was expected.
    Empty,
    /// The packet type is not one the protocol defines.
    UnknownPacketType,
    /// Text that must be UTF-8 was not.
    InvalidUtf8,
    /// A base64 binary record could not be decoded.
    InvalidBase64,
    /// A number (attachment count, ack id) was malformed or out of range.
    InvalidNumber,
    /// The namespace was malformed.
    InvalidNamespace,
    /// The JSON data was malformed or had the wrong shape for the packet type.
    InvalidData,
    /// A packet declared more binary attachments than allowed.
    TooManyAttachments,
    /// A binary attachment arrived that no packet was waiting for, or one was missing.
    UnexpectedAttachment,
    /// The input ended before the packet was complete.
    Truncated,
}

impl DecodeError {
    /// Creates an error of `kind` found at byte `offset`.
    pub fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    /// What was wrong.
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// Where in the decoder's input the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            DecodeErrorKind::Empty => "empty packet",
            DecodeErrorKind::UnknownPacketType => "unknown packet type",
            DecodeErrorKind::InvalidUtf8 => "text is not valid UTF-8",
            DecodeErrorKind::InvalidBase64 => "invalid base64 in binary record",
            DecodeErrorKind::InvalidNumber => "malformed number",
            DecodeErrorKind::InvalidNamespace => "malformed namespace",
            DecodeErrorKind::InvalidData => "malformed or misshapen JSON data",
            DecodeErrorKind::TooManyAttachments => "too many binary attachments",
            DecodeErrorKind::UnexpectedAttachment => "unexpected binary attachment",
            DecodeErrorKind::Truncated => "packet is truncated",
        };
        write!(f, "{what} at byte {}", self.offset)
    }
}

impl std::error::Error for DecodeError {}
