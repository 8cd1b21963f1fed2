//! Prometheus metrics (feature `prometheus`): a [`Collector`] that reads the server's own
//! counters at scrape time ([`SocketIo::server_metrics`]), and a tower service that serves
//! them as text, to mount next to the application's routes.
//!
//! Nothing is recorded for Prometheus on the hot path: the engine and the server keep their
//! relaxed atomic counters anyway, and a scrape reads them. Every series is named
//! `volley_*`; the list, with what each counts, is in [`VolleyCollector`]'s documentation.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use volley::SocketIo;
//!
//! let io = SocketIo::builder().build();
//! // With axum: `Router::new().route_service("/metrics", io.prometheus_service())`.
//! let metrics = io.prometheus_service();
//! # use tower_service::Service as _;
//! # let mut metrics = metrics;
//! # let res = metrics.call(http::Request::new(())).await?;
//! # assert_eq!(res.status(), 200);
//! // Or into an existing registry, next to the application's own metrics:
//! let mut registry = prometheus_client::registry::Registry::default();
//! registry.register_collector(Box::new(io.prometheus_collector()));
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &registry)?;
//! assert!(text.contains("volley_connections{transport=\"websocket\"} 0"));
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::SocketIo;
use crate::stats::ServerMetrics;

/// The content type of the text [`PrometheusService`] answers with (OpenMetrics text, which
/// Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reads a server's counters at each scrape; register it in a
/// [`Registry`] with `register_collector`, or use [`PrometheusService`].
///
/// Series (gauges are values now, `_total` are counters since the server was built):
///
/// | series | labels | what |
/// |---|---|---|
/// | `volley_connections` | `transport` | Engine.IO connections open, by current transport (`polling`, `websocket`) |
/// | `volley_connections_opened_total`, `volley_connections_closed_total` | | connections opened, ended |
/// | `volley_sessions_allocated` | | connection states still in memory (grows apart from `volley_connections` on a leak) |
/// | `volley_sockets` | `namespace` | sockets connected to each namespace |
/// | `volley_rooms` | `namespace` | rooms with a member on this server (sockets' own rooms left out) |
/// | `volley_pending_acks` | `namespace` | acknowledgements clients still owe to a waiting emit |
/// | `volley_messages_received_total`, `volley_messages_sent_total` | | Engine.IO message packets in and out (as `@socket.io/admin-ui` counts them) |
/// | `volley_received_bytes_total`, `volley_sent_bytes_total` | | their payload bytes |
/// | `volley_ack_latency_seconds` | | histogram: from a single-socket `emit_with_ack` to its acknowledgement |
/// | `volley_ack_timeouts_total` | | single-socket `emit_with_ack` that timed out |
/// | `volley_outbound_queued_frames`, `volley_outbound_queued_bytes` | | frames and bytes waiting to be written to clients, over all connections |
/// | `volley_outbound_max_connection_queued_bytes` | | the largest backlog of one connection |
/// | `volley_volatile_dropped_total` | | volatile packets not sent to a socket that could not take them |
/// | `volley_slow_consumer_closes_total` | | connections closed because their backlog went past its bound |
/// | `volley_handshakes_refused_total` | `reason` | Engine.IO handshakes refused: `rate_limited`, `unavailable`, `forbidden`, `bad_request` |
/// | `volley_connects_refused_total` | `reason` | namespace CONNECTs refused: `invalid_namespace`, `middleware`, `too_many_namespaces`, `connect_timeout` |
/// | `volley_adapter_link_up` | `namespace` | 1 when a cluster adapter's link is up (only for cluster adapters) |
/// | `volley_adapter_incoming_backlog` | `namespace` | messages from other servers received, not yet applied (Streams mode: entries read, waiting) |
/// | `volley_adapter_dropped_incoming_total`, `volley_adapter_dropped_outgoing_total`, `volley_adapter_reconnects_total` | `namespace` | the cluster link's losses and reconnections (one link serves every namespace: the same value on each) |
#[derive(Clone)]
pub struct VolleyCollector {
    io: SocketIo,
}

impl fmt::Debug for VolleyCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VolleyCollector").finish_non_exhaustive()
    }
}

