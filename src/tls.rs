//! TLS on the proxy's client port (`common.security.tlsMode` 1: one-way, 2: mutual) and
//! on every internal port and call (`common.security.internaltlsEnabled`: always mutual,
//! the cluster's certificate both ways).
//!
//! One port serves gRPC, REST, `/healthz`, `/status` and `/metrics`. With TLS on, each
//! accepted connection is sorted by its first byte: a TLS handshake record (0x16) goes
//! through rustls to the full router; anything else is plain HTTP and reaches a router
//! with only `/healthz`, `/status` and `/metrics`, so probes and scrapers keep working while no
//! gRPC or REST call is ever served in the clear. In mode 2 a client without a
//! certificate chaining to `tls.caPemPath` fails the handshake and is never served.
//!
//! Handshakes run in their own tasks with a deadline, so a slow or silent client holds
//! up nobody else's connection.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::config::{Config, InternalTlsConfig, StorageKind, TlsConfig};
use crate::logging::PerAddress;
use crate::session::state::ComponentState;

/// How long a client has to send its first byte and finish the handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How often a refused handshake from one client address is logged.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How long an internal call waits for the callee's side of the handshake.
const CLIENT_HANDSHAKE: Duration = Duration::from_secs(3);
/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// Why TLS cannot be set up: a file or its content, naming the key that points at it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that cannot be read or holds no usable PEM item.
    #[error("{key}: cannot use {path}: {why}")]
    File {
        /// The configuration key naming the file.
        key: &'static str,
        /// The path.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the certificate, key or CA.
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

fn file_error(key: &'static str, path: &Path, why: impl ToString) -> TlsError {
    TlsError::File {
        key,
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(key, path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(key, path, e))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// The files a TLS server is made of, each with the key that names it.
struct ServerFiles<'a> {
    chain: (&'static str, &'a Path),
    key: (&'static str, &'a Path),
    /// The CA client certificates must chain to; None: no client certificate asked.
    client_ca: Option<(&'static str, &'a Path)>,
    /// A name the client certificate must also be valid for (internal TLS: the cluster
    /// certificate's `internaltls.sni`, so a client certificate of the same CA made for
    /// an end user is refused).
    client_name: Option<&'a str>,
}

fn build_server(files: ServerFiles<'_>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(files.chain.0, files.chain.1)?;
    let key = PrivateKeyDer::from_pem_file(files.key.1)
        .map_err(|e| file_error(files.key.0, files.key.1, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let builder = if let Some((ca_key, ca)) = files.client_ca {
        let verifier = WebPkiClientVerifier::builder_with_provider(roots(ca_key, ca)?, provider)
            .build()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        match files.client_name {
            None => builder.with_client_cert_verifier(verifier),
            Some(name) => {
                let name = ServerName::try_from(name.to_string()).map_err(|e| {
                    TlsError::Setup(format!("internaltls.sni {name:?} is not a host name: {e}"))
                })?;
                builder.with_client_cert_verifier(Arc::new(Named {
                    inner: verifier,
                    name,
                }))
            }
        }
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Setup(format!("{} / {}: {e}", files.chain.0, files.key.0)))?;
    // gRPC needs HTTP/2; REST clients may speak HTTP/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client-certificate check that also requires the certificate to be valid for one
/// name: the cluster certificate's.
#[derive(Debug)]
struct Named {
    inner: Arc<dyn ClientCertVerifier>,
    name: ServerName<'static>,
}

impl ClientCertVerifier for Named {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&cert, &self.name)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn roots(key: &'static str, path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in certificates(key, path)? {
        roots.add(ca).map_err(|e| file_error(key, path, e))?;
    }
    Ok(Arc::new(roots))
}

/// Checks, when a process starts, the certificate files of its links to etcd
/// (`etcd.ssl.*`), NATS (`natsmq.tls.*`) and S3 (`minio.ssl.tlsCACert`), so a missing or
/// unusable one stops it naming its key rather than failing its first call later.
pub fn check_link_files(config: &Config) -> Result<(), TlsError> {
    let identity =
        |cert_key: &'static str, key_key: &'static str, pair: &Option<(PathBuf, PathBuf)>| {
            if let Some((cert, key)) = pair {
                certificates(cert_key, cert)?;
                PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key_key, key, e))?;
            }
            Ok::<_, TlsError>(())
        };
    if let Some(t) = &config.etcd.tls {
        certificates("etcd.ssl.tlsCACert", &t.ca)?;
        identity("etcd.ssl.tlsCert", "etcd.ssl.tlsKey", &t.identity)?;
    }
    if let Some(t) = &config.log.tls {
        if let Some(ca) = &t.ca {
            certificates("natsmq.tls.caPemPath", ca)?;
        }
        identity(
            "natsmq.tls.clientPemPath",
            "natsmq.tls.clientKeyPath",
            &t.identity,
        )?;
    }
    let s3 = &config.storage.s3;
    if let (StorageKind::S3, true, Some(ca)) = (&config.storage.kind, s3.use_ssl, &s3.ca_cert) {
        certificates("minio.ssl.tlsCACert", ca)?;
    }
    Ok(())
}

/// The rustls server configuration of the proxy's client port for `cfg` (mode 1 or 2),
/// or what is wrong with it.
pub fn server_config(cfg: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    build_server(ServerFiles {
        chain: ("tls.serverPemPath", &cfg.server_pem),
        key: ("tls.serverKeyPath", &cfg.server_key),
        client_ca: (cfg.mode >= 2).then_some(("tls.caPemPath", cfg.ca_pem.as_path())),
        client_name: None,
    })
}

/// The rustls server configuration of an internal port (`internaltls.*`): always
/// mutual, and the caller's certificate must chain to the cluster CA *and* be valid for
/// `internaltls.sni`, so only holders of a cluster certificate are served (an end user's
/// client certificate signed by the same CA is not one).
pub fn internal_server_config(cfg: &InternalTlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    build_server(ServerFiles {
        chain: ("internaltls.serverPemPath", &cfg.server_pem),
        key: ("internaltls.serverKeyPath", &cfg.server_key),
        client_ca: Some(("internaltls.caPemPath", &cfg.ca_pem)),
        client_name: Some(&cfg.sni),
    })
}

/// What internal calls dial with (`internaltls.*`): None when internal TLS is off, else
/// the cluster CA, this component's certificate as its identity, and the name
/// `internaltls.sni` the callee must carry.
pub fn internal_client(cfg: &InternalTlsConfig) -> Result<Option<ClientTlsConfig>, TlsError> {
    if !cfg.enabled {
        return Ok(None);
    }
    // The same checks the server side makes, so a bad file is named at start.
    certificates("internaltls.caPemPath", &cfg.ca_pem)?;
    certificates("internaltls.serverPemPath", &cfg.server_pem)?;
    PrivateKeyDer::from_pem_file(&cfg.server_key)
        .map_err(|e| file_error("internaltls.serverKeyPath", &cfg.server_key, e))?;
    let read = |key, path: &Path| std::fs::read(path).map_err(|e| file_error(key, path, e));
    Ok(Some(
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(
                "internaltls.caPemPath",
                &cfg.ca_pem,
            )?))
            .identity(Identity::from_pem(
                read("internaltls.serverPemPath", &cfg.server_pem)?,
                read("internaltls.serverKeyPath", &cfg.server_key)?,
            ))
            .domain_name(cfg.sni.clone())
            // A callee that accepts the connection but never answers the handshake (a
            // frozen process: the kernel still accepts) must not hold the call forever.
            .timeout(CLIENT_HANDSHAKE),
    ))
}

