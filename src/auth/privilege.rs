//! Which privilege each client call needs, and whether a user holds it.
//!
//! The table is Milvus 2.5's (`privilege_ext_obj` options of milvus-proto's
//! `milvus.proto`): a call needs one privilege on one object type (Global, Collection or
//! User) and object name (a collection, a user, or `*` for Global) in the database the
//! call is about. Calls without an entry (Connect, HasCollection, ShowCollections,
//! segment and replica information, ...) need none beyond a verified user.
//!
//! A user holds a privilege when it is `root`, a configured super user, has the `admin`
//! role, or one of its roles (every user has `public`) has a grant whose object type,
//! database (or `*`), object name (or `*`) and privilege (or `*`, or a privilege group
//! containing it) match.

use std::collections::BTreeSet;

use crate::meta::auth::{AuthState, ROLE_ADMIN, ROLE_PUBLIC, ROOT};
use crate::proto::milvus as pb;
use crate::proto::rootcoord::GrantRecord;

/// Milvus's object types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// The cluster or a database as a whole.
    Global,
    /// One collection.
    Collection,
    /// One user.
    User,
}

impl ObjectType {
    /// Its name as clients send it.
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Global => "Global",
            ObjectType::Collection => "Collection",
            ObjectType::User => "User",
        }
    }

    /// The object type named `name`.
    pub fn parse(name: &str) -> Option<ObjectType> {
        [ObjectType::Global, ObjectType::Collection, ObjectType::User]
            .into_iter()
            .find(|t| t.name() == name)
    }

    /// The privileges that can be granted on this object type (besides `*` and groups).
    pub fn privileges(self) -> &'static [&'static str] {
        match self {
            ObjectType::Collection => COLLECTION_PRIVILEGES,
            ObjectType::Global => GLOBAL_PRIVILEGES,
            ObjectType::User => USER_PRIVILEGES,
        }
    }
}

/// Privileges on a collection.
pub const COLLECTION_PRIVILEGES: &[&str] = &[
    "Load",
    "Release",
    "Compaction",
    "Insert",
    "Delete",
    "Upsert",
    "GetStatistics",
    "CreateIndex",
    "IndexDetail",
    "DropIndex",
    "Search",
    "Query",
    "Flush",
    "GetFlushState",
    "LoadBalance",
    "Import",
    "GetLoadingProgress",
    "GetLoadState",
    "CreatePartition",
    "DropPartition",
    "ShowPartitions",
    "HasPartition",
];

/// Privileges on the cluster or a database.
pub const GLOBAL_PRIVILEGES: &[&str] = &[
    "CreateCollection",
    "DropCollection",
    "DescribeCollection",
    "ShowCollections",
    "RenameCollection",
    "FlushAll",
    "CreateOwnership",
    "DropOwnership",
    "SelectOwnership",
    "ManageOwnership",
    "CreateResourceGroup",
    "DropResourceGroup",
    "DescribeResourceGroup",
    "ListResourceGroups",
    "TransferNode",
    "TransferReplica",
    "UpdateResourceGroups",
    "CreateDatabase",
    "DropDatabase",
    "ListDatabases",
    "AlterDatabase",
    "DescribeDatabase",
    "CreateAlias",
    "DropAlias",
    "DescribeAlias",
    "ListAliases",
    "BackupRBAC",
    "RestoreRBAC",
    "CreatePrivilegeGroup",
    "DropPrivilegeGroup",
    "ListPrivilegeGroups",
    "OperatePrivilegeGroup",
];

/// Privileges on a user.
pub const USER_PRIVILEGES: &[&str] = &["UpdateUser", "SelectUser"];