/// One series of a family: its labels and value.
type Labeled<'a, N> = Vec<([(&'static str, &'a str); 1], N)>;

/// Writes the metrics of one family; `series` holds each label set with its value.
fn family<N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    series: Labeled<'_, N>,
) -> fmt::Result
where
    N: Copy + prometheus_client::encoding::EncodeGaugeValue,
    N: prometheus_client::encoding::EncodeCounterValue,
{
    if series.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in &series {
        let m = metric.encode_family(labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(*value).encode(m)?,
            _ => ConstGauge::new(*value).encode(m)?,
        }
    }
    Ok(())
}

/// Writes one series without labels.
fn single<N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    value: N,
) -> fmt::Result
where
    N: Copy + prometheus_client::encoding::EncodeGaugeValue,
    N: prometheus_client::encoding::EncodeCounterValue,
{
    let m = encoder.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => ConstCounter::new(value).encode(m),
        _ => ConstGauge::new(value).encode(m),
    }
}

const GAUGE: MetricType = MetricType::Gauge;
const COUNTER: MetricType = MetricType::Counter;

fn encode_engine(m: &ServerMetrics, e: &mut DescriptorEncoder) -> fmt::Result {
    let g = &m.engine;
    family(
        e,
        "volley_connections",
        "Engine.IO connections open, by current transport",
        GAUGE,
        vec![
            ([("transport", "polling")], g.polling_sessions as u64),
            ([("transport", "websocket")], g.websocket_sessions as u64),
        ],
    )?;
    let counters: [(&str, &str, u64); 6] = [
        (
            "volley_connections_opened",
            "Engine.IO connections opened",
            g.sessions_opened_total,
        ),
        (
            "volley_connections_closed",
            "Engine.IO connections ended",
            g.sessions_closed_total,
        ),
        (
            "volley_messages_received",
            "Engine.IO message packets received",
            g.messages_received_total,
        ),
        (
            "volley_messages_sent",
            "Engine.IO message packets sent",
            g.messages_sent_total,
        ),
        (
            "volley_received_bytes",
            "Payload bytes of the messages received",
            g.bytes_received_total,
        ),
        (
            "volley_sent_bytes",
            "Payload bytes of the messages sent",
            g.bytes_sent_total,
        ),
    ];
    for (name, help, value) in counters {
        single(e, name, help, COUNTER, value)?;
    }
    let gauges: [(&str, &str, usize); 4] = [
        (
            "volley_sessions_allocated",
            "Connection states still in memory",
            g.sessions_allocated,
        ),
        (
            "volley_outbound_queued_frames",
            "Frames waiting to be written to clients",
            g.queued_frames,
        ),
        (
            "volley_outbound_queued_bytes",
            "Bytes waiting to be written to clients",
            g.queued_bytes,
        ),
        (
            "volley_outbound_max_connection_queued_bytes",
            "The largest backlog of one connection, in bytes",
            g.max_session_queued_bytes,
        ),
    ];
    for (name, help, value) in gauges {
        single(e, name, help, GAUGE, value as u64)?;
    }
    single(
        e,
        "volley_slow_consumer_closes",
        "Connections closed because their backlog went past its bound",
        COUNTER,
        g.slow_consumer_closes_total,
    )?;
    family(
        e,
        "volley_handshakes_refused",
        "Engine.IO handshakes refused, by reason",
        COUNTER,
        vec![
            (
                [("reason", "rate_limited")],
                g.handshakes_rate_limited_total,
            ),
            (
                [("reason", "unavailable")],
                g.handshakes_refused_unavailable_total,
            ),
            (
                [("reason", "forbidden")],
                g.handshakes_refused_forbidden_total,
            ),
            (
                [("reason", "bad_request")],
                g.handshakes_refused_bad_request_total,
            ),
        ],
    )
}

