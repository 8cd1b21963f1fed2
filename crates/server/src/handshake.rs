//! What a client presented when it connected: the HTTP request and the `auth` payload.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde::Serialize;
use serde_json::Value;

/// The handshake of a socket, as Node's `socket.handshake`.
///
/// Serializes to Node's shape (`headers`, `time`, `address`, `xdomain`, `secure`, `issued`,
/// `url`, `query`, `auth`), which is what cluster adapters exchange. It reads the request
/// the engine kept for the connection (several namespaces, one copy of the headers), which
/// the engine builds in full only once something asks for it.
#[derive(Clone)]
pub struct Handshake {
    engine: volley_engine::EngineSocket,
    issued: u64,
    /// Decoded from the request's URI the first time it is asked for: most sockets never
    /// look, and the map and its strings cost a few hundred bytes per socket.
    query: OnceLock<HashMap<String, String>>,
    auth: Value,
}

impl std::fmt::Debug for Handshake {
    // Not derived: the engine socket's session id is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("url", &self.url())
            .field("address", &self.address())
            .field("issued", &self.issued)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Serialize for Handshake {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Handshake", 9)?;
        st.serialize_field("headers", &Headers(self.headers()))?;
        st.serialize_field("time", &self.time())?;
        st.serialize_field("address", &self.address())?;
        st.serialize_field("xdomain", &self.xdomain())?;
        st.serialize_field("secure", &self.secure())?;
        st.serialize_field("issued", &self.issued)?;
        st.serialize_field("url", self.url())?;
        st.serialize_field("query", self.query())?;
        st.serialize_field("auth", &self.auth)?;
        st.end()
    }
}

/// Headers as Node shows them: one string per name, repeated values joined by ", ".
struct Headers<'a>(&'a HeaderMap);

impl Serialize for Headers<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let h = self.0;
        let mut map = s.serialize_map(Some(h.keys_len()))?;
        for key in h.keys() {
            let values: Vec<&str> = h
                .get_all(key)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            map.serialize_entry(key.as_str(), &values.join(", "))?;
        }
        map.end()
    }
}

impl Handshake {
    pub(crate) fn new(engine: volley_engine::EngineSocket, auth: Value) -> Self {
        let issued = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            engine,
            issued,
            query: OnceLock::new(),
            auth,
        }
    }

    fn request(&self) -> &volley_engine::RequestInfo {
        self.engine.request()
    }

    /// The HTTP headers of the handshake request.
    pub fn headers(&self) -> &HeaderMap {
        &self.request().headers
    }

    /// The query parameters of the handshake request (decoded).
    pub fn query(&self) -> &HashMap<String, String> {
        self.query
            .get_or_init(|| self.request().query_params().collect())
    }

    /// One query parameter.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query().get(key).map(String::as_str)
    }

    /// The `auth` payload the client sent with `CONNECT` (`{}` when it sent none).
    pub fn auth(&self) -> &Value {
        &self.auth
    }

    /// The peer address, when the server knows it (see `volley::serve`).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.request().remote_addr
    }

    /// The peer IP as text (empty when unknown), as Node's `handshake.address`.
    pub fn address(&self) -> String {
        self.request()
            .remote_addr
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    }

    /// When the handshake happened, in milliseconds since the Unix epoch.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// When the handshake happened, as a date string.
    pub fn time(&self) -> String {
        httpdate(self.issued)
    }

    /// The request URL (path and query).
    pub fn url(&self) -> &str {
        self.request()
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("")
    }

    /// Whether the request came over TLS.
    pub fn secure(&self) -> bool {
        self.request().uri.scheme_str() == Some("https")
    }

    /// Whether the request was cross-origin (it had an `Origin` header).
    pub fn xdomain(&self) -> bool {
        self.request().headers.contains_key(http::header::ORIGIN)
    }
}

/// An RFC 7231 date (`Tue, 15 Nov 1994 08:12:31 GMT`) from milliseconds since the epoch.
fn httpdate(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {d:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        months[(month - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(httpdate(784_887_151_000), "Tue, 15 Nov 1994 08:12:31 GMT");
        assert_eq!(httpdate(1_709_251_199_000), "Thu, 29 Feb 2024 23:59:59 GMT");
    }
}
