//! Authentication and authorization at the proxy (`common.security.authorizationEnabled`).
//!
//! Every gRPC call to the proxy passes [`grpc_gate`] before tonic decodes it: the
//! `authorization` metadata (base64 of `user:password`, what pymilvus sends for
//! `user=`/`password=` and for `token=`) must name a user whose stored bcrypt hash the
//! password matches, else the call ends with gRPC UNAUTHENTICATED, as Milvus's interceptor
//! answers. REST calls carry `Authorization: Bearer user:password` and are checked the
//! same way. The verified user travels in the request's extensions ([`Caller`]); each
//! handler then asks [`Gate::authorize`] for the privilege its request needs
//! ([`crate::auth::privilege`]) before it does anything (invariant A2).
//!
//! The proxy follows the credential records in etcd itself, so a check needs no round
//! trip and keeps working through a rootcoord failover; a password is checked with bcrypt
//! once per user and record revision, then by its SHA-256 digest (invariant A1). A check
//! that fails against the followed records is retried against the user's record read from
//! etcd when that is newer, so a user created or a password changed a moment ago through
//! another proxy is seen (A3).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;

use super::Proxy;
use crate::auth::password::{self, Verified};
use crate::auth::privilege::{permits, Guarded, ObjectType};
use crate::auth::Caller;
use crate::etcd::Etcd;
use crate::meta::auth::{AuthKeys, AuthState};
use crate::meta::follower::Follower;

/// Milvus's message for a user or password that does not match.
pub const BAD_CREDENTIALS: &str =
    "auth check failure, please check username and password are correct";
/// Milvus's message for a call without credentials.
pub const MISSING: &str = "missing authorization in header";
/// How often a failure from one client address is logged.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How long a proxy waits for its followed records to show its own change.
const CATCH_UP: Duration = Duration::from_secs(3);

/// The proxy's authentication and authorization state.
pub struct Gate {
    enabled: bool,
    super_users: Vec<String>,
    etcd: Etcd,
    keys: AuthKeys,
    follower: OnceLock<Arc<Follower<AuthState>>>,
    verified: Verified,
    state: Arc<crate::session::state::ComponentState>,
    logged: crate::logging::PerAddress,
}

impl Gate {
    /// The gate of a proxy with this configuration.
    pub fn new(ctx: &crate::context::Context) -> Gate {
        let sec = &ctx.config.security;
        Gate {
            enabled: sec.authorization_enabled,
            super_users: sec.super_users.clone(),
            etcd: ctx.etcd.clone(),
            keys: AuthKeys::new(&ctx.config.etcd.meta_root()),
            follower: OnceLock::new(),
            verified: Verified::default(),
            state: ctx.state.clone(),
            logged: crate::logging::PerAddress::new(LOG_EVERY),
        }
    }

    /// Whether calls are checked.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn follower(&self) -> &Arc<Follower<AuthState>> {
        self.follower.get_or_init(|| {
            Follower::start(
                self.etcd.clone(),
                self.keys.clone(),
                Arc::new(RwLock::new(AuthState::default())),
            )
        })
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, AuthState> {
        self.follower().catalog().read().expect("auth lock")
    }

    /// Waits until the followed records show a change the rootcoord wrote at etcd
    /// revision `rev` (false after a few seconds).
    pub async fn wait_applied(&self, rev: i64) -> bool {
        self.follower().wait_applied(rev, CATCH_UP).await
    }

    /// `user`'s record as etcd holds it now (a linearizable read): its hash and revision.
    async fn read_user(&self, user: &str) -> Option<(String, i64)> {
        let key = self.keys.user(user);
        let resp = self
            .etcd
            .call(|mut c| async move { c.get(key, None).await })
            .await
            .ok()?;
        let kv = resp.kvs().first()?;
        let record =
            <crate::proto::rootcoord::UserRecord as prost::Message>::decode(kv.value()).ok()?;
        Some((record.encrypted_password, kv.mod_revision()))
    }

    /// Whether `password` matches `hash` (the record at `rev`), remembered when it does.
    async fn check(&self, user: &str, pw: &str, hash: String, rev: i64) -> bool {
        if self.verified.knows(user, pw, rev) {
            return true;
        }
        let owned = pw.to_string();
        let good = tokio::task::spawn_blocking(move || password::verify(&owned, &hash))
            .await
            .unwrap_or(false);
        if good {
            self.verified.remember(user, pw, rev);
        }
        good
    }

    /// The stored hash of `user`'s password, as etcd holds it now.
    pub async fn stored_hash(&self, user: &str) -> Option<String> {
        self.read_user(user).await.map(|(hash, _)| hash)
    }

    /// Whether `password` is `user`'s: against the followed records, and when that
    /// fails, against etcd's own record if it differs (a user or password created
    /// through another proxy a moment ago).
    pub async fn verify(&self, user: &str, pw: &str) -> bool {
        if self.follower().applied() == 0 {
            self.follower().wait_applied(1, CATCH_UP).await;
        }
        let followed = self
            .state()
            .user(user)
            .map(|(u, rev)| (u.encrypted_password.clone(), rev));
        if let Some((hash, rev)) = followed.clone() {
            if self.check(user, pw, hash, rev).await {
                return true;
            }
        }
        match self.read_user(user).await {
            Some((hash, rev)) if followed.as_ref().map(|f| f.1) != Some(rev) => {
                self.check(user, pw, hash, rev).await
            }
            _ => false,
        }
    }

