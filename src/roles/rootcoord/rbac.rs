//! Users, roles, grants and privilege groups: catalog changes like any other (one at a
//! time under the DDL lock, fenced, each client request applied once), validated against
//! the credential records the catalog follows ([`crate::meta::auth`]).
//!
//! The proxy checks passwords and hashes new ones; a password reaches the rootcoord
//! only as a bcrypt hash. `root` is created at the first activation with
//! `common.security.defaultRootPassword` and can be neither dropped nor stripped of its
//! privileges; `admin` and `public` are built-in roles that always exist.

use etcd_client::{Compare, CompareOp, TxnOp};
use prost::Message;

use super::RootCoord;
use crate::auth::password::check_role_name;
use crate::auth::privilege::{
    built_in_group, built_in_groups, is_privilege, public_grants, ObjectType,
};
use crate::meta::auth::{ROLE_ADMIN, ROLE_PUBLIC, ROOT};
use crate::meta::now_ms;
use crate::proto::common::Status;
use crate::proto::milvus as pb;
use crate::proto::rootcoord::{
    CredentialChange, GrantRecord, PrivilegeGroupRecord, RoleRecord, UserRecord,
};
use crate::status::{code, error, ok};

fn invalid(msg: impl Into<String>) -> Status {
    error(code::PARAMETER_INVALID, msg)
}

/// Begins a change or returns its answer (a standby, a full queue, a repeated request).
macro_rules! begin {
    ($self:ident, $request:ident) => {
        match $self.begin($request).await {
            Ok(c) => c,
            Err(s) => return s,
        }
    };
}

/// Returns the status of a failed check.
macro_rules! check {
    ($e:expr) => {
        if let Err(s) = $e {
            return s;
        }
    };
}

/// Milvus's code for a privilege rule a call breaks (`ErrPrivilegeNotPermitted`).
const NOT_PERMITTED: i32 = 1401;

fn role_not_found(_name: &str) -> Status {
    error(
        code::UNEXPECTED,
        "not found the role, maybe the role isn't existed or internal system error",
    )
}

fn user_not_found(_name: &str) -> Status {
    error(
        code::UNEXPECTED,
        "not found the user, maybe the user isn't existed or internal system error",
    )
}

/// A name that becomes part of an etcd key: no `/`, not empty.
fn key_safe(what: &str, name: &str) -> Result<(), Status> {
    if name.is_empty() || name.contains('/') {
        return Err(invalid(format!(
            "invalid {what} {name:?}: expected a non-empty name without '/'"
        )));
    }
    Ok(())
}

/// Where a successful change's status names the etcd revision it was written at, for
/// the proxy to wait until its own followed records show it (it strips the key).
pub const REVISION_KEY: &str = "revision";

/// `s`, with the revision of `c`'s write when it succeeded.
fn with_revision(mut s: Status, c: &super::ddl::Change<'_>) -> Status {
    let rev = c.revision.load(std::sync::atomic::Ordering::SeqCst);
    if crate::status::is_ok(&s) && rev > 0 {
        s.extra_info
            .insert(REVISION_KEY.to_string(), rev.to_string());
    }
    s
}

impl RootCoord {
    /// Writes `root` with the configured default password if no root user is stored
    /// (the first activation of a cluster).
    pub(super) async fn create_root_user(
        &self,
        store: &crate::session::fenced::FencedStore,
        follower: &crate::meta::follower::Follower<crate::meta::catalog::Catalog>,
    ) -> Result<(), String> {
        if self.read().auth().user(ROOT).is_some() {
            return Ok(());
        }
        let password = self.ctx.config.security.default_root_password.clone();
        let hashed = tokio::task::spawn_blocking(move || crate::auth::password::hash(&password))
            .await
            .map_err(|e| e.to_string())??;
        let now = now_ms();
        let record = UserRecord {
            name: ROOT.to_string(),
            encrypted_password: hashed,
            created_ms: now,
            updated_ms: now,
        };
        let key = self.keys.auth.user(ROOT);
        let rev = store
            .write_if(
                vec![Compare::version(key.clone(), CompareOp::Equal, 0)],
                vec![TxnOp::put(key, record.encode_to_vec(), None)],
            )
            .await
            .map_err(|e| e.to_string())?;
        if let Some(rev) = rev {
            follower
                .wait_applied(rev, std::time::Duration::from_secs(5))
                .await;
            log::info!("created the root user with common.security.defaultRootPassword");
        }
        Ok(())
    }