const COLLECTION_READ_ONLY: &[&str] = &[
    "Query",
    "Search",
    "IndexDetail",
    "GetFlushState",
    "GetLoadState",
    "GetLoadingProgress",
    "HasPartition",
    "ShowPartitions",
    "DescribeCollection",
    "DescribeAlias",
    "GetStatistics",
    "ListAliases",
];
const COLLECTION_READ_WRITE: &[&str] = &[
    "Load",
    "Release",
    "Insert",
    "Delete",
    "Upsert",
    "Import",
    "Flush",
    "Compaction",
    "LoadBalance",
    "CreateIndex",
    "DropIndex",
    "CreatePartition",
    "DropPartition",
];
const COLLECTION_ADMIN: &[&str] = &["CreateAlias", "DropAlias"];
const DATABASE_READ_ONLY: &[&str] = &["ShowCollections", "DescribeDatabase"];
const DATABASE_READ_WRITE: &[&str] = &["AlterDatabase"];
const DATABASE_ADMIN: &[&str] = &["CreateCollection", "DropCollection"];
const CLUSTER_READ_ONLY: &[&str] = &[
    "ListDatabases",
    "SelectOwnership",
    "SelectUser",
    "DescribeResourceGroup",
    "ListResourceGroups",
    "ListPrivilegeGroups",
];
const CLUSTER_READ_WRITE: &[&str] = &[
    "FlushAll",
    "TransferNode",
    "TransferReplica",
    "UpdateResourceGroups",
];
const CLUSTER_ADMIN: &[&str] = &[
    "BackupRBAC",
    "RestoreRBAC",
    "CreateDatabase",
    "DropDatabase",
    "CreateOwnership",
    "DropOwnership",
    "ManageOwnership",
    "CreateResourceGroup",
    "DropResourceGroup",
    "UpdateUser",
    "RenameCollection",
    "CreatePrivilegeGroup",
    "DropPrivilegeGroup",
    "OperatePrivilegeGroup",
];

/// Milvus 2.5's built-in privilege groups: name, the object type a grant of it is
/// stored under, and its layers (each group holds its own layer and those before it).
const BUILT_IN_GROUPS: &[(&str, ObjectType, &[&[&str]])] = &[
    (
        "CollectionReadOnly",
        ObjectType::Collection,
        &[COLLECTION_READ_ONLY],
    ),
    (
        "CollectionReadWrite",
        ObjectType::Collection,
        &[COLLECTION_READ_ONLY, COLLECTION_READ_WRITE],
    ),
    (
        "CollectionAdmin",
        ObjectType::Collection,
        &[
            COLLECTION_READ_ONLY,
            COLLECTION_READ_WRITE,
            COLLECTION_ADMIN,
        ],
    ),
    (
        "DatabaseReadOnly",
        ObjectType::Global,
        &[DATABASE_READ_ONLY],
    ),
    (
        "DatabaseReadWrite",
        ObjectType::Global,
        &[DATABASE_READ_ONLY, DATABASE_READ_WRITE],
    ),
    (
        "DatabaseAdmin",
        ObjectType::Global,
        &[DATABASE_READ_ONLY, DATABASE_READ_WRITE, DATABASE_ADMIN],
    ),
    ("ClusterReadOnly", ObjectType::Global, &[CLUSTER_READ_ONLY]),
    (
        "ClusterReadWrite",
        ObjectType::Global,
        &[CLUSTER_READ_ONLY, CLUSTER_READ_WRITE],
    ),
    (
        "ClusterAdmin",
        ObjectType::Global,
        &[CLUSTER_READ_ONLY, CLUSTER_READ_WRITE, CLUSTER_ADMIN],
    ),
];

/// The built-in privilege group `name`: the object type its grants are stored under and
/// its privileges.
pub fn built_in_group(name: &str) -> Option<(ObjectType, Vec<&'static str>)> {
    BUILT_IN_GROUPS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, layers)| (*t, layers.iter().flat_map(|l| l.iter().copied()).collect()))
}

/// Every built-in group's name with its privileges.
pub fn built_in_groups() -> Vec<(&'static str, Vec<&'static str>)> {
    BUILT_IN_GROUPS
        .iter()
        .map(|(n, _, layers)| (*n, layers.iter().flat_map(|l| l.iter().copied()).collect()))
        .collect()
}

