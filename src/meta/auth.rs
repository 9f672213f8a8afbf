//! Users, roles, grants and privilege groups in memory, rebuilt from and kept current by
//! the records under `<meta>/root-coord/credential/`.
//!
//! Layout (every value a protobuf record of `rootcoord.proto`, so a record names itself
//! and keys are only for uniqueness and deletion):
//! - `users/<user>`: [`UserRecord`] (the bcrypt hash of the password);
//! - `roles/<role>`: [`RoleRecord`] (the built-in `admin` and `public` are not stored);
//! - `user-role/<user>/<role>`: the role's name (a user's membership);
//! - `grants/<role>/<db>/<object type>/<object name>/<privilege>`: [`GrantRecord`];
//! - `privilege-groups/<group>`: [`PrivilegeGroupRecord`] (user-defined groups).
//!
//! Names that reach a key never hold `/` (the rootcoord validates them first). The
//! rootcoord follows these records as part of its catalog (its hot standby too); a proxy
//! follows them on their own to authenticate and authorize without a round trip.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;

use crate::proto::rootcoord::{GrantRecord, PrivilegeGroupRecord, RoleRecord, UserRecord};

/// The built-in role every privilege check passes.
pub const ROLE_ADMIN: &str = "admin";
/// The built-in role every user has.
pub const ROLE_PUBLIC: &str = "public";
/// The built-in user, created with `common.security.defaultRootPassword`.
pub const ROOT: &str = "root";

/// Key names of the credential records.
#[derive(Debug, Clone)]
pub struct AuthKeys {
    prefix: String,
}

impl AuthKeys {
    /// Keys under `<meta_root>/root-coord/credential/`.
    pub fn new(meta_root: &str) -> Self {
        AuthKeys {
            prefix: format!("{meta_root}/root-coord/credential/"),
        }
    }

    /// The prefix of every record.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A user's record.
    pub fn user(&self, name: &str) -> String {
        format!("{}users/{name}", self.prefix)
    }

    /// A role's record.
    pub fn role(&self, name: &str) -> String {
        format!("{}roles/{name}", self.prefix)
    }

    /// A user's membership in a role.
    pub fn user_role(&self, user: &str, role: &str) -> String {
        format!("{}user-role/{user}/{role}", self.prefix)
    }

    /// A grant's key.
    pub fn grant(&self, g: &GrantRecord) -> String {
        format!(
            "{}grants/{}/{}/{}/{}/{}",
            self.prefix, g.role, g.db_name, g.object_type, g.object_name, g.privilege
        )
    }

    /// A privilege group's record.
    pub fn group(&self, name: &str) -> String {
        format!("{}privilege-groups/{name}", self.prefix)
    }
}

/// Every user, role, membership, grant and user-defined privilege group.
#[derive(Debug, Default, Clone)]
pub struct AuthState {
    users: BTreeMap<String, (UserRecord, i64)>,
    roles: BTreeMap<String, RoleRecord>,
    /// Key -> (user, role).
    memberships: BTreeMap<String, (String, String)>,
    /// Key -> grant.
    grants: BTreeMap<String, GrantRecord>,
    groups: BTreeMap<String, PrivilegeGroupRecord>,
}

impl AuthState {
    /// Applies a put of `key` (ignoring keys that are not credential records).
    pub fn apply_put(
        &mut self,
        keys: &AuthKeys,
        key: &str,
        value: &[u8],
        revision: i64,
    ) -> Result<(), String> {
        let Some(rest) = key.strip_prefix(keys.prefix()) else {
            return Ok(());
        };
        let bad = |e: prost::DecodeError| format!("{key}: {e}");
        if let Some(name) = rest.strip_prefix("users/") {
            let u = UserRecord::decode(value).map_err(bad)?;
            self.users.insert(name.to_string(), (u, revision));
        } else if let Some(name) = rest.strip_prefix("roles/") {
            self.roles
                .insert(name.to_string(), RoleRecord::decode(value).map_err(bad)?);
        } else if let Some(pair) = rest.strip_prefix("user-role/") {
            if let Some((user, role)) = pair.split_once('/') {
                self.memberships
                    .insert(key.to_string(), (user.to_string(), role.to_string()));
            }
        } else if rest.starts_with("grants/") {
            self.grants
                .insert(key.to_string(), GrantRecord::decode(value).map_err(bad)?);
        } else if let Some(name) = rest.strip_prefix("privilege-groups/") {
            self.groups.insert(
                name.to_string(),
                PrivilegeGroupRecord::decode(value).map_err(bad)?,
            );
        }
        Ok(())
    }