    /// The user a `user:password` token names, if the password is right.
    pub async fn authenticate(
        &self,
        token: &str,
        peer: Option<SocketAddr>,
    ) -> Result<Caller, String> {
        let Some((user, pw)) = token.split_once(':') else {
            self.failed(peer, "", "a token without ':' (API keys are not supported)");
            return Err("auth check failure, please check api key is correct".to_string());
        };
        if self.verify(user, pw).await {
            Ok(Caller {
                user: user.to_string(),
            })
        } else {
            self.failed(peer, user, "wrong user name or password");
            Err(BAD_CREDENTIALS.to_string())
        }
    }

    /// Counts a failure and logs it, at most once per [`LOG_EVERY`] per client address
    /// (with how many were not logged).
    fn failed(&self, peer: Option<SocketAddr>, user: &str, why: &str) {
        self.state.count_auth_failure();
        let addr = peer.map_or_else(|| "unknown".to_string(), |p| p.ip().to_string());
        if let Some(suppressed) = self.logged.admit(&addr) {
            log::warn!(client = addr.as_str(), user = user, reason = why, suppressed = suppressed;
                "authentication failed");
        }
    }

    /// Checks the caller of `req` holds what it needs (Ok when checks are off).
    pub fn authorize<T: Guarded>(&self, req: &tonic::Request<T>) -> Result<(), tonic::Status> {
        if !self.enabled {
            return Ok(());
        }
        let Some(caller) = req.extensions().get::<Caller>() else {
            return Err(tonic::Status::unauthenticated(MISSING));
        };
        let need = req.get_ref().need();
        let db = if need.db.is_empty() {
            super::service::db_of(req, "")
        } else {
            need.db.clone()
        };
        // A user may always see and change itself.
        if need.object == ObjectType::User && need.names.iter().all(|n| *n == caller.user) {
            return Ok(());
        }
        if permits(&self.state(), &caller.user, &self.super_users, &need, &db) {
            return Ok(());
        }
        log::info!(user = caller.user.as_str(), privilege = need.privilege, object = need.object.name(),
            names:? = need.names, db = db.as_str(); "permission denied");
        Err(tonic::Status::permission_denied(format!(
            "Privilege{}: permission deny to {} in the `{}` database",
            need.privilege, caller.user, db
        )))
    }

    /// `SelectGrant` checks: a user may always read the grants of its own roles
    /// (`public` included), else it needs SelectOwnership.
    pub fn authorize_select_grant(
        &self,
        req: &tonic::Request<crate::proto::milvus::SelectGrantRequest>,
    ) -> Result<(), tonic::Status> {
        if let (true, Some(caller)) = (self.enabled, req.extensions().get::<Caller>()) {
            let role = req
                .get_ref()
                .entity
                .as_ref()
                .and_then(|e| e.role.as_ref())
                .map(|r| r.name.as_str())
                .unwrap_or_default();
            if role == crate::meta::auth::ROLE_PUBLIC
                || self.state().roles_of(&caller.user).contains(role)
            {
                return Ok(());
            }
        }
        self.authorize(req)
    }

    /// Whether `user` is a configured super user (root is not one unless listed).
    pub fn is_configured_super(&self, user: &str) -> bool {
        self.super_users.iter().any(|u| u == user)
    }

    /// Whether the caller of a request (when checks are on) may see collection `name`
    /// of `db` in a listing.
    pub fn sees_collection(&self, caller: Option<&Caller>, db: &str, name: &str) -> bool {
        match (self.enabled, caller) {
            (false, _) => true,
            (true, None) => false,
            (true, Some(c)) => crate::auth::privilege::sees_collection(
                &self.state(),
                &c.user,
                &self.super_users,
                db,
                name,
            ),
        }
    }
}

/// The `user:password` in an `authorization` value: base64 for gRPC, `Bearer <token>`
/// (the token itself) for REST.
fn token_of(value: &str) -> Result<String, String> {
    if let Some(t) = value.strip_prefix("Bearer ") {
        return Ok(t.trim().to_string());
    }
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| "invalid token format".to_string())
}

/// The verified caller of an HTTP request, or the message to refuse it with.
pub async fn caller_of(
    gate: &Gate,
    headers: &axum::http::HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Caller, String> {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        gate.failed(peer, "", "no authorization header");
        return Err(MISSING.to_string());
    };
    let token = token_of(value).inspect_err(|_| gate.failed(peer, "", "undecodable token"))?;
    gate.authenticate(&token, peer).await
}

/// The gRPC layer: lets a call through with its verified [`Caller`], or answers
/// UNAUTHENTICATED without running it.
pub async fn grpc_gate(State(p): State<Arc<Proxy>>, mut req: Request, next: Next) -> Response {
    if !p.auth.enabled()
        || !req
            .uri()
            .path()
            .starts_with("/milvus.proto.milvus.MilvusService/")
    {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<crate::tls::Peer>>()
                .map(|c| c.0 .0)
        });
    match caller_of(&p.auth, req.headers(), peer).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(msg) => tonic::Status::unauthenticated(msg).into_http(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_base64_for_grpc_and_plain_for_rest() {
        assert_eq!(token_of("cm9vdDpNaWx2dXM=").unwrap(), "root:Milvus");
        assert_eq!(token_of("Bearer root:Milvus").unwrap(), "root:Milvus");
        assert!(token_of("%%%").is_err());
    }
}
