//! CORS, as Node's `cors` option: preflight answers and the headers added to every answer.

use bytes::Bytes;
use http::Response;
use http::StatusCode;
use http::header::{self, HeaderValue};
use http_body_util::Full;

use crate::config::AllowOrigin;
use crate::engine::Engine;

pub(crate) fn preflight_response(
    engine: &Engine,
    req: &http::request::Parts,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::NO_CONTENT;
    if let Some(cors) = &engine.config().cors {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, cors.methods.clone());
        let allowed = cors.allowed_headers.clone().or_else(|| {
            req.headers
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .cloned()
        });
        if let Some(allowed) = allowed {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    res
}

pub(crate) fn add_cors_headers(
    engine: &Engine,
    origin: Option<&HeaderValue>,
    res: &mut Response<Full<Bytes>>,
) {
    let Some(cors) = &engine.config().cors else {
        return;
    };
    let allow = match (&cors.origin, origin) {
        (AllowOrigin::Any, Some(o)) if cors.credentials => Some(o.clone()),
        (AllowOrigin::Any, _) => Some(HeaderValue::from_static("*")),
        (AllowOrigin::Mirror, Some(o)) => Some(o.clone()),
        (AllowOrigin::List(list), Some(o)) if list.contains(o) => Some(o.clone()),
        _ => None,
    };
    let h = res.headers_mut();
    if let Some(allow) = allow {
        if allow != "*" {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        if cors.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}
