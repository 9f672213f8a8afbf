//! Workers and the proxy: one `<role>-<ServerID>` session per process, registered again
//! with a new ServerID if the lease is lost.

use crate::exit;
use crate::process::Context;
use crate::roles::coordinator::register;
use crate::session::state::StateCode;

/// Runs a worker until it must exit; returns the exit code.
pub async fn run(ctx: &Context) -> i32 {
    let mut first = true;
    loop {
        let session = match register(ctx, first).await {
            Ok(s) => s,
            Err(code) => return code,
        };
        first = false;
        if let Err(e) = session.put_own_key().await {
            log::warn!(error:% = e; "cannot register the session key, starting a new session");
            session.revoke().await;
            continue;
        }
        ctx.state.set(StateCode::Healthy);
        log::info!(ServerID = session.server_id(); "{} successfully started", ctx.role.display_name());
        session.lease.lost().await;
        ctx.state.set(StateCode::Abnormal);
        if ctx.config.session.exit_on_lease_loss {
            log::error!("session lease lost and common.session.exitOnLeaseLoss is set, exiting");
            return exit::LEASE_LOST;
        }
        session.revoke().await;
        log::info!("{} registers again as a new session", ctx.role.name());
    }
}
