//! Users, roles and grants as clients manage them (`create_user`, `update_password`,
//! `grant_role`, `grant_privilege[_v2]`, privilege groups, ...).
//!
//! Passwords arrive base64-encoded (as pymilvus sends them); the proxy checks Milvus's
//! rules, checks an old password against the stored hash, and hashes a new one with
//! bcrypt off the async runtime, so only the hash travels to the rootcoord, which stores
//! every change fenced and once. After a change succeeds, the proxy waits until its own
//! followed records show it, so the next call through this proxy (a new password, a
//! revoked privilege) sees it.

use super::{coord_down, Proxy};
use crate::auth::password::{self, check_password, check_username};
use crate::auth::privilege::{built_in_group, ObjectType, COLLECTION_PRIVILEGES, USER_PRIVILEGES};
use crate::auth::Caller;
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::proto::rootcoord::CredentialChange;
use crate::status::{code, error, is_ok, WithStatus};

/// Milvus's code for a password check that fails (`ErrPrivilegeNotAuthenticated`).
pub const NOT_AUTHENTICATED: i32 = 1400;

macro_rules! ok_or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(s) => return s,
        }
    };
}

impl Proxy {
    /// Forwards a change to the rootcoord; once it succeeded, waits until this proxy's
    /// followed records show it.
    async fn rbac_write<M, F, Fut>(&self, message: M, f: F) -> Status
    where
        M: Clone,
        F: Fn(
            crate::proto::rootcoord::root_coord_client::RootCoordClient<tonic::transport::Channel>,
            tonic::Request<M>,
        ) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Status>, tonic::Status>>,
    {
        let mut s = match self.rootcoord.call_write(message, f).await {
            Ok(s) => s,
            Err(e) => return coord_down(e),
        };
        let revision = s
            .extra_info
            .remove(crate::roles::rootcoord::rbac::REVISION_KEY)
            .and_then(|r| r.parse().ok());
        if let (true, Some(rev)) = (is_ok(&s), revision) {
            self.auth.wait_applied(rev).await;
        }
        s
    }

