//! Channel names, where each message is published, what is subscribed, and which
//! namespace and kind a received channel belongs to.

use std::sync::Arc;

use tokio::sync::oneshot;
use volley_core::adapter::AdapterError;

use crate::adapter::RedisAdapter;
use crate::cluster::Shared;
use crate::config::{Mode, SubscriptionMode};
use crate::link::PubCmd;
use crate::message::{
    Message, encode_classic, encode_classic_broadcast, encode_cluster, encode_cluster_msgpack,
    encode_stream_entry,
};

impl Shared {
    pub(crate) fn classic(&self) -> bool {
        matches!(self.config.mode, Mode::Classic)
    }

    pub(crate) fn streams(&self) -> bool {
        matches!(self.config.mode, Mode::Streams)
    }

    /// Whether requests and responses use shard channels (SPUBLISH / SSUBSCRIBE).
    pub(crate) fn sharded_pubsub(&self) -> bool {
        match self.config.mode {
            Mode::Classic => false,
            Mode::Sharded(_) => true,
            Mode::Streams => self.config.streams.sharded_pubsub,
        }
    }

    pub(crate) fn pub_cmd(&self) -> PubCmd {
        if self.sharded_pubsub() {
            PubCmd::SPublish
        } else {
            PubCmd::Publish
        }
    }

    /// The channel whose subscribers are the servers of namespace `nsp`, and how to count
    /// them (`NUMSUB` or `SHARDNUMSUB`).
    pub(crate) fn count_query(&self, nsp: &str) -> (&'static str, String) {
        match self.config.mode {
            Mode::Classic => ("NUMSUB", self.request_channel(nsp)),
            _ if self.sharded_pubsub() => ("SHARDNUMSUB", self.main_channel(nsp)),
            _ => ("NUMSUB", self.main_channel(nsp)),
        }
    }

    /// `key#nsp#`: classic broadcasts (pattern `key#nsp#*`), the sharded main channel.
    pub(crate) fn main_channel(&self, nsp: &str) -> String {
        format!("{}#{nsp}#", self.config.key)
    }

    /// `key#nsp#room#`: classic single-room broadcasts, sharded room channels.
    pub(crate) fn room_channel(&self, nsp: &str, room: &str) -> String {
        format!("{}#{nsp}#{room}#", self.config.key)
    }

    pub(crate) fn request_channel(&self, nsp: &str) -> String {
        format!("{}-request#{nsp}#", self.config.key)
    }

    pub(crate) fn response_channel(&self, nsp: &str) -> String {
        format!("{}-response#{nsp}#", self.config.key)
    }

    pub(crate) fn own_response_channel(&self, nsp: &str) -> String {
        match self.config.mode {
            Mode::Classic => format!("{}-response#{nsp}#{}#", self.config.key, self.uid),
            Mode::Sharded(_) | Mode::Streams => format!("{}#{nsp}#{}#", self.config.key, self.uid),
        }
    }

