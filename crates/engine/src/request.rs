//! Classifies an incoming HTTP request from its query string, without touching the body.

use std::net::SocketAddr;

use http::{HeaderMap, Method, Uri};

use crate::error::EngineError;

mod kept;
pub(crate) use kept::KeptRequest;
use volley_proto::TransportKind;

/// The Engine.IO protocol revision a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// Engine.IO v3 (`EIO=3`), as `socket.io-client` 2.x speaks it: the client pings, other
    /// long-polling framing. Only with `EngineConfigBuilder::allow_eio3`.
    V3,
    /// Engine.IO v4 (`EIO=4`).
    V4,
}

/// What an Engine.IO request asks for, read from its method, query string and headers.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The HTTP method.
    pub method: Method,
    /// The full request URI.
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
    /// The peer address, when the server put one in the request extensions.
    pub remote_addr: Option<SocketAddr>,
    /// The `transport` query parameter, when it names a known transport.
    pub transport: Option<TransportKind>,
    /// The `sid` query parameter.
    pub sid: Option<String>,
    /// The `EIO` query parameter, as sent.
    pub eio: Option<String>,
}

impl RequestInfo {
    /// Reads the Engine.IO parameters of a request.
    ///
    /// An unknown transport name is kept as `None`; the caller answers it with
    /// [`EngineError::UnknownTransport`].
    pub fn parse(
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        remote_addr: Option<SocketAddr>,
    ) -> Result<Self, EngineError> {
        let mut transport = None;
        let mut transport_seen = false;
        let mut sid = None;
        let mut eio = None;
        for (key, value) in query_pairs(uri.query().unwrap_or("")) {
            match key {
                "transport" => {
                    transport_seen = true;
                    transport = match value {
                        "polling" => Some(TransportKind::Polling),
                        "websocket" => Some(TransportKind::WebSocket),
                        _ => None,
                    };
                }
                "sid" => sid = Some(percent_decode(value)),
                "EIO" => eio = Some(value.to_owned()),
                _ => {}
            }
        }
        if !transport_seen || transport.is_none() {
            return Err(EngineError::UnknownTransport);
        }
        Ok(Self {
            method,
            uri,
            headers,
            remote_addr,
            transport,
            sid,
            eio,
        })
    }

    /// The protocol revision asked for: v4 for `EIO=4`, v3 for anything else, as Node reads
    /// it (whether v3 is accepted is the engine's configuration).
    pub fn protocol(&self) -> ProtocolVersion {
        if self.eio.as_deref() == Some("4") {
            ProtocolVersion::V4
        } else {
            ProtocolVersion::V3
        }
    }

    /// Whether the client takes binary data as binary (no `b64` query parameter); otherwise
    /// binary messages are sent to it as base64 text (Engine.IO v3).
    pub fn supports_binary(&self) -> bool {
        !query_pairs(self.uri.query().unwrap_or("")).any(|(k, _)| k == "b64")
    }

    /// A copy that shares no memory with the HTTP request it was read from.
    ///
    /// Header values and the URI parsed by hyper are slices of the connection's 8 KiB read
    /// buffer; a session that kept them would keep that whole buffer alive for its lifetime
    /// (measured: 8 KiB of every WebSocket connection's 17.6 KiB).
    pub fn detached(&self) -> Self {
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            // `from_bytes` copies (standard names are static).
            let name = http::header::HeaderName::from_bytes(name.as_str().as_bytes());
            let value = http::header::HeaderValue::from_bytes(value.as_bytes());
            if let (Ok(name), Ok(value)) = (name, value) {
                headers.append(name, value);
            }
        }
        let uri = Uri::try_from(self.uri.to_string()).unwrap_or_else(|_| self.uri.clone());
        Self {
            method: self.method.clone(),
            uri,
            headers,
            remote_addr: self.remote_addr,
            transport: self.transport,
            sid: self.sid.clone(),
            eio: self.eio.clone(),
        }
    }

    /// Every query parameter, percent-decoded, in order.
    pub fn query_params(&self) -> impl Iterator<Item = (String, String)> + '_ {
        query_pairs(self.uri.query().unwrap_or(""))
            .map(|(k, v)| (percent_decode(k), percent_decode(v)))
    }

    /// The transport asked for (always set once parsing succeeded).
    pub fn transport_kind(&self) -> TransportKind {
        self.transport.unwrap_or(TransportKind::Polling)
    }

    /// Whether the request carries the headers of a WebSocket upgrade.
    pub fn is_websocket_upgrade(&self) -> bool {
        let has_token = |name: http::header::HeaderName, token: &str| {
            self.headers.get_all(name).iter().any(|v| {
                v.to_str().is_ok_and(|s| {
                    s.split(',')
                        .any(|part| part.trim().eq_ignore_ascii_case(token))
                })
            })
        };
        self.method == Method::GET
            && has_token(http::header::CONNECTION, "upgrade")
            && has_token(http::header::UPGRADE, "websocket")
            && self.headers.contains_key(http::header::SEC_WEBSOCKET_KEY)
    }
}

/// Iterates over `key=value` pairs of a query string (values still percent-encoded).
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// Decodes `%XX` escapes and `+`; invalid escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains(['%', '+']) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<RequestInfo, EngineError> {
        RequestInfo::parse(
            Method::GET,
            format!("/engine.io/?{q}").parse().unwrap(),
            HeaderMap::new(),
            None,
        )
    }

    #[test]
    fn reads_parameters() {
        let r = parse("EIO=4&transport=polling&t=N8hyd6w&sid=ab%2Bc").unwrap();
        assert_eq!(r.transport, Some(TransportKind::Polling));
        assert_eq!(r.eio.as_deref(), Some("4"));
        assert_eq!(r.sid.as_deref(), Some("ab+c"));
        let r = parse("EIO=4&transport=websocket").unwrap();
        assert_eq!(r.transport, Some(TransportKind::WebSocket));
        assert_eq!(r.sid, None);
    }

    #[test]
    fn unknown_or_missing_transport() {
        assert!(matches!(parse("EIO=4"), Err(EngineError::UnknownTransport)));
        assert!(matches!(
            parse("EIO=4&transport=tobi"),
            Err(EngineError::UnknownTransport)
        ));
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%zzb%4"), "a%zzb%4");
        assert_eq!(percent_decode("a%41+b"), "aA b");
    }
}