    /// Forwards a read to the rootcoord.
    pub(super) async fn rbac_read<M, T, F, Fut>(&self, message: M, f: F) -> T
    where
        M: Clone,
        T: WithStatus,
        F: Fn(
            crate::proto::rootcoord::root_coord_client::RootCoordClient<tonic::transport::Channel>,
            tonic::Request<M>,
        ) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match self.rootcoord.call(message, f).await {
            Ok(r) => r,
            Err(e) => T::from_status(coord_down(e)),
        }
    }

    /// `CreateCredential`.
    pub async fn create_credential(&self, req: pb::CreateCredentialRequest) -> Status {
        let sec = &self.ctx.config.security;
        ok_or_return!(check_username(&req.username, sec));
        let pw = ok_or_return!(password::decode_base64(&req.password, "password"));
        ok_or_return!(check_password(&pw, sec));
        let hashed = ok_or_return!(hash(pw).await);
        let change = CredentialChange {
            username: req.username.trim().to_string(),
            encrypted_password: hashed,
            create: true,
            expected_password: String::new(),
        };
        self.rbac_write(change, |mut c, r| async move { c.put_credential(r).await })
            .await
    }

    /// `UpdateCredential`: the old password must be right unless the caller is root or
    /// a super user.
    pub async fn update_credential(
        &self,
        caller: Option<&Caller>,
        req: pb::UpdateCredentialRequest,
    ) -> Status {
        let sec = &self.ctx.config.security;
        ok_or_return!(check_username(&req.username, sec));
        let old = ok_or_return!(password::decode_base64(&req.old_password, "old password"));
        let new = ok_or_return!(password::decode_base64(&req.new_password, "new password"));
        ok_or_return!(check_password(&new, sec));
        let wrong_old = || {
            error(
                NOT_AUTHENTICATED,
                format!(
                    "old password not correct for {}: not authenticated",
                    req.username
                ),
            )
        };
        // As Milvus: the old password is checked for everyone (root included) except the
        // configured super users, and a missing user reads as a wrong old password.
        let Some(current) = self.auth.stored_hash(&req.username).await else {
            return wrong_old();
        };
        let trusted = caller.is_some_and(|c| self.auth.is_configured_super(&c.user));
        if !trusted && !self.auth.verify(&req.username, &old).await {
            return wrong_old();
        }
        let hashed = ok_or_return!(hash(new).await);
        let change = CredentialChange {
            username: req.username,
            encrypted_password: hashed,
            create: false,
            expected_password: current,
        };
        self.rbac_write(change, |mut c, r| async move { c.put_credential(r).await })
            .await
    }

    /// `DeleteCredential`.
    pub async fn delete_credential(&self, req: pb::DeleteCredentialRequest) -> Status {
        self.rbac_write(req, |mut c, r| async move { c.delete_credential(r).await })
            .await
    }

    /// `CreateRole`.
    pub async fn create_role(&self, req: pb::CreateRoleRequest) -> Status {
        self.rbac_write(req, |mut c, r| async move { c.create_role(r).await })
            .await
    }

    /// `DropRole`.
    pub async fn drop_role(&self, req: pb::DropRoleRequest) -> Status {
        self.rbac_write(req, |mut c, r| async move { c.drop_role(r).await })
            .await
    }

    /// `OperateUserRole`.
    pub async fn operate_user_role(&self, req: pb::OperateUserRoleRequest) -> Status {
        self.rbac_write(req, |mut c, r| async move { c.operate_user_role(r).await })
            .await
    }

    /// `OperatePrivilege`: the grantor is the caller.
    pub async fn operate_privilege(
        &self,
        caller: Option<&Caller>,
        mut req: pb::OperatePrivilegeRequest,
    ) -> Status {
        if let Some(e) = req.entity.as_mut() {
            let grantor = e.grantor.get_or_insert_with(Default::default);
            grantor.user = Some(pb::UserEntity {
                name: caller.map_or_else(|| "root".to_string(), |c| c.user.clone()),
            });
        }
        self.rbac_write(req, |mut c, r| async move { c.operate_privilege(r).await })
            .await
    }

    /// `OperatePrivilegeV2`: a privilege or group on a database and collection (`*` for
    /// all), stored under the object type its privilege belongs to.
    pub async fn operate_privilege_v2(
        &self,
        caller: Option<&Caller>,
        req: pb::OperatePrivilegeV2Request,
    ) -> Status {
        let privilege = req
            .grantor
            .as_ref()
            .and_then(|g| g.privilege.as_ref())
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let db = if req.db_name.is_empty() {
            "default".to_string()
        } else {
            req.db_name
        };
        let collection = if req.collection_name.is_empty() {
            "*".to_string()
        } else {
            req.collection_name
        };
        let (object, db, name) = match built_in_group(&privilege) {
            Some((ObjectType::Collection, _)) => (ObjectType::Collection, db, collection),
            Some((_, _)) if privilege.starts_with("Cluster") => {
                (ObjectType::Global, "*".to_string(), "*".to_string())
            }
            Some((_, _)) => (ObjectType::Global, db, "*".to_string()),
            None if COLLECTION_PRIVILEGES.contains(&privilege.as_str()) => {
                (ObjectType::Collection, db, collection)
            }
            None if USER_PRIVILEGES.contains(&privilege.as_str()) => {
                (ObjectType::User, db, "*".to_string())
            }
            None if privilege == "*" || crate::auth::privilege::is_privilege(&privilege) => {
                (ObjectType::Global, db, "*".to_string())
            }
            // A user-defined group: on the collection named.
            None => (ObjectType::Collection, db, collection),
        };
        let v1 = pb::OperatePrivilegeRequest {
            base: req.base,
            entity: Some(pb::GrantEntity {
                role: req.role,
                object: Some(pb::ObjectEntity {
                    name: object.name().to_string(),
                }),
                object_name: name,
                grantor: req.grantor,
                db_name: db,
            }),
            r#type: req.r#type,
            version: "v2".to_string(),
        };
        self.operate_privilege(caller, v1).await
    }

    /// `CreatePrivilegeGroup`.
    pub async fn create_privilege_group(&self, req: pb::CreatePrivilegeGroupRequest) -> Status {
        self.rbac_write(
            req,
            |mut c, r| async move { c.create_privilege_group(r).await },
        )
        .await
    }

    /// `DropPrivilegeGroup`.
    pub async fn drop_privilege_group(&self, req: pb::DropPrivilegeGroupRequest) -> Status {
        self.rbac_write(
            req,
            |mut c, r| async move { c.drop_privilege_group(r).await },
        )
        .await
    }

    /// `OperatePrivilegeGroup`.
    pub async fn operate_privilege_group(&self, req: pb::OperatePrivilegeGroupRequest) -> Status {
        self.rbac_write(
            req,
            |mut c, r| async move { c.operate_privilege_group(r).await },
        )
        .await
    }
}

/// The bcrypt hash of a new password, computed off the async runtime.
async fn hash(password: String) -> Result<String, Status> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|e| error(code::UNEXPECTED, e))
}
