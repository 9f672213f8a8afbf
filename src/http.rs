//! Plain HTTP on the role's port: `GET /healthz` and `GET /status`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::session::state::{ComponentState, StateCode};

/// The routes every process serves.
pub fn router(state: Arc<ComponentState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .with_state(state)
}

/// 200 for `Healthy` or `StandBy`, else 503; the body names the state.
async fn healthz(State(state): State<Arc<ComponentState>>) -> impl IntoResponse {
    let s = state.state();
    let code = match s {
        StateCode::Healthy | StateCode::StandBy => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, format!("{s:?}\n"))
}

/// The process's role, state, ServerID, address, epoch and lease TTL left, as JSON.
async fn status(State(state): State<Arc<ComponentState>>) -> impl IntoResponse {
    Json(state.report())
}
