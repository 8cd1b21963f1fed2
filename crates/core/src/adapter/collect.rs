//! Collecting acknowledgements from many sockets on many servers: [`AckCollector`] (an
//! [`AckSink`]) and [`AckStream`].

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::Notify;

use super::{AckSink, AdapterError};
use crate::error::AckError;
use crate::handler::BoxFuture;
use crate::{FromArgs, RawArgs};

/// One socket's answer to a broadcast with acknowledgements.
#[derive(Debug)]
pub struct AckResponse<T> {
    /// The socket that answered; `None` for a missing answer (timeout).
    pub socket_id: Option<String>,
    /// The answer, or why there is none.
    pub result: Result<T, AckError>,
}

#[derive(Default)]
struct CollectorState {
    responses: VecDeque<(String, RawArgs)>,
    expected_clients: usize,
    reported_servers: usize,
    received: usize,
    failed: Option<AckError>,
}

/// Gathers the answers to one broadcast with acknowledgements (or one `server_side_emit`
/// with acknowledgement), from every server; read them with an [`AckStream`].
#[derive(Default)]
pub struct AckCollector {
    state: Mutex<CollectorState>,
    notify: Notify,
    closed: AtomicBool,
}

impl fmt::Debug for AckCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("AckCollector")
            .field("expected", &s.expected_clients)
            .field("received", &s.received)
            .finish_non_exhaustive()
    }
}

impl AckCollector {
    fn lock(&self) -> std::sync::MutexGuard<'_, CollectorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A collector waiting for its first count.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Ends the collection with an error (the emit failed).
    pub fn fail(&self, e: AckError) {
        self.lock().failed = Some(e);
        self.notify.notify_one();
    }
}

impl AckSink for AckCollector {
    fn client_count(&self, n: usize) {
        let mut s = self.lock();
        s.expected_clients += n;
        s.reported_servers += 1;
        drop(s);
        self.notify.notify_one();
    }

    fn response(&self, socket_id: &str, args: RawArgs) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.lock()
            .responses
            .push_back((socket_id.to_owned(), args));
        self.notify.notify_one();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// The answers to a broadcast with acknowledgements, as they arrive; ends once every
/// selected socket on every server answered, or at the timeout with one `Timeout` item per
/// missing answer. [`AckStream::collect_all`] waits for the whole set.
pub struct AckStream<T> {
    inner: Pin<Box<dyn Stream<Item = AckResponse<T>> + Send>>,
}

impl<T> fmt::Debug for AckStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AckStream")
    }
}

enum Step<T> {
    Item(AckResponse<T>),
    Done,
}

impl<T: FromArgs> AckStream<T> {
    /// The answers `state` collects, until every socket counted on every server answered
    /// (`servers` resolves to how many servers take part; one without it) or `timeout`.
    pub fn new(
        state: Arc<AckCollector>,
        timeout: Duration,
        servers: Option<BoxFuture<Result<usize, AdapterError>>>,
    ) -> Self {
        let deadline = tokio::time::Instant::now() + timeout;
        let stream = async_stream(state, deadline, servers);
        Self {
            inner: Box::pin(stream),
        }
    }

    /// Waits for every answer (or the timeout) and returns them all.
    pub async fn collect_all(self) -> Vec<AckResponse<T>> {
        use futures_util::StreamExt as _;
        self.collect().await
    }
}

fn async_stream<T: FromArgs>(
    state: Arc<AckCollector>,
    deadline: tokio::time::Instant,
    servers: Option<BoxFuture<Result<usize, AdapterError>>>,
) -> impl Stream<Item = AckResponse<T>> + Send {
    struct Ctx {
        state: Arc<AckCollector>,
        deadline: tokio::time::Instant,
        servers: Option<BoxFuture<Result<usize, AdapterError>>>,
        expected_servers: Option<usize>,
        missing: usize,
        done: bool,
    }
    let ctx = Ctx {
        state,
        deadline,
        expected_servers: if servers.is_some() { None } else { Some(1) },
        servers,
        missing: 0,
        done: false,
    };
    futures_util::stream::unfold(ctx, |mut ctx| async move {
        loop {
            if ctx.missing > 0 {
                ctx.missing -= 1;
                let item = AckResponse {
                    socket_id: None,
                    result: Err(AckError::Timeout),
                };
                return Some((item, ctx));
            }
            if ctx.done {
                ctx.state.closed.store(true, Ordering::Release);
                return None;
            }
            let step: Option<Step<T>> = {
                let mut s = ctx.state.lock();
                if let Some(e) = s.failed.take() {
                    ctx.done = true;
                    Some(Step::Item(AckResponse {
                        socket_id: None,
                        result: Err(e),
                    }))
                } else if let Some((id, args)) = s.responses.pop_front() {
                    s.received += 1;
                    Some(Step::Item(AckResponse {
                        socket_id: Some(id),
                        result: T::from_args(args).map_err(AckError::Decode),
                    }))
                } else if ctx.expected_servers == Some(s.reported_servers)
                    && s.received >= s.expected_clients
                {
                    Some(Step::Done)
                } else {
                    None
                }
            };
            match step {
                Some(Step::Item(item)) => return Some((item, ctx)),
                Some(Step::Done) => {
                    ctx.done = true;
                    continue;
                }
                None => {}
            }
            let notified = ctx.state.notify.notified();
            tokio::pin!(notified);
            tokio::select! {
                () = &mut notified => {}
                n = async {
                    match ctx.servers.as_mut() {
                        Some(count) => count.await,
                        None => std::future::pending().await,
                    }
                }, if ctx.servers.is_some() => {
                    ctx.servers = None;
                    // A server count we cannot get means we cannot know when we are done:
                    // wait for the timeout.
                    ctx.expected_servers = n.ok().or(Some(usize::MAX));
                }
                () = tokio::time::sleep_until(ctx.deadline) => {
                    let s = ctx.state.lock();
                    ctx.missing = s.expected_clients.saturating_sub(s.received);
                    drop(s);
                    ctx.done = true;
                }
            }
        }
    })
}

impl<T> Stream for AckStream<T> {
    type Item = AckResponse<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn arg(n: &'static str) -> RawArgs {
        RawArgs::new(vec![Bytes::from_static(n.as_bytes())], vec![])
    }

    #[tokio::test(start_paused = true)]
    async fn collects_every_answer_then_ends() {
        let c = AckCollector::new();
        c.client_count(2);
        c.response("a", arg("1"));
        c.response("b", arg("2"));
        let all = AckStream::<u8>::new(c.clone(), Duration::from_secs(1), None)
            .collect_all()
            .await;
        let got: Vec<_> = all
            .iter()
            .map(|r| (r.socket_id.clone().unwrap(), *r.result.as_ref().unwrap()))
            .collect();
        assert_eq!(got, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
        assert!(c.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn missing_answers_time_out() {
        let c = AckCollector::new();
        c.client_count(3);
        c.response("a", arg("\"not a number\""));
        let servers: BoxFuture<Result<usize, AdapterError>> = Box::pin(async { Ok(1) });
        let all = AckStream::<u8>::new(c, Duration::from_secs(1), Some(servers))
            .collect_all()
            .await;
        assert_eq!(all.len(), 3);
        assert!(matches!(all[0].result, Err(AckError::Decode(_))));
        assert!(
            all[1..]
                .iter()
                .all(|r| r.socket_id.is_none() && matches!(r.result, Err(AckError::Timeout)))
        );
    }
}
