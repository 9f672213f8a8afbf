//! Users and role-based access control as Milvus has them: password rules and hashing
//! ([`password`]), and which privilege each client call needs and whether a user holds
//! it ([`privilege`]). The records themselves are [`crate::meta::auth`]; the rootcoord
//! writes them and the proxy enforces them.
//!
//! Invariants:
//! - A1: no password is stored or logged; etcd holds bcrypt hashes only, and a proxy
//!   remembers a verified password only as a SHA-256 digest, tied to the revision of the
//!   user record it was checked against (a changed or deleted user forgets it).
//! - A2: with `common.security.authorizationEnabled`, a MilvusService call reaches its
//!   handler only with a verified user; a call whose privilege the user's roles do not
//!   grant is refused before it reads or changes anything.

pub mod password;
pub mod privilege;

/// The verified user of a client call, put in the request's extensions by the proxy's
/// authentication layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name.
    pub user: String,
}
