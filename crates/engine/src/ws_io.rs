//! The byte stream under a session's WebSocket: the TCP socket itself when hyper was serving
//! a plain `TcpStream`, hyper's upgraded connection otherwise.
//!
//! hyper hands an upgraded connection over as [`Upgraded`], a boxed IO object behind a check
//! for bytes it read past the request. Every read and write of the WebSocket would go through
//! it (and hyper's and tokio's buffer conversions at each layer): a sixth of the user-space
//! work of reading a small frame, and one more heap object touched per read and write. When
//! the connection is a `TcpStream` (what [`serve`](crate::serve) and `axum::serve` give
//! hyper), it is taken out instead, and the bytes hyper read ahead are served first.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, Bytes};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The IO a session's WebSocket runs on.
#[derive(Debug)]
pub(crate) enum WsIo {
    /// The TCP socket, taken out of hyper's upgrade.
    Tcp {
        stream: TcpStream,
        /// Bytes hyper read past the upgrade request (the client's first frames, sent
        /// without waiting for the `101`): read before the socket.
        pre: Bytes,
    },
    /// Any other connection (TLS, a user's own IO type): through hyper's upgrade.
    Upgraded(TokioIo<Upgraded>),
}

impl WsIo {
    /// The socket under `upgraded` when it is a `TcpStream` that hyper served directly or
    /// through hyper-util's HTTP/1-or-2 detection (axum); `upgraded` itself otherwise.
    pub(crate) fn new(upgraded: Upgraded) -> Self {
        let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => return Self::tcp(parts.io, parts.read_buf),
            Err(upgraded) => upgraded,
        };
        match hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<TcpStream>>(upgraded) {
            Ok(parts) => Self::tcp(parts.io, parts.read_buf),
            Err(upgraded) => Self::Upgraded(TokioIo::new(upgraded)),
        }
    }

    fn tcp(io: TokioIo<TcpStream>, pre: Bytes) -> Self {
        // `pre` is a view of hyper's read buffer (8 KiB), even when empty: held, it would keep
        // that buffer for as long as the WebSocket lives. An empty one is dropped at once, the
        // rare bytes sent before the `101` are copied out.
        let pre = if pre.is_empty() {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(&pre)
        };
        Self::Tcp {
            stream: io.into_inner(),
            pre,
        }
    }

    /// Whether the WebSocket runs straight on the TCP socket.
    #[cfg(test)]
    pub(crate) fn is_tcp(&self) -> bool {
        matches!(self, Self::Tcp { .. })
    }
}

