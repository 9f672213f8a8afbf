//! Milvus's RESTful API v2 (`POST /v2/vectordb/...` on the proxy's port, beside gRPC):
//! JSON in, `{"code": 0, "data": ...}` out, errors as `{"code": <Milvus code>,
//! "message": ...}` with HTTP 200, as Milvus answers.
//!
//! Each endpoint turns its JSON into the MilvusService request a gRPC client would send
//! and calls the proxy's own service with it, so REST and gRPC share every check,
//! message and behaviour; only the shapes differ. The database is the body's `dbName`
//! (else `default`). With `common.security.authorizationEnabled`, `Authorization: Bearer
//! user:password` must name a user and its password (else code 1800), and the service
//! checks the user's privileges as for gRPC (code 1401 when denied).

mod collections;
mod entities;
mod jobs;
mod other;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tonic::metadata::MetadataValue;

use super::service::{Service, DB_HEADER};
use super::Proxy;
use crate::proto::common::Status;
use crate::status::{is_ok, WithStatus};

/// Milvus's code for a request body that is not the JSON an endpoint takes.
pub const INCORRECT_PARAMETER_FORMAT: i32 = 1801;
/// Milvus's code for a request that lacks a required parameter.
pub const MISSING_REQUIRED_PARAMETERS: i32 = 1802;
/// Milvus's code for a request without valid credentials (authorization enabled).
pub const NEED_AUTHENTICATE: i32 = 1800;
/// Milvus's code for a call the user's roles do not permit.
pub const PERMISSION_DENIED: i32 = 1401;
/// Milvus's code for a request that ran out of its `Request-Timeout`.
const REQUEST_TIMEOUT: i32 = 10001;
/// How long a request may take when it does not say (`proxy.http.requestTimeoutMs`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What an endpoint answers: `data` and any top-level keys beside it (`cost`, `topks`).
#[derive(Default)]
pub struct Reply {
    data: Option<Value>,
    extra: Map<String, Value>,
}

impl Reply {
    /// `{"code": 0, "data": data}`.
    pub fn data(data: Value) -> Reply {
        Reply {
            data: Some(data),
            extra: Map::new(),
        }
    }

    /// `{"code": 0, "data": {}}`: what a change answers.
    pub fn done() -> Reply {
        Reply::data(json!({}))
    }

    /// Adds a top-level key.
    pub fn with(mut self, key: &str, value: Value) -> Reply {
        self.extra.insert(key.to_string(), value);
        self
    }
}

/// Why an endpoint answers an error: a Milvus status.
pub type Answer = Result<Reply, Status>;

/// An error status with `code` (not one of the legacy ones).
pub fn fail(code: i32, message: impl Into<String>) -> Status {
    crate::status::error(code, message)
}

/// One REST call: its database, JSON body and how it wants 64-bit integers.
pub struct Call {
    /// The body's `dbName`, else the `DB-Name` header, else `default`.
    pub db: String,
    /// The body (an object).
    pub body: Map<String, Value>,
    /// `Accept-Type-Allow-Int64` (default: numbers).
    pub int64: crate::schema::rows::Int64s,
    /// The verified user (with authorization enabled).
    pub caller: Option<crate::auth::Caller>,
}

/// Reads a boolean header as Go's `ParseBool` would (None when absent or not one).
fn bool_header(headers: &HeaderMap, name: &str) -> Option<bool> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::schema::properties::parse_bool)
}

impl Call {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Call, Status> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(fail(
                INCORRECT_PARAMETER_FORMAT,
                "can only accept json format request, the request body should be nil, however {} is valid",
            ));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            fail(
                INCORRECT_PARAMETER_FORMAT,
                format!("can only accept json format request, error: {e}"),
            )
        })?;
        let Value::Object(body) = value else {
            return Err(fail(
                INCORRECT_PARAMETER_FORMAT,
                "can only accept json format request, error: the body is not a JSON object",
            ));
        };
        let from_header = || {
            headers
                .get("DB-Name")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .unwrap_or("default")
                .to_string()
        };
        let db = match body.get("dbName") {
            None | Some(Value::Null) => from_header(),
            Some(Value::String(s)) if s.is_empty() => from_header(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(fail(
                    INCORRECT_PARAMETER_FORMAT,
                    format!("dbName must be a string, got {other}"),
                ))
            }
        };
        let int64 = crate::schema::rows::Int64s {
            as_numbers: bool_header(headers, "Accept-Type-Allow-Int64").unwrap_or(true),
        };
        Ok(Call {
            db,
            body,
            int64,
            caller: None,
        })
    }

    /// A required string parameter.
    pub fn string(&self, key: &str) -> Result<String, Status> {
        match self.body.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            None | Some(Value::Null) | Some(Value::String(_)) => Err(missing(key)),
            Some(other) => Err(wrong_type(key, "a string", other)),
        }
    }

    /// An optional string parameter ("" when absent).
    pub fn opt_string(&self, key: &str) -> Result<String, Status> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(wrong_type(key, "a string", other)),
        }
    }

    /// An optional list of strings (empty when absent).
    pub fn strings(&self, key: &str) -> Result<Vec<String>, Status> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong_type(key, "a list of strings", other)),
                })
                .collect(),
            Some(other) => Err(wrong_type(key, "a list of strings", other)),
        }
    }

    /// A required non-empty list of strings.
    pub fn required_strings(&self, key: &str) -> Result<Vec<String>, Status> {
        let v = self.strings(key)?;
        if v.is_empty() {
            return Err(missing(key));
        }
        Ok(v)
    }

    /// An optional integer parameter.
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, Status> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(other) => Err(wrong_type(key, "an integer", other)),
        }
    }

    /// An optional boolean parameter.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, Status> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(key, "true or false", other)),
        }
    }

    /// An optional object parameter.
    pub fn opt_object(&self, key: &str) -> Result<Option<&Map<String, Value>>, Status> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(other) => Err(wrong_type(key, "a JSON object", other)),
        }
    }

    /// Checks the caller may do what `message` asks (for endpoints that call the proxy
    /// directly rather than through its gRPC service, which checks by itself).
    pub fn authorize<T: crate::auth::privilege::Guarded>(
        &self,
        svc: &Service,
        message: T,
    ) -> Result<(), Status> {
        svc.0
            .auth
            .authorize(&self.request(message))
            .map_err(from_grpc)
    }

    /// A tonic request for the proxy's service, scoped to this call's database.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        if let Ok(v) = MetadataValue::try_from(self.db.as_str()) {
            r.metadata_mut().insert(DB_HEADER, v);
        }
        if let Some(c) = &self.caller {
            r.extensions_mut().insert(c.clone());
        }
        r
    }
}

