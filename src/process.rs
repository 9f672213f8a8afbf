//! One component process: bind the port, serve HTTP, register in etcd, run the role,
//! and stop cleanly on a signal.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::config::keys::env_name;
use crate::config::{Config, Loaded};
use crate::context::Context;
use crate::etcd::Etcd;
use crate::exit;
use crate::pidfile::PidFile;
use crate::roles::{Component, Role};
use crate::session::state::{ComponentState, StateCode};
use crate::session::Keys;

/// Runs `role` until it is stopped; returns the exit code.
pub fn run(role: Role, loaded: Loaded, alias: Option<String>) -> i32 {
    crate::crash::abort_on_panic();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            log::error!(error:% = e; "cannot start the async runtime");
            return exit::RUNTIME;
        }
    };
    let code = runtime.block_on(run_async(role, loaded, alias));
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

async fn run_async(role: Role, loaded: Loaded, alias: Option<String>) -> i32 {
    let config = loaded.config;
    let rc = config.role(role).clone();
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            log::error!(error:% = e; "cannot install signal handlers");
            return exit::RUNTIME;
        }
    };
    if let Err(e) = crate::crash::arm_test_faults() {
        log::error!(error:% = e; "cannot install the test faults' signal handlers");
        return exit::RUNTIME;
    }
    // TLS on the port: the proxy's client port by common.security.tlsMode, every other
    // role's internal port by common.security.internaltlsEnabled. A bad certificate, key
    // or CA stops the process before it binds, with the key that names the file.
    let tls = match port_tls(role, &config) {
        Ok(t) => t,
        Err((switch, e)) => {
            log::error!(error:% = e; "cannot set up TLS ({switch})");
            eprintln!("milvus: cannot set up TLS ({switch}): {e}");
            return exit::USAGE;
        }
    };
    let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), rc.port);
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            let key = format!("{}.port", role.section());
            let msg = format!(
                "cannot listen on port {}: {e}; set {key} (env {}) to a free port",
                rc.port,
                env_name(&key)
            );
            log::error!("{msg}");
            eprintln!("milvus: {msg}");
            return exit::RUNTIME;
        }
    };
    let address = advertised_address(&rc.address, rc.port);
    let _pidfile = match PidFile::create(role, alias.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            log::error!("{e}");
            eprintln!("milvus: {e}");
            return exit::RUNTIME;
        }
    };
    log::info!(role = role.name(), listen:% = listen, address = address.as_str(), pid = std::process::id(),
        active_standby = rc.active_standby; "{} listening", role.display_name());
    let state = ComponentState::new(role, address.clone());
    let etcd = match Etcd::connect(&config.etcd).await {
        Ok(e) => e,
        Err(e @ crate::etcd::EtcdError::Config { .. }) => {
            log::error!(error:% = e; "cannot connect to etcd");
            eprintln!("milvus: cannot connect to etcd: {e}");
            return exit::USAGE;
        }
        Err(e) => {
            log::error!(endpoints:? = config.etcd.endpoints, error:% = e; "cannot connect to etcd");
            return exit::RUNTIME;
        }
    };
    let ctx = Arc::new(Context {
        role,
        keys: Keys::new(config.etcd.meta_root()),
        config,
        etcd,
        state: state.clone(),
        address,
    });
    let component = match Component::new(&ctx) {
        Ok(c) => c,
        Err(e) => {
            log::error!(error = e.as_str(); "cannot start");
            eprintln!("milvus: {e}");
            return exit::USAGE;
        }
    };
    let mut router = crate::http::router(state.clone());
    if let Some(grpc) = component.grpc_routes(role.section(), &rc.grpc) {
        router = router.merge(grpc);
    }
    // Small gRPC answers go out at once: with Nagle's algorithm a reply written in two
    // parts waits for the client's delayed ACK (40 ms). Client addresses reach handlers
    // (authentication failures are logged by address).
    let http = match tls {
        None => {
            let listener =
                axum::serve::ListenerExt::tap_io(listener, |s: &mut tokio::net::TcpStream| {
                    let _ = s.set_nodelay(true);
                });
            tokio::spawn(async move {
                let _ = axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await;
            })
        }
        Some(config) => {
            let (secured, clear) = match crate::tls::split(listener, config, state.clone()) {
                Ok(x) => x,
                Err(e) => {
                    log::error!(error:% = e; "cannot serve TLS");
                    return exit::RUNTIME;
                }
            };
            // Plain HTTP reaches only the probes; everything else needs TLS.
            let probes = crate::http::router(state.clone());
            tokio::spawn(async move {
                use std::future::IntoFuture;
                let secured = axum::serve(
                    secured,
                    router.into_make_service_with_connect_info::<crate::tls::Peer>(),
                );
                let clear = axum::serve(clear, probes.into_make_service());
                let _ = tokio::join!(secured.into_future(), clear.into_future());
            })
        }
    };
    let code = tokio::select! {
        code = component.run(&ctx) => code,
        name = signals.first() => {
            log::info!(signal = name; "Get signal to exit");
            signals.force_exit_on_second_interrupt();
            state.set(StateCode::Stopping);
            if let Some(lease) = state.lease() {
                crate::session::revoke_lease(&ctx.etcd, &lease, "process stopping").await;
            }
            log::info!(role = role.name(); "{} stopped", role.display_name());
            exit::OK
        }
    };
    http.abort();
    code
}

