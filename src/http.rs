//! Plain HTTP on the role's port: `GET /healthz`, `GET /status` and `GET /metrics`
//! (Prometheus's text format). With TLS on the port these stay open in the clear for
//! probes and scrapers.

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
        .route("/metrics", get(metrics))
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

/// The process's counters in Prometheus's text format.
async fn metrics(State(state): State<Arc<ComponentState>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics_text(),
    )
}