    /// Applies a delete of `key`.
    pub fn apply_delete(&mut self, keys: &AuthKeys, key: &str) {
        let Some(rest) = key.strip_prefix(keys.prefix()) else {
            return;
        };
        if let Some(name) = rest.strip_prefix("users/") {
            self.users.remove(name);
        } else if let Some(name) = rest.strip_prefix("roles/") {
            self.roles.remove(name);
        } else if rest.starts_with("user-role/") {
            self.memberships.remove(key);
        } else if rest.starts_with("grants/") {
            self.grants.remove(key);
        } else if let Some(name) = rest.strip_prefix("privilege-groups/") {
            self.groups.remove(name);
        }
    }

    /// A user's record and the etcd revision it was written at.
    pub fn user(&self, name: &str) -> Option<(&UserRecord, i64)> {
        self.users.get(name).map(|(u, rev)| (u, *rev))
    }

    /// Every user name, sorted.
    pub fn user_names(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// Whether role `name` exists (the built-in ones always do).
    pub fn has_role(&self, name: &str) -> bool {
        name == ROLE_ADMIN || name == ROLE_PUBLIC || self.roles.contains_key(name)
    }

    /// Every role name: the built-in ones first, then the stored ones, sorted.
    pub fn role_names(&self) -> Vec<String> {
        let mut v = vec![ROLE_ADMIN.to_string(), ROLE_PUBLIC.to_string()];
        v.extend(self.roles.keys().cloned());
        v
    }

    /// How many roles were created (the built-in ones not counted).
    pub fn created_roles(&self) -> usize {
        self.roles.len()
    }

    /// The roles granted to `user` (without the implicit `public`), sorted.
    pub fn roles_of(&self, user: &str) -> BTreeSet<String> {
        self.memberships
            .values()
            .filter(|(u, _)| u == user)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The users granted `role`, sorted.
    pub fn users_of(&self, role: &str) -> BTreeSet<String> {
        self.memberships
            .values()
            .filter(|(_, r)| r == role)
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// The grants of `role`.
    pub fn grants_of<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a GrantRecord> + 'a {
        self.grants.values().filter(move |g| g.role == role)
    }

    /// A user-defined privilege group.
    pub fn group(&self, name: &str) -> Option<&PrivilegeGroupRecord> {
        self.groups.get(name)
    }

    /// Every user-defined privilege group.
    pub fn groups(&self) -> impl Iterator<Item = &PrivilegeGroupRecord> {
        self.groups.values()
    }
}

impl super::follower::Mirror for AuthState {
    type Keys = AuthKeys;

    fn prefix(keys: &AuthKeys) -> &str {
        keys.prefix()
    }

    fn apply_put(
        &mut self,
        keys: &AuthKeys,
        key: &str,
        value: &[u8],
        revision: i64,
    ) -> Result<(), String> {
        AuthState::apply_put(self, keys, key, value, revision)
    }

    fn apply_delete(&mut self, keys: &AuthKeys, key: &str) {
        AuthState::apply_delete(self, keys, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_keys() {
        let keys = AuthKeys::new("by-dev/meta");
        let mut s = AuthState::default();
        let u = UserRecord {
            name: "alice".into(),
            encrypted_password: "$2b$10$x".into(),
            ..Default::default()
        };
        s.apply_put(&keys, &keys.user("alice"), &u.encode_to_vec(), 7)
            .unwrap();
        s.apply_put(&keys, &keys.user_role("alice", "reader"), b"reader", 8)
            .unwrap();
        let g = GrantRecord {
            role: "reader".into(),
            db_name: "default".into(),
            object_type: "Collection".into(),
            object_name: "A".into(),
            privilege: "Search".into(),
            grantor: "root".into(),
        };
        s.apply_put(&keys, &keys.grant(&g), &g.encode_to_vec(), 9)
            .unwrap();
        assert_eq!(
            s.user("alice").map(|(u, r)| (u.name.as_str(), r)),
            Some(("alice", 7))
        );
        assert!(s.roles_of("alice").contains("reader"));
        assert_eq!(s.grants_of("reader").count(), 1);
        s.apply_delete(&keys, &keys.grant(&g));
        s.apply_delete(&keys, &keys.user_role("alice", "reader"));
        assert_eq!(s.grants_of("reader").count(), 0);
        assert!(s.roles_of("alice").is_empty());
        // Keys outside the prefix are not records.
        s.apply_put(&keys, "by-dev/meta/root-coord/names/x", b"1", 1)
            .unwrap();
        assert_eq!(s.user_names(), vec!["alice".to_string()]);
    }
}