/// Whether `name` is any privilege of any object type.
pub fn is_privilege(name: &str) -> bool {
    [ObjectType::Global, ObjectType::Collection, ObjectType::User]
        .iter()
        .any(|t| t.privileges().contains(&name))
}

/// What one call needs: `privilege` on each of `names` of type `object` in `db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The object type.
    pub object: ObjectType,
    /// The privilege's name.
    pub privilege: &'static str,
    /// The objects (`*` for Global).
    pub names: Vec<String>,
    /// The database the call is about (empty: the connection's database).
    pub db: String,
}

/// A request with an entry in the privilege table.
pub trait Guarded {
    /// What it needs.
    fn need(&self) -> Need;
}

macro_rules! needs {
    ($($t:ident: $obj:ident $p:literal, |$r:ident| ($names:expr, $db:expr);)*) => {$(
        impl Guarded for pb::$t {
            fn need(&self) -> Need {
                let $r = self;
                Need {
                    object: ObjectType::$obj,
                    privilege: $p,
                    names: $names,
                    db: $db,
                }
            }
        }
    )*};
}

fn any() -> Vec<String> {
    vec!["*".to_string()]
}

fn one(name: &str) -> Vec<String> {
    vec![name.to_string()]
}

needs! {
    CreateAliasRequest: Global "CreateAlias", |r| (any(), r.db_name.clone());
    DropAliasRequest: Global "DropAlias", |r| (any(), r.db_name.clone());
    AlterAliasRequest: Global "CreateAlias", |r| (any(), r.db_name.clone());
    DescribeAliasRequest: Global "DescribeAlias", |r| (any(), r.db_name.clone());
    ListAliasesRequest: Global "ListAliases", |r| (any(), r.db_name.clone());
    CreateCollectionRequest: Global "CreateCollection", |r| (any(), r.db_name.clone());
    DropCollectionRequest: Global "DropCollection", |r| (any(), r.db_name.clone());
    AlterCollectionRequest: Global "CreateCollection", |r| (any(), r.db_name.clone());
    AlterCollectionFieldRequest: Global "CreateCollection", |r| (any(), r.db_name.clone());
    DescribeCollectionRequest: Global "DescribeCollection", |r| (any(), r.db_name.clone());
    RenameCollectionRequest: Global "RenameCollection", |r| (any(), r.db_name.clone());
    LoadCollectionRequest: Collection "Load", |r| (one(&r.collection_name), r.db_name.clone());
    ReleaseCollectionRequest: Collection "Release", |r| (one(&r.collection_name), r.db_name.clone());
    GetCollectionStatisticsRequest: Collection "GetStatistics", |r| (one(&r.collection_name), r.db_name.clone());
    CreatePartitionRequest: Collection "CreatePartition", |r| (one(&r.collection_name), r.db_name.clone());
    DropPartitionRequest: Collection "DropPartition", |r| (one(&r.collection_name), r.db_name.clone());
    HasPartitionRequest: Collection "HasPartition", |r| (one(&r.collection_name), r.db_name.clone());
    LoadPartitionsRequest: Collection "Load", |r| (one(&r.collection_name), r.db_name.clone());
    ReleasePartitionsRequest: Collection "Release", |r| (one(&r.collection_name), r.db_name.clone());
    ShowPartitionsRequest: Collection "ShowPartitions", |r| (one(&r.collection_name), r.db_name.clone());
    CreateIndexRequest: Collection "CreateIndex", |r| (one(&r.collection_name), r.db_name.clone());
    AlterIndexRequest: Collection "CreateIndex", |r| (one(&r.collection_name), r.db_name.clone());
    DescribeIndexRequest: Collection "IndexDetail", |r| (one(&r.collection_name), r.db_name.clone());
    GetIndexStatisticsRequest: Collection "IndexDetail", |r| (one(&r.collection_name), r.db_name.clone());
    GetIndexBuildProgressRequest: Collection "IndexDetail", |r| (one(&r.collection_name), String::new());
    GetIndexStateRequest: Collection "IndexDetail", |r| (one(&r.collection_name), String::new());
    DropIndexRequest: Collection "DropIndex", |r| (one(&r.collection_name), r.db_name.clone());
    InsertRequest: Collection "Insert", |r| (one(&r.collection_name), r.db_name.clone());
    UpsertRequest: Collection "Upsert", |r| (one(&r.collection_name), r.db_name.clone());
    DeleteRequest: Collection "Delete", |r| (one(&r.collection_name), r.db_name.clone());
    SearchRequest: Collection "Search", |r| (one(&r.collection_name), r.db_name.clone());
    HybridSearchRequest: Collection "Search", |r| (one(&r.collection_name), r.db_name.clone());
    QueryRequest: Collection "Query", |r| (one(&r.collection_name), r.db_name.clone());
    FlushRequest: Collection "Flush", |r| (r.collection_names.clone(), r.db_name.clone());
    FlushAllRequest: Global "FlushAll", |r| (any(), r.db_name.clone());
    ManualCompactionRequest: Collection "Compaction", |r| (one(&r.collection_name), r.db_name.clone());
    GetFlushStateRequest: Collection "GetFlushState", |r| (one(&r.collection_name), r.db_name.clone());
    ImportRequest: Collection "Import", |r| (one(&r.collection_name), r.db_name.clone());
    GetLoadingProgressRequest: Collection "GetLoadState", |r| (one(&r.collection_name), r.db_name.clone());
    GetLoadStateRequest: Collection "GetLoadState", |r| (one(&r.collection_name), r.db_name.clone());
    CreateCredentialRequest: Global "CreateOwnership", |_r| (any(), String::new());
    UpdateCredentialRequest: User "UpdateUser", |r| (one(&r.username), String::new());
    DeleteCredentialRequest: Global "DropOwnership", |_r| (any(), String::new());
    ListCredUsersRequest: Global "SelectOwnership", |_r| (any(), String::new());
    CreateRoleRequest: Global "CreateOwnership", |_r| (any(), String::new());
    DropRoleRequest: Global "DropOwnership", |_r| (any(), String::new());
    OperateUserRoleRequest: Global "ManageOwnership", |_r| (any(), String::new());
    SelectRoleRequest: Global "SelectOwnership", |_r| (any(), String::new());
    SelectUserRequest: User "SelectUser", |r| (one(r.user.as_ref().map_or("", |u| u.name.as_str())), String::new());
    SelectGrantRequest: Global "SelectOwnership", |_r| (any(), String::new());
    OperatePrivilegeRequest: Global "ManageOwnership", |_r| (any(), String::new());
    OperatePrivilegeV2Request: Global "ManageOwnership", |_r| (any(), String::new());
    CreatePrivilegeGroupRequest: Global "CreatePrivilegeGroup", |_r| (any(), String::new());
    DropPrivilegeGroupRequest: Global "DropPrivilegeGroup", |_r| (any(), String::new());
    ListPrivilegeGroupsRequest: Global "ListPrivilegeGroups", |_r| (any(), String::new());
    OperatePrivilegeGroupRequest: Global "OperatePrivilegeGroup", |_r| (any(), String::new());
    CreateResourceGroupRequest: Global "CreateResourceGroup", |_r| (any(), String::new());
    UpdateResourceGroupsRequest: Global "UpdateResourceGroups", |_r| (any(), String::new());
    DropResourceGroupRequest: Global "DropResourceGroup", |_r| (any(), String::new());
    TransferNodeRequest: Global "TransferNode", |_r| (any(), String::new());
    TransferReplicaRequest: Global "TransferReplica", |_r| (any(), String::new());
    ListResourceGroupsRequest: Global "ListResourceGroups", |_r| (any(), String::new());
    DescribeResourceGroupRequest: Global "DescribeResourceGroup", |_r| (any(), String::new());
    CreateDatabaseRequest: Global "CreateDatabase", |_r| (any(), String::new());
    DropDatabaseRequest: Global "DropDatabase", |_r| (any(), String::new());
    AlterDatabaseRequest: Global "AlterDatabase", |r| (any(), r.db_name.clone());
    DescribeDatabaseRequest: Global "DescribeDatabase", |r| (any(), r.db_name.clone());
}

