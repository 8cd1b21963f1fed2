//! The tower service and layer: requests under the engine's path go to the engine (see
//! `routes`), the others to the inner service.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame as BodyFrame, SizeHint};
use http_body_util::Full;
use tower_layer::Layer;
use tower_service::Service;

use crate::engine::Engine;
use crate::routes::{BoxError, handle};

impl Engine {
    /// A tower service answering the engine's path and 404 elsewhere.
    pub fn service(&self) -> EngineService<NotFound> {
        EngineService::new(self.clone(), NotFound)
    }

    /// A tower layer answering the engine's path and passing other requests to the inner
    /// service.
    pub fn layer(&self) -> EngineLayer {
        EngineLayer::new(self.clone())
    }
}

/// Serves the engine's path; other requests go to `S`.
#[derive(Debug, Clone)]
pub struct EngineService<S> {
    engine: Engine,
    inner: S,
}

impl<S> EngineService<S> {
    pub(crate) fn new(engine: Engine, inner: S) -> Self {
        Self { engine, inner }
    }

    /// The engine behind this service.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A [`Layer`] that puts the engine in front of another service.
#[derive(Debug, Clone)]
pub struct EngineLayer {
    engine: Engine,
}

impl EngineLayer {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

impl<S> Layer<S> for EngineLayer {
    type Service = EngineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EngineService::new(self.engine.clone(), inner)
    }
}

/// The fallback of [`Engine::service`]: 404 for every request outside the engine's path.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(res))
    }
}

pin_project_lite::pin_project! {
    /// The response body of [`EngineService`]: the engine's own, or the inner service's.
    #[project = ResponseBodyProj]
    #[derive(Debug)]
    #[allow(missing_docs)] // the macro takes no doc comments on variant fields

    pub enum ResponseBody<B> {
        /// A body written by the engine.
        Engine { #[pin] body: Full<Bytes> },
        /// The inner service's body.
        Inner { #[pin] body: B },
    }
}

impl<B> ResponseBody<B> {
    fn engine(body: Full<Bytes>) -> Self {
        Self::Engine { body }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Self::Error>>> {
        match self.project() {
            ResponseBodyProj::Engine { body } => match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
                Poll::Ready(Some(Err(e))) => match e {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            ResponseBodyProj::Inner { body } => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Engine { body } => body.is_end_stream(),
            Self::Inner { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Engine { body } => body.size_hint(),
            Self::Inner { body } => body.size_hint(),
        }
    }
}

impl<S, B, ResB> Service<Request<B>> for EngineService<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    ResB: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // The inner service is driven to readiness in `call`, on a clone, only when a
        // request is for it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if !is_engine_path(req.uri().path(), self.engine.config().path()) {
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Box::pin(async move {
                poll_fn(|cx| inner.poll_ready(cx)).await?;
                let res = inner.call(req).await?;
                Ok(res.map(|body| ResponseBody::Inner { body }))
            });
        }
        let engine = self.engine.clone();
        Box::pin(async move {
            let res = handle(engine, req).await;
            Ok(res.map(ResponseBody::engine))
        })
    }
}

fn is_engine_path(path: &str, engine_path: &str) -> bool {
    path.starts_with(engine_path) || path == engine_path.trim_end_matches('/')
}
