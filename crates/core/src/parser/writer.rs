//! The argument writers of both formats: what `Args` hands each argument to.

use bytes::Bytes;
use serde::Serialize;
use volley_proto::socket::{from_slice_with_binary, to_writer_with_binary};

use super::{CodecError, Parser, msgpack};
use crate::args::{ArgsWriter, RawArgs};

/// Writes arguments as comma-separated JSON values, collecting binary attachments.
#[derive(Debug)]
pub struct JsonWriter<'a> {
    pub(super) out: &'a mut Vec<u8>,
    pub(super) attachments: &'a mut Vec<Bytes>,
    pub(super) first: bool,
    /// Where each argument starts and ends in `out`, when asked.
    pub(super) bounds: Option<Vec<(usize, usize)>>,
}

impl<'a> JsonWriter<'a> {
    pub(super) fn new(out: &'a mut Vec<u8>, attachments: &'a mut Vec<Bytes>, first: bool) -> Self {
        Self {
            out,
            attachments,
            first,
            bounds: None,
        }
    }

    fn separate(&mut self) -> usize {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out.len()
    }

    pub(super) fn record(&mut self, start: usize) {
        let end = self.out.len();
        if let Some(b) = &mut self.bounds {
            b.push((start, end));
        }
    }
}

impl ArgsWriter for JsonWriter<'_> {
    fn arg<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        let start = self.separate();
        to_writer_with_binary(self.out, value, self.attachments)?;
        self.record(start);
        Ok(())
    }

    fn raw(&mut self, args: &RawArgs) -> Result<(), CodecError> {
        if args.parser() == Parser::MsgPack {
            // Another format: carried over value by value, binary becoming attachments.
            for a in args.args() {
                let v: msgpack::Tree = msgpack::decode(a)?;
                self.arg(&v)?;
            }
            return Ok(());
        }
        if !self.attachments.is_empty() && !args.attachments().is_empty() {
            // Placeholders number attachments from 0 within one packet; raw arguments can
            // only be forwarded as the packet's only binary data.
            return Err(CodecError::custom(
                "raw arguments with binary cannot be mixed with other binary arguments",
            ));
        }
        for a in args.args() {
            let start = self.separate();
            self.out.extend_from_slice(a);
            self.record(start);
        }
        self.attachments.extend(args.attachments().iter().cloned());
        Ok(())
    }
}

/// Writes arguments as MessagePack values, one after the other (the array header is written
/// by the packet, once their number is known).
#[derive(Debug)]
pub struct MsgPackWriter<'a> {
    pub(super) out: &'a mut Vec<u8>,
    pub(super) count: usize,
    /// Where each argument starts and ends in `out`, when asked.
    pub(super) bounds: Option<Vec<(usize, usize)>>,
}

impl<'a> MsgPackWriter<'a> {
    pub(super) fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            count: 0,
            bounds: None,
        }
    }

    pub(super) fn record(&mut self, start: usize) {
        self.count += 1;
        let end = self.out.len();
        if let Some(b) = &mut self.bounds {
            b.push((start, end));
        }
    }
}

impl ArgsWriter for MsgPackWriter<'_> {
    fn arg<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        let start = self.out.len();
        msgpack::write_value(self.out, value)?;
        self.record(start);
        Ok(())
    }

    fn raw(&mut self, args: &RawArgs) -> Result<(), CodecError> {
        for a in args.args() {
            let start = self.out.len();
            match args.parser() {
                Parser::MsgPack => self.out.extend_from_slice(a),
                Parser::Json => {
                    let v: msgpack::Tree = from_slice_with_binary(a, args.attachments())?;
                    msgpack::write_value(self.out, &v)?;
                }
            }
            self.record(start);
        }
        Ok(())
    }
}
