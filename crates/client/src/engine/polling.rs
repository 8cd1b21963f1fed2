//! HTTP long-polling: one parked `GET` to receive, at most one `POST` at a time to send, each
//! on its own HTTP/1.1 connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use volley_proto::engine::{OpenPacket, Packet, payload};

use super::{EngineConfig, Pump, PumpCmd, PumpEvent, TransportKind, handshake, protocol_error};
use crate::error::{TransportError, TransportErrorKind};

/// One HTTP/1.1 connection, reopened when the server closed it.
#[derive(Default)]
pub(super) struct HttpConn {
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpConn {
    async fn connect(cfg: &EngineConfig) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let stream = super::net::connect(&cfg.target, &cfg.tls).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| TransportError::new(TransportErrorKind::Io, format!("HTTP: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "polling connection ended");
            }
        });
        Ok(sender)
    }

    /// Sends one request and reads the whole answer.
    async fn request(
        &mut self,
        cfg: &EngineConfig,
        method: Method,
        target: String,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), TransportError> {
        let reusable = match self.sender.take() {
            Some(mut s) => s.ready().await.is_ok().then_some(s),
            None => None,
        };
        let mut sender = match reusable {
            Some(s) => s,
            None => {
                let mut s = Self::connect(cfg).await?;
                s.ready().await.map_err(|e| {
                    TransportError::new(TransportErrorKind::Io, format!("HTTP: {e}"))
                })?;
                s
            }
        };
        let mut req = Request::builder()
            .method(method.clone())
            .uri(target)
            .header(header::HOST, cfg.target.authority());
        for (k, v) in &cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if method == Method::POST {
            req = req.header(header::CONTENT_TYPE, "text/plain;charset=UTF-8");
        }
        let req = req.body(Full::new(body)).map_err(|e| {
            TransportError::new(TransportErrorKind::InvalidConfig, format!("request: {e}"))
        })?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| TransportError::new(TransportErrorKind::Io, format!("HTTP: {e}")))?;
        let status = resp.status();
        let keep = !resp
            .headers()
            .get(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| TransportError::new(TransportErrorKind::Io, format!("HTTP body: {e}")))?
            .to_bytes();
        if keep {
            self.sender = Some(sender);
        }
        Ok((status, body))
    }
}

fn http_error(status: StatusCode, body: &[u8]) -> TransportError {
    let body = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    TransportError::new(TransportErrorKind::Http, format!("HTTP {status}: {body}"))
}

/// The handshake over polling, then the pump.
pub(super) async fn open(cfg: Arc<EngineConfig>) -> Result<(OpenPacket, Pump), TransportError> {
    let mut conn = HttpConn::default();
    let target = cfg.path_and_query(TransportKind::Polling, None);
    let (status, body) = conn
        .request(&cfg, Method::GET, target, Bytes::new())
        .await?;
    if status != StatusCode::OK {
        return Err(http_error(status, &body));
    }
    let mut packets = payload::decode(body);
    let open = handshake(
        packets
            .next()
            .transpose()
            .map_err(|e| protocol_error(e.to_string()))?,
    )?;
    let rest = packets
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| protocol_error(e.to_string()))?;
    let sid = open.sid.clone();
    let max_payload = usize::try_from(open.max_payload).unwrap_or(usize::MAX);
    let pump = Pump::spawn(TransportKind::Polling, move |cmd, ev, busy| {
        run(cfg, sid, max_payload, rest, conn, cmd, ev, busy)
    });
    Ok((open, pump))
}

type Pending = Pin<Box<dyn Future<Output = (HttpConn, Result<Bytes, TransportError>)> + Send>>;

fn get(cfg: Arc<EngineConfig>, sid: String, mut conn: HttpConn) -> Pending {
    Box::pin(async move {
        let target = cfg.path_and_query(TransportKind::Polling, Some(&sid));
        let r = match conn.request(&cfg, Method::GET, target, Bytes::new()).await {
            Ok((StatusCode::OK, body)) => Ok(body),
            Ok((status, body)) => Err(http_error(status, &body)),
            Err(e) => Err(e),
        };
        (conn, r)
    })
}

fn post(cfg: Arc<EngineConfig>, sid: String, mut conn: HttpConn, body: Bytes) -> Pending {
    Box::pin(async move {
        let target = cfg.path_and_query(TransportKind::Polling, Some(&sid));
        let r = match conn.request(&cfg, Method::POST, target, body).await {
            Ok((StatusCode::OK, body)) => Ok(body),
            Ok((status, body)) => Err(http_error(status, &body)),
            Err(e) => Err(e),
        };
        (conn, r)
    })
}

/// The most packets one POST carries. python-engineio (python-socketio's server) decodes at
/// most 16 packets per payload and drops a longer payload whole while answering `200 ok`;
/// Node's server has no limit, and smaller POSTs cost it nothing.
const MAX_PACKETS_PER_PAYLOAD: usize = 16;