/// Internal calls' TLS for this process, read once (its files were checked when the
/// process started): as [`internal_client`], except that a file that went bad since
/// then still never means a call in the clear: the calls are made over TLS without the
/// identity, and fail.
pub fn internal_client_or_refuse(cfg: &InternalTlsConfig) -> Option<ClientTlsConfig> {
    static ONCE: std::sync::OnceLock<Option<ClientTlsConfig>> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| match internal_client(cfg) {
        Ok(c) => c,
        Err(e) => {
            log::error!(error:% = e; "internal TLS: cannot read the cluster certificate; internal calls will fail");
            Some(
                ClientTlsConfig::new()
                    .domain_name(cfg.sni.clone())
                    .timeout(CLIENT_HANDSHAKE),
            )
        }
    })
    .clone()
}

/// An endpoint for an internal call to `address` (`host:port`): `https://` with `tls`,
/// else `http://`.
pub fn endpoint(address: &str, tls: Option<&ClientTlsConfig>) -> Result<Endpoint, String> {
    match tls {
        None => Endpoint::from_shared(format!("http://{address}")).map_err(|e| e.to_string()),
        Some(tls) => Endpoint::from_shared(format!("https://{address}"))
            .and_then(|e| e.tls_config(tls.clone()))
            .map_err(|e| e.to_string()),
    }
}

/// The client address of a TLS connection, as handlers see it (`ConnectInfo<Peer>`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Secured>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Secured>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Connections that finished a TLS handshake.
pub struct Secured(
    mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    SocketAddr,
);

/// Connections that began with something other than a TLS handshake.
pub struct Clear(mpsc::Receiver<(TcpStream, SocketAddr)>, SocketAddr);

/// Accepts on `listener` and sorts connections into TLS ones and clear ones. Refused
/// handshakes are counted in `state` (`/status` `tls_failures`) and logged at most once
/// per client address per [`LOG_EVERY`].
pub fn split(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    state: Arc<ComponentState>,
) -> std::io::Result<(Secured, Clear)> {
    state.serve_tls();
    let logged = Arc::new(PerAddress::new(LOG_EVERY));
    let local = listener.local_addr()?;
    let (tls_tx, tls_rx) = mpsc::channel(64);
    let (clear_tx, clear_rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    log::warn!(error:% = e; "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, tls_tx, clear_tx) = (acceptor.clone(), tls_tx.clone(), clear_tx.clone());
            let (state, logged) = (state.clone(), logged.clone());
            let refused = move |why: String| {
                state.count_tls_failure();
                if let Some(suppressed) = logged.admit(&peer.ip().to_string()) {
                    log::warn!(client:% = peer, error = why.as_str(), suppressed = suppressed;
                        "TLS handshake refused");
                }
            };
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                match tokio::time::timeout(HANDSHAKE, stream.peek(&mut first)).await {
                    Ok(Ok(1)) if first[0] == HANDSHAKE_RECORD => {
                        match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => {
                                let _ = tls_tx.send((tls, peer)).await;
                            }
                            Ok(Err(e)) => refused(e.to_string()),
                            Err(_) => refused("handshake timed out".to_string()),
                        }
                    }
                    Ok(Ok(n)) if n > 0 => {
                        let _ = clear_tx.send((stream, peer)).await;
                    }
                    _ => {}
                }
            });
        }
    });
    Ok((Secured(tls_rx, local), Clear(clear_rx, local)))
}

impl axum::serve::Listener for Secured {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.0.recv().await {
            Some(x) => x,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.1)
    }
}

impl axum::serve::Listener for Clear {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.0.recv().await {
            Some(x) => x,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.1)
    }
}