fn encode_server(m: &ServerMetrics, e: &mut DescriptorEncoder) -> fmt::Result {
    let ns = &m.namespaces;
    let per_ns = |f: &dyn Fn(&crate::NamespaceMetrics) -> Option<u64>| -> Labeled<'_, u64> {
        ns.iter()
            .filter_map(|n| f(n).map(|v| ([("namespace", n.name.as_str())], v)))
            .collect()
    };
    let namespace_gauges: [(&str, &str, Labeled<'_, u64>); 5] = [
        (
            "volley_sockets",
            "Sockets connected to each namespace",
            per_ns(&|n| Some(n.sockets as u64)),
        ),
        (
            "volley_rooms",
            "Rooms with a member on this server",
            per_ns(&|n| n.adapter.rooms.map(|r| r as u64)),
        ),
        (
            "volley_pending_acks",
            "Acknowledgements clients still owe to a waiting emit",
            per_ns(&|n| Some(n.pending_acks as u64)),
        ),
        (
            "volley_adapter_link_up",
            "1 when the cluster adapter's link is up",
            per_ns(&|n| n.adapter.link_up.map(u64::from)),
        ),
        (
            "volley_adapter_incoming_backlog",
            "Messages from other servers received and not yet applied",
            per_ns(&|n| n.adapter.link_up.map(|_| n.adapter.incoming_backlog)),
        ),
    ];
    for (name, help, series) in namespace_gauges {
        family(e, name, help, GAUGE, series)?;
    }
    let link_counters: [(&str, &str, Labeled<'_, u64>); 3] = [
        (
            "volley_adapter_dropped_incoming",
            "Messages from other servers dropped (backlog full)",
            per_ns(&|n| n.adapter.link_up.map(|_| n.adapter.dropped_incoming_total)),
        ),
        (
            "volley_adapter_dropped_outgoing",
            "Messages to other servers dropped",
            per_ns(&|n| n.adapter.link_up.map(|_| n.adapter.dropped_outgoing_total)),
        ),
        (
            "volley_adapter_reconnects",
            "Times the cluster link reconnected",
            per_ns(&|n| n.adapter.link_up.map(|_| n.adapter.reconnects_total)),
        ),
    ];
    for (name, help, series) in link_counters {
        family(e, name, help, COUNTER, series)?;
    }
    // The encoder takes non-cumulative buckets and adds them up; ours are cumulative.
    let lat = &m.ack_latency;
    let mut buckets = Vec::with_capacity(lat.buckets.len() + 1);
    let mut below = 0;
    for &(bound, cumulative) in &lat.buckets {
        buckets.push((bound, cumulative - below));
        below = cumulative;
    }
    buckets.push((f64::INFINITY, lat.count - below));
    let mut h = e.encode_descriptor(
        "volley_ack_latency_seconds",
        "From a single-socket emit_with_ack to its acknowledgement",
        None,
        MetricType::Histogram,
    )?;
    h.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        lat.sum.as_secs_f64(),
        lat.count,
        &buckets,
        None,
    )?;
    let counters: [(&str, &str, u64); 2] = [
        (
            "volley_ack_timeouts",
            "Single-socket emit_with_ack whose acknowledgement did not come in time",
            m.ack_timeouts_total,
        ),
        (
            "volley_volatile_dropped",
            "Volatile packets not sent to a socket that could not take them",
            m.volatile_dropped_total,
        ),
    ];
    for (name, help, value) in counters {
        single(e, name, help, COUNTER, value)?;
    }
    family(
        e,
        "volley_connects_refused",
        "Namespace CONNECTs refused, by reason",
        COUNTER,
        vec![
            (
                [("reason", "invalid_namespace")],
                m.connects_refused_invalid_namespace_total,
            ),
            (
                [("reason", "middleware")],
                m.connects_refused_middleware_total,
            ),
            (
                [("reason", "too_many_namespaces")],
                m.connects_refused_too_many_namespaces_total,
            ),
            ([("reason", "connect_timeout")], m.connect_timeouts_total),
        ],
    )
}

impl Collector for VolleyCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let m = self.io.server_metrics();
        encode_engine(&m, &mut encoder)?;
        encode_server(&m, &mut encoder)
    }
}

/// A tower service answering every GET (or HEAD) with the server's metrics as Prometheus
/// text, and 405 to other methods; mount it at the path of your choice (`/metrics`).
/// From [`SocketIo::prometheus_service`] or [`PrometheusService::new`] with a registry of
/// your own (for the application's metrics too).
#[derive(Clone)]
pub struct PrometheusService {
    registry: Arc<Registry>,
}