/// The TLS configuration of `role`'s port, or which switch asked for it and what is
/// wrong. The certificate files of internal calls and of the links to etcd, NATS and S3
/// are checked here too.
fn port_tls(
    role: Role,
    config: &Config,
) -> Result<Option<Arc<rustls::ServerConfig>>, (&'static str, crate::tls::TlsError)> {
    crate::tls::check_link_files(config).map_err(|e| ("a link to etcd, NATS or S3", e))?;
    let internal = &config.security.internal_tls;
    const INTERNAL: &str = "common.security.internaltlsEnabled";
    crate::tls::internal_client(internal).map_err(|e| (INTERNAL, e))?;
    if role == Role::Proxy {
        let mode = config.security.tls.mode;
        if mode == 0 {
            return Ok(None);
        }
        let c = crate::tls::server_config(&config.security.tls)
            .map_err(|e| ("common.security.tlsMode", e))?;
        log::info!(mode = mode; "TLS on the client port");
        Ok(Some(c))
    } else if internal.enabled {
        let c = crate::tls::internal_server_config(internal).map_err(|e| (INTERNAL, e))?;
        log::info!("mutual TLS on the internal port (internaltls)");
        Ok(Some(c))
    } else {
        Ok(None)
    }
}

/// The address put in the session: `<role>.address` (with `<role>.port` unless it has a
/// port), else this host's first non-loopback IPv4 address and the port.
pub fn advertised_address(configured: &str, port: u16) -> String {
    let configured = configured.trim();
    if configured.is_empty() {
        return format!("{}:{port}", local_ip());
    }
    let has_port = configured
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && !h.ends_with(':') && p.parse::<u16>().is_ok());
    if has_port {
        configured.to_string()
    } else {
        format!("{configured}:{port}")
    }
}

/// This host's first non-loopback IPv4 address that is up, else 127.0.0.1.
pub fn local_ip() -> IpAddr {
    use nix::net::if_::InterfaceFlags;
    nix::ifaddrs::getifaddrs()
        .ok()
        .and_then(|addrs| {
            addrs
                .filter(|a| {
                    a.flags.contains(InterfaceFlags::IFF_UP)
                        && !a.flags.contains(InterfaceFlags::IFF_LOOPBACK)
                })
                .find_map(|a| {
                    a.address
                        .and_then(|s| s.as_sockaddr_in().map(|v4| IpAddr::V4(v4.ip())))
                })
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The stop signals: SIGTERM, SIGINT, SIGHUP, SIGQUIT.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    quit: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    async fn first(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            _ = self.hup.recv() => "SIGHUP",
            _ = self.quit.recv() => "SIGQUIT",
        }
    }

    /// A second SIGINT while stopping ends the process at once.
    fn force_exit_on_second_interrupt(&mut self) {
        let Ok(mut again) = signal(SignalKind::interrupt()) else {
            return;
        };
        tokio::spawn(async move {
            again.recv().await;
            log::warn!("second interrupt, exiting now");
            std::process::exit(exit::RUNTIME);
        });
    }
}