impl AsyncRead for WsIo {
    // Inlined into tungstenite's read, so that a read costs no call of its own here.
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp { stream, pre } => {
                if pre.is_empty() {
                    return Pin::new(stream).poll_read(cx, buf);
                }
                let n = pre.len().min(buf.remaining());
                buf.put_slice(&pre[..n]);
                if n == pre.len() {
                    // Lets go of the early bytes' buffer now rather than with the socket.
                    *pre = Bytes::new();
                } else {
                    pre.advance(n);
                }
                Poll::Ready(Ok(()))
            }
            WsIo::Upgraded(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WsIo {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WsIo::Tcp { stream, .. } => Pin::new(stream).poll_write(cx, buf),
            WsIo::Upgraded(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WsIo::Tcp { stream, .. } => Pin::new(stream).poll_write_vectored(cx, bufs),
            WsIo::Upgraded(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WsIo::Tcp { stream, .. } => stream.is_write_vectored(),
            WsIo::Upgraded(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp { stream, .. } => Pin::new(stream).poll_flush(cx),
            WsIo::Upgraded(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp { stream, .. } => Pin::new(stream).poll_shutdown(cx),
            WsIo::Upgraded(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use http::{Request, Response, StatusCode, header};
    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// An upgrade request, and the bytes of the new protocol right behind it in one write.
    const REQUEST: &[u8] =
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n";
    const EARLY: &[u8] = b"early bytes";

    /// How the test serves a connection: the way `crate::serve` does, through hyper-util's
    /// HTTP/1-or-2 detection (axum), or with the socket wrapped in an IO type of the user's.
    #[derive(Clone, Copy)]
    enum Server {
        Http1,
        Auto,
        Wrapped,
    }

    /// A user's own IO type around the socket: not a `TcpStream` to hyper.
    struct Wrapper(TcpStream);

    impl AsyncRead for Wrapper {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Wrapper {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    /// Serves one connection as `server` says, answers its upgrade request with a `101`, and
    /// returns the client's socket (the request and [`EARLY`] sent in one write, the response
    /// read) and the server's [`WsIo`] of the upgraded connection.
    async fn upgrade(server: Server) -> (TcpStream, WsIo) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let service = service_fn(move |mut req: Request<Incoming>| {
                let tx = tx.clone();
                let on_upgrade = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let upgraded = on_upgrade.await.expect("the upgrade completes");
                    let _ = tx.send(WsIo::new(upgraded));
                });
                let mut res = Response::new(Full::new(Bytes::new()));
                *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                res.headers_mut()
                    .insert(header::CONNECTION, "Upgrade".parse().unwrap());
                res.headers_mut()
                    .insert(header::UPGRADE, "test".parse().unwrap());
                async move { Ok::<_, Infallible>(res) }
            });
            let http1 = hyper::server::conn::http1::Builder::new();
            let _ = match server {
                Server::Http1 => {
                    http1
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await
                }
                Server::Wrapped => {
                    http1
                        .serve_connection(TokioIo::new(Wrapper(stream)), service)
                        .with_upgrades()
                        .await
                }
                Server::Auto => {
                    let auto = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    );
                    let _ = auto
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                    Ok(())
                }
            };
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        // One write: hyper's first read takes the early bytes along with the request.
        client.write_all(&[REQUEST, EARLY].concat()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(client.read_u8().await.unwrap());
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
        let io = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the upgrade within 10 s")
            .expect("the upgraded connection");
        (client, io)
    }

    /// Reads from `io` until it gave `want.len()` bytes, `chunk` bytes at most at a time.
    async fn read_exact(io: &mut WsIo, want: &[u8], chunk: usize) {
        let mut got = Vec::new();
        while got.len() < want.len() {
            let mut buf = vec![0; chunk];
            let n = io.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "end of stream after {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, want);
    }

    /// Both ways over the upgraded connection: what the client sent with its request comes
    /// first, then what it sends now; what the server writes reaches the client.
    async fn exchange(mut client: TcpStream, mut io: WsIo, chunk: usize) {
        client.write_all(b" and late ones").await.unwrap();
        read_exact(&mut io, b"early bytes and late ones", chunk).await;
        io.write_all(b"from the server").await.unwrap();
        io.flush().await.unwrap();
        let mut buf = [0; 15];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"from the server");
        io.shutdown().await.unwrap();
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn hyper_http1_gives_up_its_tcp_stream_and_early_bytes() {
        let (client, io) = upgrade(Server::Http1).await;
        assert!(io.is_tcp());
        let WsIo::Tcp { pre, .. } = &io else {
            unreachable!()
        };
        // Read past the request by hyper: what this test is about.
        assert_eq!(pre, EARLY);
        exchange(client, io, 64).await;
    }

    #[tokio::test]
    async fn early_bytes_are_served_across_small_reads() {
        let (client, io) = upgrade(Server::Http1).await;
        assert!(io.is_tcp());
        exchange(client, io, 4).await;
    }

    #[tokio::test]
    async fn hyper_util_auto_gives_up_its_tcp_stream_too() {
        let (client, io) = upgrade(Server::Auto).await;
        assert!(io.is_tcp());
        exchange(client, io, 64).await;
    }

    #[tokio::test]
    async fn another_io_type_stays_behind_hyper_upgrade() {
        let (client, io) = upgrade(Server::Wrapped).await;
        assert!(!io.is_tcp());
        exchange(client, io, 64).await;
    }

    /// hyper's read-ahead bytes are a view of its whole read buffer, even when there are none:
    /// the WebSocket must not keep that buffer (kilobytes per idle connection) alive.
    #[tokio::test]
    async fn hyper_read_buffer_is_not_kept() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut stream, _) = listener.accept().await.unwrap();
        for early in [&b""[..], b"\x81\x00"] {
            // What hyper hands over: the rest of the buffer it read the request into.
            let mut hyper_buf = bytes::BytesMut::with_capacity(8192);
            hyper_buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            hyper_buf.extend_from_slice(early);
            drop(hyper_buf.split_to(18));
            let read_buf = hyper_buf.split().freeze();
            let io = WsIo::tcp(TokioIo::new(stream), read_buf);
            assert!(
                hyper_buf.try_reclaim(8192),
                "the WebSocket holds hyper's read buffer ({} early bytes)",
                early.len()
            );
            let WsIo::Tcp { stream: s, pre } = io else {
                panic!("a TcpStream stays a TcpStream")
            };
            assert_eq!(&pre[..], early);
            stream = s;
        }
    }
}