/// The grants every user has through the built-in `public` role, in every database, as
/// Milvus's rootcoord writes them: see collection schemas, list collections, see
/// index details.
pub fn public_grants() -> &'static [GrantRecord] {
    static GRANTS: std::sync::LazyLock<Vec<GrantRecord>> = std::sync::LazyLock::new(|| {
        [
            ("Global", "DescribeCollection"),
            ("Global", "ShowCollections"),
            ("Collection", "IndexDetail"),
        ]
        .into_iter()
        .map(|(ty, p)| GrantRecord {
            role: ROLE_PUBLIC.to_string(),
            db_name: "*".to_string(),
            object_type: ty.to_string(),
            object_name: "*".to_string(),
            privilege: p.to_string(),
            grantor: ROOT.to_string(),
        })
        .collect()
    });
    &GRANTS
}

/// The roles of `user` that privilege checks read, or None when every check passes
/// (root, a configured super user, or a holder of `admin`).
fn checked_roles(
    state: &AuthState,
    user: &str,
    super_users: &[String],
) -> Option<BTreeSet<String>> {
    if is_super(user, super_users) {
        return None;
    }
    let roles = state.roles_of(user);
    (!roles.contains(ROLE_ADMIN)).then_some(roles)
}

/// Whether `user` is one every check passes: root or a configured super user.
pub fn is_super(user: &str, super_users: &[String]) -> bool {
    user == ROOT || super_users.iter().any(|u| u == user)
}