    pub(crate) fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), AdapterError> {
        self.link.publish(self.pub_cmd(), channel, payload)
    }

    /// Publishes a request (anything but a response) of namespace `nsp`.
    pub(crate) fn publish_request(&self, nsp: &str, message: &Message) -> Result<(), AdapterError> {
        if self.classic() {
            let (channel, body) = match message {
                Message::Broadcast {
                    packet,
                    opts,
                    request_id: None,
                } => {
                    let channel = match opts.rooms.as_slice() {
                        [room] => self.room_channel(nsp, room),
                        _ => self.main_channel(nsp),
                    };
                    (
                        channel,
                        encode_classic_broadcast(&self.uid, packet, opts, false),
                    )
                }
                _ => {
                    let body = encode_classic(Some(&self.uid), message)
                        .ok_or_else(|| AdapterError::Encode("not a classic message".into()))?;
                    (self.request_channel(nsp), body)
                }
            };
            self.publish(channel, body)
        } else if self.streams() {
            self.publish_streams(nsp, message)
        } else {
            let body = encode_cluster(&self.uid, nsp, message)
                .ok_or_else(|| AdapterError::Encode("not a cluster message".into()))?;
            let channel = match (self.config.mode, message) {
                (
                    Mode::Sharded(mode),
                    Message::Broadcast {
                        opts,
                        request_id: None,
                        ..
                    },
                ) if opts.rooms.len() == 1 => {
                    let room = &opts.rooms[0];
                    let by_room = match mode {
                        SubscriptionMode::Static => false,
                        // A 20-character room looks like a socket id: Node's dynamic mode
                        // does not subscribe those.
                        SubscriptionMode::Dynamic => room.chars().count() != 20,
                        SubscriptionMode::DynamicPrivate => true,
                    };
                    if by_room {
                        self.room_channel(nsp, room)
                    } else {
                        self.main_channel(nsp)
                    }
                }
                _ => self.main_channel(nsp),
            };
            self.publish(channel, body)
        }
    }

    /// Publishes a response to `requester`'s request.
    pub(crate) fn publish_response(&self, nsp: &str, requester: Option<&str>, message: &Message) {
        let result = if self.classic() {
            let Some(body) = encode_classic(None, message) else {
                return;
            };
            // serverSideEmit acknowledgements always use the shared channel.
            let specific = self.config.publish_on_specific_response_channel
                && !matches!(message, Message::ServerSideEmitResponse { .. });
            let channel = match requester {
                Some(uid) if specific => format!("{}-response#{nsp}#{uid}#", self.config.key),
                _ => self.response_channel(nsp),
            };
            self.publish(channel, body)
        } else {
            let Some(requester) = requester else {
                return;
            };
            let body = if self.streams() {
                encode_cluster_msgpack(&self.uid, nsp, message)
            } else {
                encode_cluster(&self.uid, nsp, message)
            };
            let Some(body) = body else {
                return;
            };
            self.publish(self.room_channel(nsp, requester), body)
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "redis adapter: response not sent");
        }
    }

    pub(crate) fn subscribe_namespace(&self, nsp: &str) {
        self.link.update_subs(|s| match self.config.mode {
            Mode::Classic => {
                s.patterns.insert(format!("{}*", self.main_channel(nsp)));
                s.channels.insert(self.request_channel(nsp));
                s.channels.insert(self.response_channel(nsp));
                s.channels.insert(self.own_response_channel(nsp));
            }
            Mode::Sharded(_) | Mode::Streams => {
                let set = if self.sharded_pubsub() {
                    &mut s.shard
                } else {
                    &mut s.channels
                };
                set.insert(self.main_channel(nsp));
                set.insert(self.own_response_channel(nsp));
            }
        });
    }

    /// Streams mode: requests that want answers (a broadcast with acknowledgements,
    /// serverSideEmit, fetchSockets) go over pub/sub as MessagePack; the rest is appended
    /// to the stream (`XADD <stream> MAXLEN ~ <max_len> * uid .. nsp .. type .. data ..`).
    fn publish_streams(&self, nsp: &str, message: &Message) -> Result<(), AdapterError> {
        let ephemeral = matches!(
            message,
            Message::Broadcast {
                request_id: Some(_),
                ..
            } | Message::ServerSideEmit { .. }
                | Message::FetchSockets { .. }
        );
        if ephemeral {
            let body = encode_cluster_msgpack(&self.uid, nsp, message)
                .ok_or_else(|| AdapterError::Encode("not a cluster message".into()))?;
            return self.publish(self.main_channel(nsp), body);
        }
        self.link.send(self.xadd(nsp, message)?)
    }

    /// Streams mode: appends a broadcast to the stream; the receiver gets its entry id.
    pub(crate) fn append_broadcast(
        &self,
        nsp: &str,
        message: &Message,
    ) -> Result<oneshot::Receiver<String>, AdapterError> {
        self.link.send_with_reply(self.xadd(nsp, message)?)
    }

    /// `XADD <stream> MAXLEN ~ <max_len> * uid .. nsp .. type .. [data ..]`.
    fn xadd(&self, nsp: &str, message: &Message) -> Result<redis::Cmd, AdapterError> {
        let cfg = &self.config.streams;
        let fields = encode_stream_entry(&self.uid, nsp, message, cfg.only_plaintext)
            .ok_or_else(|| AdapterError::Encode("not a cluster message".into()))?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&cfg.stream_name)
            .arg("MAXLEN")
            .arg("~")
            .arg(cfg.max_len)
            .arg("*");
        for (k, v) in fields {
            cmd.arg(k).arg(v);
        }
        Ok(cmd)
    }
}

/// What a subscribed channel carries.
pub(crate) enum ChannelKind {
    /// Classic `key#nsp#[room#]`.
    ClassicBroadcast,
    /// Classic `key-request#nsp#`.
    ClassicRequest,
    /// Classic `key-response#nsp#[uid#]`.
    ClassicResponse,
    /// Sharded main or room channel.
    Sharded,
    /// Sharded `key#nsp#<our uid>#`.
    ShardedResponse,
}

impl Shared {
    /// The namespace adapter and kind of a channel.
    pub(crate) fn route(&self, channel: &str) -> Option<(Arc<RedisAdapter>, ChannelKind)> {
        let key = &self.config.key;
        let namespaces = self.namespaces.read().unwrap_or_else(|p| p.into_inner());
        let find = |rest: &str| -> Option<(Arc<RedisAdapter>, usize)> {
            // The longest namespace `N` such that `rest` starts with `N#`.
            namespaces
                .iter()
                .filter(|(n, _)| {
                    rest.len() > n.len() && rest.starts_with(n.as_str()) && {
                        rest.as_bytes()[n.len()] == b'#'
                    }
                })
                .max_by_key(|(n, _)| n.len())
                .and_then(|(n, a)| a.upgrade().map(|a| (a, n.len() + 1)))
        };
        if self.classic() {
            if let Some(rest) = channel
                .strip_prefix(key.as_str())
                .and_then(|r| r.strip_prefix("-request#"))
            {
                let (a, _) = find(rest)?;
                return Some((a, ChannelKind::ClassicRequest));
            }
            if let Some(rest) = channel
                .strip_prefix(key.as_str())
                .and_then(|r| r.strip_prefix("-response#"))
            {
                let (a, _) = find(rest)?;
                return Some((a, ChannelKind::ClassicResponse));
            }
            let rest = channel.strip_prefix(key.as_str())?.strip_prefix('#')?;
            let (a, _) = find(rest)?;
            Some((a, ChannelKind::ClassicBroadcast))
        } else {
            let rest = channel.strip_prefix(key.as_str())?.strip_prefix('#')?;
            let (a, at) = find(rest)?;
            let tail = &rest[at..];
            let kind = if tail.strip_suffix('#') == Some(self.uid.as_str()) {
                ChannelKind::ShardedResponse
            } else {
                ChannelKind::Sharded
            };
            Some((a, kind))
        }
    }
}