impl fmt::Debug for PrometheusService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusService").finish_non_exhaustive()
    }
}

impl PrometheusService {
    /// Serves what `registry` holds (register [`SocketIo::prometheus_collector`] in it).
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }

    /// The metrics as text, as the service answers them.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug of ours.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "prometheus: metrics could not be encoded");
        }
        text
    }
}

impl<B> tower_service::Service<Request<B>> for PrometheusService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let mut res = if matches!(*req.method(), Method::GET | Method::HEAD) {
            let mut res = Response::new(Full::new(Bytes::from(self.render())));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(CONTENT_TYPE),
            );
            res
        } else {
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            res.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            res
        };
        if req.method() == Method::HEAD {
            *res.body_mut() = Full::new(Bytes::new());
        }
        ready(Ok(res))
    }
}

impl SocketIo {
    /// A [`Collector`] of this server's metrics, to register in a `prometheus-client`
    /// [`Registry`] (see [`VolleyCollector`] for the series).
    pub fn prometheus_collector(&self) -> VolleyCollector {
        VolleyCollector { io: self.clone() }
    }

    /// A tower service serving this server's metrics as Prometheus text, to mount at
    /// `/metrics` next to the application's routes.
    pub fn prometheus_service(&self) -> PrometheusService {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.prometheus_collector()));
        PrometheusService::new(Arc::new(registry))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::{AckLatency, NamespaceMetrics};

    /// Encodes a given snapshot as a scrape would.
    #[derive(Debug)]
    struct Fixed(ServerMetrics);

    impl Collector for Fixed {
        fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
            encode_engine(&self.0, &mut encoder)?;
            encode_server(&self.0, &mut encoder)
        }
    }

    fn render(m: ServerMetrics) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Fixed(m)));
        PrometheusService::new(Arc::new(registry)).render()
    }

    #[test]
    fn the_histogram_keeps_its_cumulative_counts_and_gets_an_inf_bucket() {
        let text = render(ServerMetrics {
            ack_latency: AckLatency {
                buckets: vec![(0.001, 2), (0.01, 2), (0.1, 5)],
                count: 7,
                sum: Duration::from_millis(250),
            },
            ..ServerMetrics::default()
        });
        for line in [
            "volley_ack_latency_seconds_sum 0.25",
            "volley_ack_latency_seconds_count 7",
            "volley_ack_latency_seconds_bucket{le=\"0.001\"} 2",
            "volley_ack_latency_seconds_bucket{le=\"0.01\"} 2",
            "volley_ack_latency_seconds_bucket{le=\"0.1\"} 5",
            "volley_ack_latency_seconds_bucket{le=\"+Inf\"} 7",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }

    #[test]
    fn namespaces_are_labels_and_link_series_only_come_with_a_cluster() {
        // A dynamic namespace's name comes from a client.
        let chat = NamespaceMetrics {
            name: "/chat\"\n".into(),
            sockets: 3,
            adapter: volley_core::adapter::AdapterStats::local(2),
            ..NamespaceMetrics::default()
        };
        let mut m = ServerMetrics {
            namespaces: vec![chat],
            ..ServerMetrics::default()
        };
        let text = render(m.clone());
        assert!(
            text.contains("volley_sockets{namespace=\"/chat\\\"\\n\"} 3"),
            "{text}"
        );
        assert!(text.contains("volley_rooms{namespace=\"/chat\\\"\\n\"} 2"));
        assert!(!text.contains("volley_adapter_link_up"), "{text}");

        m.namespaces[0].adapter.link_up = Some(false);
        m.namespaces[0].adapter.incoming_backlog = 4;
        let text = render(m);
        assert!(text.contains("volley_adapter_link_up{namespace=\"/chat\\\"\\n\"} 0"));
        assert!(text.contains("volley_adapter_incoming_backlog{namespace=\"/chat\\\"\\n\"} 4"));
        assert!(text.contains("volley_adapter_reconnects_total{namespace=\"/chat\\\"\\n\"} 0"));
    }
}