/// Whether `user` may do what `need` says in database `db` (the need's own database
/// already resolved).
pub fn permits(
    state: &AuthState,
    user: &str,
    super_users: &[String],
    need: &Need,
    db: &str,
) -> bool {
    let Some(mut roles) = checked_roles(state, user, super_users) else {
        return true;
    };
    roles.insert(ROLE_PUBLIC.to_string());
    !need.names.is_empty()
        && need.names.iter().all(|name| {
            public_grants()
                .iter()
                .chain(roles.iter().flat_map(|role| state.grants_of(role)))
                .any(|g| grant_covers(state, g, need.object, name, need.privilege, db))
        })
}

/// Whether ShowCollections lists collection `name` of `db` to `user`, as Milvus 2.5
/// decides: always for root, super users and `admin`; else when one of the user's own
/// roles (not the implicit `public`) has a grant on that collection (or `*`) there, or
/// `All` on the database.
pub fn sees_collection(
    state: &AuthState,
    user: &str,
    super_users: &[String],
    db: &str,
    name: &str,
) -> bool {
    let Some(roles) = checked_roles(state, user, super_users) else {
        return true;
    };
    roles.iter().any(|role| {
        state.grants_of(role).any(|g| {
            let on_collection = g.object_type == ObjectType::Collection.name()
                && (g.object_name == "*" || g.object_name == name);
            let all = g.object_type == ObjectType::Global.name() && g.privilege == "All";
            (g.db_name == "*" || g.db_name == db) && (on_collection || all)
        })
    })
}