    /// `CreateCredential` and `UpdateCredential` with the password already hashed.
    pub async fn put_credential(&self, req: CredentialChange, request: Option<String>) -> Status {
        let c = begin!(self, request);
        check!(crate::auth::password::check_username(
            &req.username,
            &self.ctx.config.security
        ));
        let key = self.keys.auth.user(&req.username);
        let now = now_ms();
        let (record, when) = {
            let cat = self.read();
            let auth = cat.auth();
            match (auth.user(&req.username), req.create) {
                (Some(_), true) => {
                    return error(
                        code::UNEXPECTED,
                        format!("user already exists: {}", req.username),
                    );
                }
                (None, true) => {
                    let max = self.ctx.config.security.max_user_num;
                    if auth.user_names().len() >= max {
                        return error(code::UNEXPECTED, format!(
                            "unable to add user because the number of users has reached the limit (proxy.maxUserNum = {max})"
                        ));
                    }
                    let record = UserRecord {
                        name: req.username.clone(),
                        encrypted_password: req.encrypted_password,
                        created_ms: now,
                        updated_ms: now,
                    };
                    (record, Compare::version(key.clone(), CompareOp::Equal, 0))
                }
                (None, false) => return user_not_found(&req.username),
                (Some((old, rev)), false) => {
                    if old.encrypted_password != req.expected_password {
                        return error(
                            code::UNEXPECTED,
                            "the password changed while this change was on its way; retry",
                        );
                    }
                    let record = UserRecord {
                        encrypted_password: req.encrypted_password,
                        updated_ms: now,
                        ..old.clone()
                    };
                    (
                        record,
                        Compare::mod_revision(key.clone(), CompareOp::Equal, rev),
                    )
                }
            }
        };
        with_revision(
            self.commit_if(
                &c,
                vec![when],
                vec![TxnOp::put(key, record.encode_to_vec(), None)],
            )
            .await,
            &c,
        )
    }

    /// `DeleteCredential`: the user and its role memberships.
    pub async fn delete_credential(
        &self,
        req: pb::DeleteCredentialRequest,
        request: Option<String>,
    ) -> Status {
        let c = begin!(self, request);
        if req.username == ROOT {
            return error(
                NOT_PERMITTED,
                "root user cannot be deleted: privilege not permitted",
            );
        }
        let ops = {
            let cat = self.read();
            let auth = cat.auth();
            // Dropping a user that does not exist succeeds, as in Milvus.
            if auth.user(&req.username).is_none() {
                return ok();
            }
            let mut ops = vec![TxnOp::delete(self.keys.auth.user(&req.username), None)];
            for role in auth.roles_of(&req.username) {
                ops.push(TxnOp::delete(
                    self.keys.auth.user_role(&req.username, &role),
                    None,
                ));
            }
            ops
        };
        with_revision(self.commit(&c, ops).await, &c)
    }

    /// `ListCredUsers`.
    pub fn list_cred_users(
        &self,
        _req: pb::ListCredUsersRequest,
    ) -> Result<pb::ListCredUsersResponse, Status> {
        self.active()?;
        Ok(pb::ListCredUsersResponse {
            status: Some(ok()),
            usernames: self.read().auth().user_names(),
        })
    }