/// Takes packets from the front of `queue` into one payload of about `max_payload` bytes and
/// at most [`MAX_PACKETS_PER_PAYLOAD`] packets (always at least one packet).
fn batch(queue: &mut Vec<Packet>, max_payload: usize) -> Bytes {
    let mut out = BytesMut::new();
    let mut taken = 0;
    for p in queue.iter().take(MAX_PACKETS_PER_PAYLOAD) {
        let before = out.len();
        payload::push(p, &mut out);
        if taken > 0 && out.len() > max_payload {
            out.truncate(before);
            break;
        }
        taken += 1;
    }
    queue.drain(..taken);
    out.freeze()
}

async fn pending(f: &mut Option<Pending>) -> (HttpConn, Result<Bytes, TransportError>) {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    cfg: Arc<EngineConfig>,
    sid: String,
    max_payload: usize,
    initial: Vec<Packet>,
    conn: HttpConn,
    mut cmd_rx: mpsc::UnboundedReceiver<PumpCmd>,
    ev_tx: mpsc::Sender<PumpEvent>,
    busy: Arc<AtomicBool>,
) {
    for p in initial {
        if ev_tx.send(PumpEvent::Packet(p)).await.is_err() {
            return;
        }
    }
    let mut get_fut = Some(get(cfg.clone(), sid.clone(), conn));
    let mut post_fut: Option<Pending> = None;
    let mut post_conn = Some(HttpConn::default());
    let mut queue: Vec<Packet> = Vec::new();
    let mut paused = false;
    let mut closing = false;
    let mut commands_open = true;
    loop {
        if post_fut.is_none() && !queue.is_empty() {
            let body = batch(&mut queue, max_payload);
            let conn = post_conn.take().unwrap_or_default();
            post_fut = Some(post(cfg.clone(), sid.clone(), conn, body));
        }
        busy.store(post_fut.is_some(), Ordering::Release);
        if closing && post_fut.is_none() {
            return;
        }
        if paused && get_fut.is_none() && post_fut.is_none() {
            let _ = ev_tx.send(PumpEvent::Paused).await;
            return;
        }
        tokio::select! {
            (conn, r) = pending(&mut get_fut) => {
                get_fut = None;
                let body = match r {
                    Ok(body) => body,
                    Err(e) => {
                        let _ = ev_tx.send(PumpEvent::Error(e)).await;
                        return;
                    }
                };
                for p in payload::decode(body) {
                    match p {
                        Ok(p) => {
                            let close = p == Packet::Close;
                            if ev_tx.send(PumpEvent::Packet(p)).await.is_err() || close {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = ev_tx.send(PumpEvent::Error(protocol_error(e.to_string()))).await;
                            return;
                        }
                    }
                }
                if !paused && !closing {
                    get_fut = Some(get(cfg.clone(), sid.clone(), conn));
                }
            }
            (conn, r) = pending(&mut post_fut) => {
                post_fut = None;
                post_conn = Some(conn);
                if let Err(e) = r {
                    let _ = ev_tx.send(PumpEvent::Error(e)).await;
                    return;
                }
            }
            cmd = cmd_rx.recv(), if commands_open => match cmd {
                Some(PumpCmd::Send(packets)) => queue.extend(packets),
                Some(PumpCmd::Pause) => paused = true,
                Some(PumpCmd::Close) => {
                    queue.push(Packet::Close);
                    closing = true;
                    get_fut = None;
                }
                None => {
                    commands_open = false;
                    if post_fut.is_none() && queue.is_empty() {
                        return;
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use volley_proto::engine::Message;

    #[test]
    fn batches_respect_max_payload() {
        let mut q: Vec<Packet> = (0..5)
            .map(|i| Packet::Message(Message::text(format!("{i}xxxxxxxx"))))
            .collect();
        let b = batch(&mut q, 25);
        assert_eq!(&b[..], b"40xxxxxxxx\x1e41xxxxxxxx");
        assert_eq!(q.len(), 3);
        // One packet always goes, even over the limit.
        let b = batch(&mut q, 1);
        assert_eq!(&b[..], b"42xxxxxxxx");
        let b = batch(&mut q, 1000);
        assert_eq!(&b[..], b"43xxxxxxxx\x1e44xxxxxxxx");
        assert!(q.is_empty());
    }

    #[test]
    fn batches_have_at_most_16_packets() {
        let mut q: Vec<Packet> = (0..20)
            .map(|i| Packet::Message(Message::text(format!("{i}"))))
            .collect();
        let b = batch(&mut q, 1 << 20);
        assert_eq!(b.iter().filter(|&&c| c == 0x1e).count(), 15);
        assert_eq!(q.len(), 4);
    }
}
