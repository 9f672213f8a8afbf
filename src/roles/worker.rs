//! Workers and the proxy: one `<role>-<ServerID>` session per process, registered again
//! with a new ServerID if the lease is lost.

use std::future::Future;

use crate::context::Context;
use crate::roles::coordinator::{after_lease_loss, register_own_key};
use crate::session::state::StateCode;
use crate::session::Session;

/// What a worker role does when its session starts and ends.
pub trait Worker: Send + Sync {
    /// The session is registered: start the work that needs it.
    fn on_session(&self, _session: &Session) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The session's lease is lost: stop everything that acted for it, at once.
    fn on_session_end(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A worker whose work is all in its gRPC service (the proxy): it only keeps its
/// session.
pub struct Plain;

impl Worker for Plain {}

/// Runs a worker until it must exit; returns the exit code.
pub async fn run<W: Worker>(ctx: &Context, worker: &W) -> i32 {
    let mut first = true;
    loop {
        let session = match register_own_key(ctx, first).await {
            Ok(s) => s,
            Err(code) => return code,
        };
        first = false;
        worker.on_session(&session).await;
        ctx.state.set(StateCode::Healthy);
        log::info!(ServerID = session.server_id(); "{} successfully started", ctx.role.display_name());
        session.lease.lost().await;
        ctx.state.set(StateCode::Abnormal);
        worker.on_session_end().await;
        if let Some(code) = after_lease_loss(ctx, &session).await {
            return code;
        }
    }
}

/// A task aborted when dropped (a worker's per-session and per-assignment tasks).
///
/// A per-assignment task is dropped as soon as its assignment's record changes, and its
/// own registration changes that record: what follows the registering txn (its log line,
/// a retry of an undecided txn) runs through [`to_the_end`], which an abort cannot cut.
pub struct Task(pub tokio::task::JoinHandle<()>);

/// Runs `f` on a task of its own and waits for it: if the awaiting task is aborted
/// meanwhile, `f` still runs to its end.
pub async fn to_the_end<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    match tokio::spawn(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a registration task was cancelled: {e}"),
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The session a worker's assigned work is done for: what it registers is conditioned on
/// the session key still existing, so nothing is recorded once the lease is gone.
pub struct Owner {
    /// This worker's ServerID.
    pub node_id: i64,
    /// Its session key (gone when the lease is).
    pub session_key: String,
    /// The session's lease.
    pub lease: std::sync::Arc<crate::session::lease::Lease>,
}

impl Owner {
    /// The owner for `session`.
    pub fn of(session: &Session) -> Owner {
        Owner {
            node_id: session.server_id(),
            session_key: session.own_key(),
            lease: session.lease.clone(),
        }
    }

    /// The etcd condition "this session's key still exists".
    pub fn alive(&self) -> etcd_client::Compare {
        etcd_client::Compare::version(self.session_key.clone(), etcd_client::CompareOp::Greater, 0)
    }
}
