//! Workers and the proxy: one `<role>-<ServerID>` session per process, registered again
//! with a new ServerID if the lease is lost.

use crate::process::Context;
use crate::roles::coordinator::{after_lease_loss, register_own_key};
use crate::session::state::StateCode;

/// Runs a worker until it must exit; returns the exit code.
pub async fn run(ctx: &Context) -> i32 {
    let mut first = true;
    loop {
        let session = match register_own_key(ctx, first).await {
            Ok(s) => s,
            Err(code) => return code,
        };
        first = false;
        ctx.state.set(StateCode::Healthy);
        log::info!(ServerID = session.server_id(); "{} successfully started", ctx.role.display_name());
        session.lease.lost().await;
        ctx.state.set(StateCode::Abnormal);
        if let Some(code) = after_lease_loss(ctx, &session).await {
            return code;
        }
    }
}
