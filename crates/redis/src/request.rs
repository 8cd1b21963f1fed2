//! Requests to the other servers and the bookkeeping of their answers: a pending table
//! keyed by request id.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use volley_core::adapter::{AckSink, AdapterError};

use crate::adapter::RedisAdapter;
use crate::message::Message;
use crate::packet::values_to_args;

pub(crate) enum Pending {
    /// A request whose answers are collected by the requesting future.
    Collect(mpsc::UnboundedSender<Message>),
    /// A broadcast or serverSideEmit with acknowledgements.
    Acks(Arc<dyn AckSink>),
}

impl RedisAdapter {
    pub(crate) fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers acknowledgements for `request_id` and forgets them after `ttl`.
    pub(crate) fn register_acks(
        self: &Arc<Self>,
        request_id: &str,
        sink: Arc<dyn AckSink>,
        ttl: Duration,
    ) {
        self.pending()
            .insert(request_id.to_owned(), Pending::Acks(sink));
        let weak = Arc::downgrade(self);
        let rid = request_id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if let Some(me) = weak.upgrade() {
                me.pending().remove(&rid);
            }
        });
    }
    pub(crate) fn on_response(&self, msg: Message) {
        let Some(rid) = msg.request_id().map(str::to_owned) else {
            return;
        };
        let mut pending = self.pending();
        match pending.get(&rid) {
            Some(Pending::Collect(tx)) => {
                let gone = tx.send(msg).is_err();
                if gone {
                    pending.remove(&rid);
                }
            }
            Some(Pending::Acks(sink)) => {
                let sink = sink.clone();
                drop(pending);
                match msg {
                    Message::BroadcastClientCount { client_count, .. } => {
                        sink.client_count(client_count as usize);
                    }
                    Message::BroadcastAck { packet, .. }
                    | Message::ServerSideEmitResponse { packet, .. } => {
                        sink.response("", values_to_args(&[packet]));
                    }
                    _ => {}
                }
            }
            None => {}
        }
    }

    pub(crate) async fn server_count_now(&self) -> Result<usize, AdapterError> {
        let link = &self.shared.link;
        if !link.is_healthy() {
            return Err(link.unavailable());
        }
        let (sub, channel) = self.shared.count_query(&self.nsp);
        // `[channel, n]`; on a cluster, shard channels are counted on the master owning
        // their slot (the only node they are subscribed on), other channels on every node
        // (a map `{channel: n}` summed by redis-rs: a SUBSCRIBE may be on any node).
        let cmd = redis::cmd("PUBSUB").arg(sub).arg(&channel).clone();
        let reply: redis::Value = if sub == "SHARDNUMSUB" {
            link.query_at(&cmd, &channel).await?
        } else {
            link.query(&cmd).await?
        };
        let n: i64 = match reply {
            redis::Value::Array(v) => v.iter().filter_map(int_of).sum(),
            redis::Value::Map(m) => m.iter().filter_map(|(_, v)| int_of(v)).sum(),
            _ => 0,
        };
        Ok(n.max(1) as usize)
    }

    /// Sends `request` and collects the other servers' answers (one each).
    pub(crate) async fn request(
        self: &Arc<Self>,
        request_id: String,
        request: Message,
    ) -> Result<Vec<Message>, AdapterError> {
        let expected = self.server_count_now().await?.saturating_sub(1);
        if expected == 0 {
            return Ok(Vec::new());
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.pending()
            .insert(request_id.clone(), Pending::Collect(tx));
        let guard = RemoveOnDrop {
            adapter: self.clone(),
            request_id: request_id.clone(),
        };
        self.shared.publish_request(&self.nsp, &request)?;
        let mut out = Vec::with_capacity(expected);
        let deadline = tokio::time::Instant::now() + self.shared.config.requests_timeout;
        while out.len() < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(_) => {
                    self.shared
                        .link
                        .counters
                        .request_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(AdapterError::Timeout {
                        expected,
                        received: out.len(),
                    });
                }
            }
        }
        drop(guard);
        Ok(out)
    }
}

fn int_of(v: &redis::Value) -> Option<i64> {
    match v {
        redis::Value::Int(n) => Some(*n),
        _ => None,
    }
}

pub(crate) struct RemoveOnDrop {
    adapter: Arc<RedisAdapter>,
    request_id: String,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        self.adapter.pending().remove(&self.request_id);
    }
}
