//! The life of every coordinator, whatever its role: register, stand by or claim the
//! exclusive key, activate, serve until the term ends, step down, register again.
//!
//! A role plugs in through [`Coordinator`]; the session and election code knows nothing
//! of any role.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::keys::env_name;
use crate::context::Context;
use crate::exit;
use crate::session::election::{self, ElectionError, Term, TermEnd};
use crate::session::state::StateCode;
use crate::session::Session;

/// What a coordinator role does at each step of its life.
pub trait Coordinator: Send + Sync {
    /// Called when this process becomes a standby (a hot standby starts following here).
    fn on_standby(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Takes over for `term`; an error gives the term up.
    fn activate(&self, term: Arc<Term>) -> impl Future<Output = Result<(), String>> + Send;

    /// The term is over: stop acting as the active at once.
    fn deactivate(&self) -> impl Future<Output = ()> + Send;
}

/// Registers a new session, retrying while etcd does not answer. At start-up it gives up
/// after `common.session.retryTimes` attempts; later (after a lost lease) it keeps trying.
pub async fn register(ctx: &Context, first: bool) -> Result<Session, i32> {
    let mut attempts = 0u32;
    let mut backoff = Duration::from_millis(100);
    loop {
        match Session::create(
            &ctx.etcd,
            &ctx.keys,
            ctx.role,
            &ctx.address,
            ctx.config.session.ttl,
        )
        .await
        {
            Ok(s) => {
                ctx.state.set_session(s.server_id(), s.lease.clone());
                return Ok(s);
            }
            Err(e) => {
                attempts += 1;
                if first && attempts > ctx.config.session.retry_times {
                    log::error!(endpoints:? = ctx.etcd.endpoints(), error:% = e, attempts = attempts;
                        "cannot register a session in etcd, giving up");
                    return Err(exit::RUNTIME);
                }
                log::warn!(endpoints:? = ctx.etcd.endpoints(), error:% = e; "cannot register a session in etcd, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Registers a new session and its `<role>-<ServerID>` key (workers, HA coordinators).
pub async fn register_own_key(ctx: &Context, first: bool) -> Result<Session, i32> {
    let mut first = first;
    loop {
        let session = register(ctx, first).await?;
        first = false;
        match session.put_own_key().await {
            Ok(()) => return Ok(session),
            Err(e) => {
                log::warn!(error:% = e; "cannot register the session key, starting a new session");
                session.revoke().await;
            }
        }
    }
}

/// Runs a coordinator until it must exit; returns the exit code.
pub async fn run<C: Coordinator>(ctx: &Context, coord: &C) -> i32 {
    let role = ctx.role;
    let ha = ctx.config.role(role).active_standby;
    let mut first = true;
    loop {
        let registered = if ha {
            register_own_key(ctx, first).await
        } else {
            register(ctx, first).await
        };
        let session = match registered {
            Ok(s) => s,
            Err(code) => return code,
        };
        first = false;
        let won = if ha {
            ctx.state.set(StateCode::StandBy);
            coord.on_standby().await;
            election::stand_by_until_active(&session).await
        } else {
            let switch = env_name(&format!("{}.enableActiveStandby", role.section()));
            election::claim_exclusive(&session, &switch).await
        };
        let term = match won {
            Ok(t) => Arc::new(t),
            Err(e @ ElectionError::ExclusiveHeld { .. }) => {
                log::error!("{e}");
                eprintln!("milvus: {e}");
                session.revoke().await;
                return exit::RUNTIME;
            }
            Err(ElectionError::LeaseLost) => {
                ctx.state.set(StateCode::Abnormal);
                if let Some(code) = after_lease_loss(ctx, &session).await {
                    return code;
                }
                continue;
            }
        };
        let end = serve_term(ctx, coord, &term, ha).await;
        ctx.state.set(StateCode::Abnormal);
        ctx.state.set_epoch(0);
        coord.deactivate().await;
        log::warn!(ServerID = session.server_id(), epoch = term.epoch, reason:? = end;
            "{} is no longer ACTIVE, stopped serving", role.name());
        drop(term);
        if end == TermEnd::LeaseLost {
            if let Some(code) = after_lease_loss(ctx, &session).await {
                return code;
            }
        } else {
            session.revoke().await;
            log::info!("{} rejoins as a new session", role.name());
        }
    }
}

/// Activates for `term`, serves until it ends, and returns why it ended.
async fn serve_term<C: Coordinator>(
    ctx: &Context,
    coord: &C,
    term: &Arc<Term>,
    ha: bool,
) -> TermEnd {
    let role = ctx.role;
    let disp = role.display_name();
    if ha {
        log::info!("{} switch from standby to active, activating", role.name());
    }
    ctx.state.set_epoch(term.epoch);
    let started = Instant::now();
    let activated = tokio::select! {
        r = coord.activate(term.clone()) => r,
        why = term.ended() => return why,
    };
    if let Err(e) = activated {
        log::error!(error = e.as_str(); "activation failed, giving up the ACTIVE role");
        return TermEnd::Deposed(format!("activation failed: {e}"));
    }
    if term.is_valid() {
        ctx.state.set(StateCode::Healthy);
        log::info!("{disp} Register Finished");
        log::debug!(epoch = term.epoch, activation:? = started.elapsed(); "{disp} start done ...");
        log::debug!("{disp} successfully started");
    }
    // While active: the workers this role acts on are watched for death (§2.8).
    let reaper = crate::session::reaper::reap(
        ctx.etcd.clone(),
        ctx.keys.clone(),
        role.workers(),
        crate::session::host_name(),
    );
    tokio::select! {
        why = term.ended() => why,
        () = reaper => term.ended().await,
    }
}

/// After a lost lease: exit 80 if configured, else revoke what is left and go on.
pub async fn after_lease_loss(ctx: &Context, session: &Session) -> Option<i32> {
    if ctx.config.session.exit_on_lease_loss {
        log::error!(ServerID = session.server_id(); "session lease lost and common.session.exitOnLeaseLoss is set, exiting");
        return Some(exit::LEASE_LOST);
    }
    session.revoke().await;
    log::info!("{} registers again as a new session", ctx.role.name());
    None
}

/// The status a coordinator answers while it is not the active one (a standby, or one
/// whose term ended): retriable, so callers re-resolve the active one.
pub fn not_active(ctx: &Context) -> crate::proto::common::Status {
    let role = ctx.role.name();
    crate::status::error(
        crate::status::code::SERVICE_NOT_READY,
        format!(
            "{role} ServerID={} is not the active {role} (state {:?}); resolve the active one from its session",
            ctx.state.report().server_id,
            ctx.state.state()
        ),
    )
}

/// The mismatch status for a call that names (in the `serverid` metadata) another
/// ServerID than this process's, so the caller re-resolves instead of talking to, say, a
/// restarted ex-active on the same address; `None` when it names none or this one.
pub fn server_id_mismatch<R>(
    ctx: &Context,
    req: &tonic::Request<R>,
) -> Option<crate::proto::common::Status> {
    let mine = ctx.state.report().server_id;
    let wanted = req
        .metadata()
        .get(crate::coord_client::SERVER_ID_HEADER)?
        .to_str()
        .ok()?
        .parse::<i64>()
        .ok()?;
    (wanted != mine).then(|| {
        crate::status::error(
            crate::status::code::SERVICE_UNAVAILABLE,
            format!(
                "server ID mismatch: expected ServerID={wanted}, this {} is ServerID={mine}",
                ctx.role.name()
            ),
        )
    })
}
