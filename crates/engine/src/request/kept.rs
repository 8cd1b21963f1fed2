//! The handshake request as a session keeps it for its whole life: compact, with the full
//! [`RequestInfo`] built the first time something asks for it.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};

use super::RequestInfo;

/// The handshake request of one session.
///
/// A `HeaderMap` costs about 100 bytes per header slot plus an allocation per value, and a
/// session rarely looks at its headers after the handshake; so the URI and the headers are
/// kept as one block of text (`uri`, then `name:value\n` per header: a header name holds no
/// `:` and a value no `\n`), and [`info`](Self::info) builds the [`RequestInfo`] once, on
/// first use. Owning its bytes, it keeps nothing of the HTTP connection's read buffer alive.
pub(crate) struct KeptRequest {
    method: Method,
    remote_addr: Option<SocketAddr>,
    uri_len: usize,
    text: Box<[u8]>,
    info: OnceLock<Arc<RequestInfo>>,
}

impl KeptRequest {
    pub(crate) fn new(req: &RequestInfo) -> Self {
        let uri = req.uri.to_string();
        let headers_len: usize = req
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 2)
            .sum();
        let mut text = Vec::with_capacity(uri.len() + headers_len);
        text.extend_from_slice(uri.as_bytes());
        for (name, value) in &req.headers {
            text.extend_from_slice(name.as_str().as_bytes());
            text.push(b':');
            text.extend_from_slice(value.as_bytes());
            text.push(b'\n');
        }
        Self {
            method: req.method.clone(),
            remote_addr: req.remote_addr,
            uri_len: uri.len(),
            text: text.into_boxed_slice(),
            info: OnceLock::new(),
        }
    }

    /// The full request, built on first use.
    pub(crate) fn info(&self) -> &Arc<RequestInfo> {
        self.info.get_or_init(|| Arc::new(self.build()))
    }

    fn build(&self) -> RequestInfo {
        let (uri, headers) = self.text.split_at(self.uri_len);
        let uri = Uri::try_from(uri).unwrap_or_default();
        let mut map = HeaderMap::new();
        for line in headers.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = HeaderName::from_bytes(&line[..colon]);
            let value = HeaderValue::from_bytes(&line[colon + 1..]);
            if let (Ok(name), Ok(value)) = (name, value) {
                map.append(name, value);
            }
        }
        let method = self.method.clone();
        RequestInfo::parse(method.clone(), uri.clone(), map.clone(), self.remote_addr).unwrap_or(
            RequestInfo {
                method,
                uri,
                headers: map,
                remote_addr: self.remote_addr,
                transport: None,
                sid: None,
                eio: None,
            },
        )
    }
}

impl std::fmt::Debug for KeptRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptRequest")
            .field("method", &self.method)
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_header_in_order_and_the_uri() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com:3000"));
        headers.append("x-many", HeaderValue::from_static("a: b"));
        headers.append("x-many", HeaderValue::from_static("c"));
        headers.insert("cookie", HeaderValue::from_bytes(b"k=\xe9t\xe9").unwrap());
        let addr: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let req = RequestInfo::parse(
            Method::GET,
            "/socket.io/?EIO=4&transport=websocket&x=%20y"
                .parse()
                .unwrap(),
            headers.clone(),
            Some(addr),
        )
        .unwrap();
        let kept = KeptRequest::new(&req);
        let info = kept.info();
        assert_eq!(info.headers, headers);
        assert_eq!(info.uri, req.uri);
        assert_eq!(info.method, Method::GET);
        assert_eq!(info.remote_addr, Some(addr));
        assert_eq!(info.eio.as_deref(), Some("4"));
        assert_eq!(info.transport, req.transport);
        assert!(Arc::ptr_eq(info, kept.info()), "built once");
    }
}