/// Milvus's answer for a required parameter that is absent or empty.
pub fn missing(key: &str) -> Status {
    fail(
        MISSING_REQUIRED_PARAMETERS,
        format!("missing required parameters, error: {key} is required"),
    )
}

/// Milvus's answer for a parameter of the wrong JSON type.
pub fn wrong_type(key: &str, expected: &str, got: &Value) -> Status {
    fail(
        INCORRECT_PARAMETER_FORMAT,
        format!("{key} must be {expected}, got {got}"),
    )
}

/// A gRPC error of the service as REST answers it: a refused privilege 1401, missing
/// or wrong credentials 1800, anything else unavailable.
fn from_grpc(e: tonic::Status) -> Status {
    match e.code() {
        tonic::Code::PermissionDenied => fail(PERMISSION_DENIED, e.message()),
        tonic::Code::Unauthenticated => fail(NEED_AUTHENTICATE, e.message()),
        _ => fail(
            crate::status::code::SERVICE_UNAVAILABLE,
            format!("{}: {}", e.code(), e.message()),
        ),
    }
}

/// The status of a service answer, as an error when it is one.
pub fn checked<T: WithStatus>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<T, Status> {
    let r = r.map_err(from_grpc)?;
    let r = r.into_inner();
    let s = r.status();
    if is_ok(&s) {
        Ok(r)
    } else {
        Err(s)
    }
}

fn envelope(answer: Answer) -> Response {
    let body = match answer {
        Ok(reply) => {
            let mut m = Map::new();
            m.insert("code".into(), json!(0));
            m.insert("data".into(), reply.data.unwrap_or_else(|| json!({})));
            m.extend(reply.extra);
            Value::Object(m)
        }
        Err(s) => json!({"code": s.code, "message": s.reason}),
    };
    Json(body).into_response()
}

/// An endpoint: its function, given the service and the parsed call.
fn endpoint<F, Fut>(f: F) -> MethodRouter<Arc<Service>>
where
    F: Fn(Arc<Service>, Call) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send + 'static,
{
    post(
        move |State(svc): State<Arc<Service>>, headers: HeaderMap, body: Bytes| {
            let f = f.clone();
            async move {
                let mut call = match Call::parse(&headers, &body) {
                    Ok(call) => call,
                    Err(s) => return envelope(Err(s)),
                };
                if svc.0.auth.enabled() {
                    match super::auth::caller_of(&svc.0.auth, &headers, None).await {
                        Ok(c) => call.caller = Some(c),
                        Err(_) => {
                            return envelope(Err(fail(
                                NEED_AUTHENTICATE,
                                "user hasn't authenticated",
                            )))
                        }
                    }
                }
                // `Request-Timeout` (seconds), else Milvus's 30 s: HTTP 408, code 10001.
                let limit = headers
                    .get("Request-Timeout")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|s| *s > 0)
                    .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
                match tokio::time::timeout(limit, f(svc, call)).await {
                    Ok(answer) => envelope(answer),
                    Err(_) => (
                        StatusCode::REQUEST_TIMEOUT,
                        Json(json!({"code": REQUEST_TIMEOUT, "message": "request timeout"})),
                    )
                        .into_response(),
                }
            }
        },
    )
}

/// The REST routes of a proxy.
pub fn router(p: Arc<Proxy>) -> Router {
    let svc = Arc::new(Service(p));
    let mut r = Router::new();
    for (path, route) in collections::routes()
        .into_iter()
        .chain(entities::routes())
        .chain(other::routes())
        .chain(jobs::routes())
    {
        r = r.route(&format!("/v2/vectordb/{path}"), route);
    }
    // Any other path under /v2/: 404, as Milvus answers (not gRPC's "unimplemented").
    r = r.route(
        "/v2/{*rest}",
        axum::routing::any(|| async { (StatusCode::NOT_FOUND, "404 page not found") }),
    );
    r.with_state(svc)
}

/// The paths served, under `/v2/vectordb/` (the OpenAPI document lists the same).
pub fn paths() -> Vec<&'static str> {
    collections::routes()
        .into_iter()
        .chain(entities::routes())
        .chain(other::routes())
        .chain(jobs::routes())
        .map(|(p, _)| p)
        .collect()
}

/// What each module gives the router: (path under /v2/vectordb/, its endpoint).
type Routes = Vec<(&'static str, MethodRouter<Arc<Service>>)>;