fn grant_covers(
    state: &AuthState,
    g: &GrantRecord,
    object: ObjectType,
    name: &str,
    privilege: &str,
    db: &str,
) -> bool {
    if !(g.db_name == "*" || g.db_name == db) {
        return false;
    }
    // `All` on Global: every privilege on every object of the database.
    if g.object_type == ObjectType::Global.name() && g.privilege == "All" {
        return true;
    }
    if g.privilege == privilege || g.privilege == "*" {
        return g.object_type == object.name() && (g.object_name == "*" || g.object_name == name);
    }
    // A group grant covers its members whatever their object type: a collection-level
    // group on one collection, a database or cluster group on every object.
    let members: Vec<String> = match built_in_group(&g.privilege) {
        Some((_, m)) => m.iter().map(|s| s.to_string()).collect(),
        None => match state.group(&g.privilege) {
            Some(grp) => grp.privileges.clone(),
            None => return false,
        },
    };
    if !members.iter().any(|m| m == privilege) {
        return false;
    }
    match object {
        ObjectType::Collection => g.object_name == "*" || g.object_name == name,
        ObjectType::Global | ObjectType::User => g.object_name == "*",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::auth::AuthKeys;
    use prost::Message;

    fn state(grants: &[(&str, &str, &str, &str, &str)], members: &[(&str, &str)]) -> AuthState {
        let keys = AuthKeys::new("m");
        let mut s = AuthState::default();
        for (role, db, ty, name, p) in grants {
            let g = GrantRecord {
                role: role.to_string(),
                db_name: db.to_string(),
                object_type: ty.to_string(),
                object_name: name.to_string(),
                privilege: p.to_string(),
                grantor: "root".into(),
            };
            s.apply_put(&keys, &keys.grant(&g), &g.encode_to_vec(), 1)
                .unwrap();
        }
        for (u, r) in members {
            s.apply_put(&keys, &keys.user_role(u, r), r.as_bytes(), 1)
                .unwrap();
        }
        s
    }

    fn search(coll: &str) -> Need {
        pb::SearchRequest {
            collection_name: coll.into(),
            ..Default::default()
        }
        .need()
    }

    #[test]
    fn grants_decide_by_object_database_and_privilege() {
        let s = state(
            &[("reader", "default", "Collection", "A", "Search")],
            &[("alice", "reader"), ("boss", "admin")],
        );
        let none: Vec<String> = vec![];
        assert!(permits(&s, "alice", &none, &search("A"), "default"));
        assert!(!permits(&s, "alice", &none, &search("B"), "default"));
        assert!(!permits(&s, "alice", &none, &search("A"), "other"));
        let insert = pb::InsertRequest {
            collection_name: "A".into(),
            ..Default::default()
        }
        .need();
        assert!(!permits(&s, "alice", &none, &insert, "default"));
        assert!(!permits(&s, "bob", &none, &search("A"), "default"));
        assert!(permits(&s, "boss", &none, &insert, "default"));
        assert!(permits(&s, "root", &none, &insert, "default"));
        assert!(permits(&s, "bob", &["bob".to_string()], &insert, "default"));
        assert!(sees_collection(&s, "alice", &none, "default", "A"));
        assert!(!sees_collection(&s, "alice", &none, "default", "B"));
    }

    #[test]
    fn wildcards_and_groups_cover_their_members() {
        let s = state(
            &[
                ("r1", "*", "Collection", "*", "Query"),
                ("r2", "default", "Collection", "A", "CollectionReadWrite"),
                ("r3", "default", "Global", "*", "DatabaseAdmin"),
            ],
            &[("u1", "r1"), ("u2", "r2"), ("u3", "r3")],
        );
        let none: Vec<String> = vec![];
        let query = |c: &str| {
            pb::QueryRequest {
                collection_name: c.into(),
                ..Default::default()
            }
            .need()
        };
        assert!(permits(&s, "u1", &none, &query("Z"), "db9"));
        assert!(permits(&s, "u2", &none, &query("A"), "default"));
        assert!(permits(&s, "u2", &none, &search("A"), "default"));
        assert!(!permits(&s, "u2", &none, &search("B"), "default"));
        let create = pb::CreateCollectionRequest::default().need();
        assert!(permits(&s, "u3", &none, &create, "default"));
        assert!(!permits(&s, "u2", &none, &create, "default"));
        assert!(built_in_group("CollectionAdmin")
            .unwrap()
            .1
            .contains(&"Search"));
        assert!(is_privilege("Search") && !is_privilege("Fly"));
    }
}