    /// `CreateRole`.
    pub async fn create_role(&self, req: pb::CreateRoleRequest, request: Option<String>) -> Status {
        let c = begin!(self, request);
        let name = req.entity.map(|e| e.name).unwrap_or_default();
        check!(check_role_name(&name, "role"));
        {
            let cat = self.read();
            if cat.auth().has_role(&name) {
                return error(
                    code::UNEXPECTED,
                    format!("role [name:\"{name}\"] already exists"),
                );
            }
            // The limit counts the built-in admin and public, as Milvus's does.
            let max = self.ctx.config.security.max_role_num;
            if cat.auth().created_roles() + 2 >= max {
                return error(code::UNEXPECTED, format!(
                    "unable to create role because the number of roles has reached the limit (proxy.maxRoleNum = {max})"
                ));
            }
        }
        let key = self.keys.auth.role(&name);
        let record = RoleRecord {
            name,
            created_ms: now_ms(),
        };
        with_revision(
            self.commit_if(
                &c,
                vec![Compare::version(key.clone(), CompareOp::Equal, 0)],
                vec![TxnOp::put(key, record.encode_to_vec(), None)],
            )
            .await,
            &c,
        )
    }

    /// `DropRole`: refused while it has grants unless `force_drop`; its memberships go
    /// with it.
    pub async fn drop_role(&self, req: pb::DropRoleRequest, request: Option<String>) -> Status {
        let c = begin!(self, request);
        let name = req.role_name;
        if name == ROLE_ADMIN || name == ROLE_PUBLIC {
            return error(
                NOT_PERMITTED,
                format!("the role[{name}] is a default role, which can't be dropped: privilege not permitted"),
            );
        }
        let ops = {
            let cat = self.read();
            let auth = cat.auth();
            if !auth.has_role(&name) {
                return role_not_found(&name);
            }
            let grants: Vec<&GrantRecord> = auth.grants_of(&name).collect();
            if !grants.is_empty() && !req.force_drop {
                return error(
                    code::UNEXPECTED,
                    "fail to drop the role that it has privileges. Use REVOKE API to revoke privileges",
                );
            }
            let mut ops = vec![TxnOp::delete(self.keys.auth.role(&name), None)];
            ops.extend(
                grants
                    .iter()
                    .map(|g| TxnOp::delete(self.keys.auth.grant(g), None)),
            );
            ops.extend(
                auth.users_of(&name)
                    .iter()
                    .map(|u| TxnOp::delete(self.keys.auth.user_role(u, &name), None)),
            );
            ops
        };
        with_revision(self.commit(&c, ops).await, &c)
    }

    /// `OperateUserRole`: adds a user to a role or removes it (both idempotent).
    pub async fn operate_user_role(
        &self,
        req: pb::OperateUserRoleRequest,
        request: Option<String>,
    ) -> Status {
        let c = begin!(self, request);
        let (user, role) = (req.username, req.role_name);
        check!(crate::auth::password::check_username(
            &user,
            &self.ctx.config.security
        ));
        check!(key_safe("role name", &role));
        let add = req.r#type == pb::OperateUserRoleType::AddUserToRole as i32;
        {
            let cat = self.read();
            let auth = cat.auth();
            if !auth.has_role(&role) {
                return role_not_found(&role);
            }
            // Removing a user that does not exist from a role succeeds, as in Milvus.
            if auth.user(&user).is_none() {
                return if add { user_not_found(&user) } else { ok() };
            }
            // Nothing to remove: done, without a write (a delete of no key makes no
            // event to wait for).
            if !add && !auth.roles_of(&user).contains(&role) {
                return ok();
            }
        }
        let key = self.keys.auth.user_role(&user, &role);
        let op = if add {
            TxnOp::put(key, role.clone(), None)
        } else {
            TxnOp::delete(key, None)
        };
        with_revision(self.commit(&c, vec![op]).await, &c)
    }

