//! HTTPS polling, WSS and the upgrade over TLS (rustls), against the Volley server behind a
//! TLS-terminating proxy with a self-signed certificate for `localhost`.

mod common;

use std::sync::Arc;

use common::{Kind, Ping, Server, WAIT};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use volley_client::{Manager, TransportKind};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts TLS on a free port and forwards the plain bytes to `upstream`.
async fn tls_proxy(upstream: u16) -> (u16, CertificateDer<'static>) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], private)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, cert)
}

fn client_config(cert: CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_over_tls() {
    let server = Server::start(Kind::Volley, Ping::default()).await;
    let (port, cert) = tls_proxy(server.port).await;
    let config = client_config(cert);
    for (transports, want) in [
        (vec![TransportKind::Polling], TransportKind::Polling),
        (vec![TransportKind::WebSocket], TransportKind::WebSocket),
        (
            vec![TransportKind::Polling, TransportKind::WebSocket],
            TransportKind::WebSocket,
        ),
    ] {
        let m = Manager::builder(&format!("https://localhost:{port}"))
            .transports(&transports)
            .tls_config(config.clone())
            .build()
            .unwrap();
        let mut events = m.events();
        let s = tokio::time::timeout(WAIT, m.socket("/").connect())
            .await
            .unwrap()
            .unwrap();
        common::settled(&m, &mut events, want).await;
        let r: String = s
            .timeout(WAIT)
            .emit_with_ack("ack", "secure")
            .await
            .unwrap();
        assert_eq!(r, "secure");
        m.close();
    }

    // `wss://` is the same as `https://`.
    let m = Manager::builder(&format!("wss://localhost:{port}"))
        .transports(&[TransportKind::WebSocket])
        .tls_config(config.clone())
        .build()
        .unwrap();
    let s = m.socket("/").connect().await.unwrap();
    let r: u8 = s.timeout(WAIT).emit_with_ack("ack", &9).await.unwrap();
    assert_eq!(r, 9);
    m.close();

    // The default roots do not trust a self-signed certificate.
    let m = Manager::builder(&format!("https://localhost:{port}"))
        .reconnection(false)
        .build()
        .unwrap();
    let err = tokio::time::timeout(WAIT, m.socket("/").connect())
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.message().contains("TLS"), "{err}");
}
