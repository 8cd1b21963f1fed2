//! The tower service and layer of a [`SocketIo`](crate::SocketIo) server.
//!
//! They wrap the engine's and keep the server state alive for as long as they are in use,
//! so a `SocketIo` handle may be dropped once the service is built.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;
use volley_engine::{EngineLayer, EngineService, NotFound};

use crate::server::IoInner;

/// Serves Socket.IO at its path; other requests go to `S` (404 for [`SocketIo::service`](crate::SocketIo::service)).
#[derive(Clone)]
pub struct SocketIoService<S = NotFound> {
    inner: EngineService<S>,
    _io: Arc<IoInner>,
}

impl<S: fmt::Debug> fmt::Debug for SocketIoService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIoService")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<S> SocketIoService<S> {
    pub(crate) fn new(inner: EngineService<S>, io: Arc<IoInner>) -> Self {
        Self { inner, _io: io }
    }
}

impl<S, B> Service<Request<B>> for SocketIoService<S>
where
    EngineService<S>: Service<Request<B>>,
{
    type Response = <EngineService<S> as Service<Request<B>>>::Response;
    type Error = <EngineService<S> as Service<Request<B>>>::Error;
    type Future = <EngineService<S> as Service<Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.inner.call(req)
    }
}

/// Puts Socket.IO in front of another service, e.g. an axum `Router`.
#[derive(Clone)]
pub struct SocketIoLayer {
    inner: EngineLayer,
    io: Arc<IoInner>,
}

impl fmt::Debug for SocketIoLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIoLayer")
            .field("inner", &self.inner)
            .finish()
    }
}

impl SocketIoLayer {
    pub(crate) fn new(inner: EngineLayer, io: Arc<IoInner>) -> Self {
        Self { inner, io }
    }
}

impl<S> Layer<S> for SocketIoLayer {
    type Service = SocketIoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SocketIoService::new(self.inner.layer(inner), self.io.clone())
    }
}