    /// `SelectRole`: one role (or every role when none is named), with its users when
    /// asked.
    pub fn select_role(
        &self,
        req: pb::SelectRoleRequest,
    ) -> Result<pb::SelectRoleResponse, Status> {
        self.active()?;
        let cat = self.read();
        let auth = cat.auth();
        let name = req.role.map(|r| r.name).unwrap_or_default();
        // A role that does not exist: no results (not an error), as Milvus answers.
        let names = if name.is_empty() {
            auth.role_names()
        } else if auth.has_role(&name) {
            vec![name]
        } else {
            vec![]
        };
        let results = names
            .into_iter()
            .map(|r| pb::RoleResult {
                users: if req.include_user_info {
                    auth.users_of(&r)
                        .into_iter()
                        .map(|name| pb::UserEntity { name })
                        .collect()
                } else {
                    vec![]
                },
                role: Some(pb::RoleEntity { name: r }),
            })
            .collect();
        Ok(pb::SelectRoleResponse {
            status: Some(ok()),
            results,
        })
    }

    /// `SelectUser`: one user (or every user), with its roles when asked.
    pub fn select_user(
        &self,
        req: pb::SelectUserRequest,
    ) -> Result<pb::SelectUserResponse, Status> {
        self.active()?;
        let cat = self.read();
        let auth = cat.auth();
        let name = req.user.map(|u| u.name).unwrap_or_default();
        // A user that does not exist: no results (not an error), as Milvus answers.
        let names = if name.is_empty() {
            auth.user_names()
        } else if auth.user(&name).is_some() {
            vec![name]
        } else {
            vec![]
        };
        let results = names
            .into_iter()
            .map(|u| pb::UserResult {
                roles: if req.include_role_info {
                    auth.roles_of(&u)
                        .into_iter()
                        .map(|name| pb::RoleEntity { name })
                        .collect()
                } else {
                    vec![]
                },
                user: Some(pb::UserEntity { name: u }),
            })
            .collect();
        Ok(pb::SelectUserResponse {
            status: Some(ok()),
            results,
        })
    }

    /// `OperatePrivilege`: grants or revokes one privilege (both idempotent).
    pub async fn operate_privilege(
        &self,
        req: pb::OperatePrivilegeRequest,
        request: Option<String>,
    ) -> Status {
        let c = begin!(self, request);
        let e = req.entity.unwrap_or_default();
        let role = e.role.map(|r| r.name).unwrap_or_default();
        let object = e.object.map(|o| o.name).unwrap_or_default();
        let grantor = e.grantor.unwrap_or_default();
        let privilege = grantor.privilege.map(|p| p.name).unwrap_or_default();
        let by = grantor.user.map(|u| u.name).unwrap_or_default();
        let db = if e.db_name.is_empty() {
            crate::meta::catalog::DEFAULT_DB.to_string()
        } else {
            e.db_name
        };
        let record = GrantRecord {
            role,
            db_name: db,
            object_type: object,
            object_name: e.object_name,
            privilege,
            grantor: by,
        };
        {
            let cat = self.read();
            if let Err(s) = self.check_grant(cat.auth(), &record, req.version == "v2") {
                return s;
            }
        }
        let key = self.keys.auth.grant(&record);
        let grant = req.r#type == pb::OperatePrivilegeType::Grant as i32;
        // Revoking what is not granted: done, without a write (no event to wait for).
        if !grant
            && !self
                .read()
                .auth()
                .grants_of(&record.role)
                .any(|g| self.keys.auth.grant(g) == key)
        {
            return ok();
        }
        let op = if grant {
            TxnOp::put(key, record.encode_to_vec(), None)
        } else {
            TxnOp::delete(key, None)
        };
        with_revision(self.commit(&c, vec![op]).await, &c)
    }

    /// Checks a grant names an existing role (not `admin`), an object type, an object
    /// name and a privilege of that object type (or `*`, or a privilege group).
    fn check_grant(
        &self,
        auth: &crate::meta::auth::AuthState,
        g: &GrantRecord,
        v2: bool,
    ) -> Result<(), Status> {
        let failed = |m: String| error(code::UNEXPECTED, m);
        let Some(ty) = ObjectType::parse(&g.object_type) else {
            return Err(failed(format!(
                "not found the object type[name: {}], supported the object types: [Collection Global User]",
                g.object_type
            )));
        };
        if !auth.has_role(&g.role) {
            return Err(role_not_found(&g.role));
        }
        if g.role == ROLE_ADMIN {
            return Err(error(
                NOT_PERMITTED,
                "the role[admin] is a default role, its privileges can't be changed: privilege not permitted",
            ));
        }
        if g.object_name.is_empty() {
            return Err(invalid("the object name in the grant entity is empty"));
        }
        key_safe("object name", &g.object_name)?;
        key_safe("database name", &g.db_name)?;
        let p = &g.privilege;
        if built_in_group(p).is_some() || auth.group(p).is_some() {
            if v2 {
                return Ok(());
            }
            let kind = if built_in_group(p).is_some() {
                "built-in"
            } else {
                "custom"
            };
            return Err(failed(format!(
                "can not operate the {kind} privilege group [{p}]: grant it with grant_privilege_v2"
            )));
        }
        let all = ty == ObjectType::Global && p == "All";
        if !(p == "*" || all || ty.privileges().contains(&p.as_str())) {
            return Err(failed(format!(
                "not found the privilege name[{p}] in object[{}]",
                ty.name()
            )));
        }
        Ok(())
    }

    /// `SelectGrant`: the grants of a role, optionally of one object type and name.
    pub fn select_grant(
        &self,
        req: pb::SelectGrantRequest,
    ) -> Result<pb::SelectGrantResponse, Status> {
        self.active()?;
        let e = req.entity.unwrap_or_default();
        let role = e.role.map(|r| r.name).unwrap_or_default();
        let object = e.object.map(|o| o.name).unwrap_or_default();
        if role.is_empty() {
            return Err(invalid("the role entity in the grant entity is nil"));
        }
        let cat = self.read();
        let auth = cat.auth();
        if !auth.has_role(&role) {
            return Err(role_not_found(&role));
        }
        let db = if e.db_name.is_empty() {
            crate::meta::catalog::DEFAULT_DB
        } else {
            e.db_name.as_str()
        };
        let implicit = if role == ROLE_PUBLIC {
            public_grants()
        } else {
            &[]
        };
        let entities = implicit
            .iter()
            .chain(auth.grants_of(&role))
            .filter(|g| object.is_empty() || g.object_type == object)
            .filter(|g| e.object_name.is_empty() || g.object_name == e.object_name)
            .filter(|g| db == "*" || g.db_name == db || g.db_name == "*")
            .map(|g| pb::GrantEntity {
                role: Some(pb::RoleEntity {
                    name: g.role.clone(),
                }),
                object: Some(pb::ObjectEntity {
                    name: g.object_type.clone(),
                }),
                object_name: g.object_name.clone(),
                grantor: Some(pb::GrantorEntity {
                    user: Some(pb::UserEntity {
                        name: g.grantor.clone(),
                    }),
                    privilege: Some(pb::PrivilegeEntity {
                        name: g.privilege.clone(),
                    }),
                }),
                db_name: g.db_name.clone(),
            })
            .collect();
        Ok(pb::SelectGrantResponse {
            status: Some(ok()),
            entities,
        })
    }

    /// `CreatePrivilegeGroup`.
    pub async fn create_privilege_group(
        &self,
        req: pb::CreatePrivilegeGroupRequest,
        request: Option<String>,
    ) -> Status {
        let c = begin!(self, request);
        let name = req.group_name;
        check!(check_role_name(&name, "privilege group"));
        if built_in_group(&name).is_some() || is_privilege(&name) {
            return invalid(format!(
                "privilege group name [{name}] is defined by built in privileges or privilege groups in system"
            ));
        }
        if self.read().auth().group(&name).is_some() {
            return invalid(format!("privilege group [{name}] already exists"));
        }
        let key = self.keys.auth.group(&name);
        let record = PrivilegeGroupRecord {
            name,
            privileges: vec![],
        };
        with_revision(
            self.commit_if(
                &c,
                vec![Compare::version(key.clone(), CompareOp::Equal, 0)],
                vec![TxnOp::put(key, record.encode_to_vec(), None)],
            )
            .await,
            &c,
        )
    }

    /// `DropPrivilegeGroup`: refused while a role is granted it.
    pub async fn drop_privilege_group(
        &self,
        req: pb::DropPrivilegeGroupRequest,
        request: Option<String>,
    ) -> Status {
        let c = begin!(self, request);
        let name = req.group_name;
        if built_in_group(&name).is_some() {
            return invalid(format!(
                "privilege group [{name}] is a built-in group and cannot be dropped"
            ));
        }
        {
            let cat = self.read();
            let auth = cat.auth();
            if auth.group(&name).is_none() {
                return ok();
            }
            for role in auth.role_names() {
                if auth.grants_of(&role).any(|g| g.privilege == name) {
                    return invalid(format!(
                        "privilege group [{name}] is used by role [{role}], Use REVOKE API to revoke it first"
                    ));
                }
            }
        }
        with_revision(
            self.commit(&c, vec![TxnOp::delete(self.keys.auth.group(&name), None)])
                .await,
            &c,
        )
    }

    /// `ListPrivilegeGroups`: the built-in groups, then the user-defined ones.
    pub fn list_privilege_groups(
        &self,
        _req: pb::ListPrivilegeGroupsRequest,
    ) -> Result<pb::ListPrivilegeGroupsResponse, Status> {
        self.active()?;
        let entity = |name: &str| pb::PrivilegeEntity {
            name: name.to_string(),
        };
        let mut privilege_groups: Vec<pb::PrivilegeGroupInfo> = built_in_groups()
            .into_iter()
            .map(|(n, ps)| pb::PrivilegeGroupInfo {
                group_name: n.to_string(),
                privileges: ps.into_iter().map(entity).collect(),
            })
            .collect();
        privilege_groups.extend(self.read().auth().groups().map(|g| pb::PrivilegeGroupInfo {
            group_name: g.name.clone(),
            privileges: g.privileges.iter().map(|p| entity(p)).collect(),
        }));
        Ok(pb::ListPrivilegeGroupsResponse {
            status: Some(ok()),
            privilege_groups,
        })
    }

    /// `OperatePrivilegeGroup`: adds privileges to a user-defined group or removes them.
    pub async fn operate_privilege_group(
        &self,
        req: pb::OperatePrivilegeGroupRequest,
        request: Option<String>,
    ) -> Status {
        let c = begin!(self, request);
        let name = req.group_name;
        let mut group = match self.read().auth().group(&name) {
            Some(g) => g.clone(),
            None => {
                return invalid(format!(
                    "there is no privilege group name [{name}] defined in system to operate"
                ))
            }
        };
        let names: Vec<String> = req.privileges.into_iter().map(|p| p.name).collect();
        if let Some(bad) = names.iter().find(|p| !is_privilege(p)) {
            return invalid(format!(
                "privilege name [{bad}] is not a valid privilege: only single privileges can be added to a privilege group"
            ));
        }
        if req.r#type == pb::OperatePrivilegeGroupType::AddPrivilegesToGroup as i32 {
            for p in names {
                if !group.privileges.contains(&p) {
                    group.privileges.push(p);
                }
            }
        } else {
            group.privileges.retain(|p| !names.contains(p));
        }
        with_revision(
            self.commit(
                &c,
                vec![TxnOp::put(
                    self.keys.auth.group(&name),
                    group.encode_to_vec(),
                    None,
                )],
            )
            .await,
            &c,
        )
    }
}
