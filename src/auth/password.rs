//! Password and name rules, hashing and verification.
//!
//! Hashes are bcrypt at cost 10 (Milvus's `bcrypt.DefaultCost`): about 50-100 ms a
//! check on purpose, so callers run [`verify`] off the async runtime and remember the
//! outcome ([`Verified`]).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::config::SecurityConfig;
use crate::proto::common::Status;
use crate::status::{code, error};

/// bcrypt's work factor, as Milvus.
pub const COST: u32 = 10;

/// The bcrypt hash of `password`.
pub fn hash(password: &str) -> Result<String, String> {
    bcrypt::hash(password, COST).map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches `hashed` (false for a hash that does not parse).
pub fn verify(password: &str, hashed: &str) -> bool {
    bcrypt::verify(password, hashed).unwrap_or(false)
}

/// Decodes a base64 field as pymilvus sends passwords (`what` names it in the error).
pub fn decode_base64(text: &str, what: &str) -> Result<String, Status> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            error(
                code::PARAMETER_INVALID,
                format!("decode {what} fail: expected base64 of UTF-8 text"),
            )
        })
}

fn invalid(msg: String) -> Status {
    error(code::PARAMETER_INVALID, msg)
}

/// Milvus's user name rule: 1 to `proxy.maxUsernameLength` characters, a letter first,
/// then letters, digits or `_`.
pub fn check_username(name: &str, cfg: &SecurityConfig) -> Result<(), Status> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("username must be not empty".into()));
    }
    let max = cfg.max_username_length;
    if name.len() > max {
        return Err(invalid(format!(
            "invalid username {name} with length {}, the length of username must be less than {max}",
            name.len()
        )));
    }
    let first = name.chars().next().unwrap_or(' ');
    if !first.is_ascii_alphabetic() {
        return Err(invalid(format!(
            "invalid user name {name}, the first character must be a letter, but got {first}"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(invalid(format!(
            "invalid user name {name}, username must contain only numbers, letters and underscores, but got {c}"
        )));
    }
    Ok(())
}

/// Milvus's password rule: `proxy.minPasswordLength` to `proxy.maxPasswordLength` bytes.
pub fn check_password(password: &str, cfg: &SecurityConfig) -> Result<(), Status> {
    let (min, max) = (cfg.min_password_length, cfg.max_password_length);
    if password.len() < min || password.len() > max {
        return Err(invalid(format!(
            "invalid password length: invalid parameter[{} out of range {min} <= value <= {max}]",
            password.len()
        )));
    }
    // bcrypt reads 72 bytes; Milvus refuses longer passwords when it hashes them.
    if password.len() > 72 {
        return Err(error(
            code::UNEXPECTED,
            "encrypt password failed: bcrypt: password length exceeds 72 bytes",
        ));
    }
    Ok(())
}

/// Milvus's role and privilege group name rule: 1 to 255 characters, a letter or `_`
/// first, then letters, digits, `_` or `$` (`what`: "role" or "privilege group").
pub fn check_role_name(name: &str, what: &str) -> Result<(), Status> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid(format!("{what} name must be not empty")));
    }
    if name.len() > 255 {
        return Err(invalid(format!(
            "the length of {what} name must be not greater than limit: invalid parameter[{} out of range 0 <= value <= 255]",
            name.len()
        )));
    }
    let first = name.chars().next().unwrap_or(' ');
    if !(first == '_' || first.is_ascii_alphabetic()) {
        return Err(invalid(format!(
            "the first character of {what} name must be an underscore or letter: invalid parameter[expected=_ or a letter][actual={first}]"
        )));
    }
    if let Some((i, c)) = name
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '$')))
    {
        return Err(invalid(format!(
            "{what} name can only contain numbers, letters, dollars and underscores, found {c} at {i}"
        )));
    }
    Ok(())
}

/// Passwords already checked against a user record: user -> (record revision, SHA-256
/// of the password). Holds one entry per user.
#[derive(Default)]
pub struct Verified {
    seen: Mutex<HashMap<String, (i64, [u8; 32])>>,
}

fn digest(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0]);
    h.update(password.as_bytes());
    h.finalize().into()
}

impl Verified {
    /// Whether `password` was verified for `user` against the record at `revision`.
    pub fn knows(&self, user: &str, password: &str, revision: i64) -> bool {
        let seen = self.seen.lock().expect("verified lock");
        seen.get(user)
            .is_some_and(|(rev, d)| *rev == revision && *d == digest(user, password))
    }

    /// Remembers a password verified against the record at `revision`.
    pub fn remember(&self, user: &str, password: &str, revision: i64) {
        self.seen
            .lock()
            .expect("verified lock")
            .insert(user.to_string(), (revision, digest(user, password)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SecurityConfig {
        crate::config::load(None, &[]).unwrap().config.security
    }

    #[test]
    fn names_and_passwords_follow_milvus_rules() {
        let c = cfg();
        assert!(check_username("alice_1", &c).is_ok());
        for bad in ["", "1abc", "a b", "ab-c", &"a".repeat(33)] {
            assert!(check_username(bad, &c).is_err(), "{bad:?}");
        }
        assert!(check_password("123456", &c).is_ok());
        let e = check_password("12345", &c).unwrap_err();
        assert!(
            e.reason.contains("5 out of range 6 <= value <= 256"),
            "{}",
            e.reason
        );
        assert!(check_password(&"x".repeat(257), &c).is_err());
        assert_eq!(
            check_password(&"x".repeat(73), &c).unwrap_err().code,
            code::UNEXPECTED
        );
        assert!(check_password(&"x".repeat(72), &c).is_ok());
        assert!(check_role_name("_r$1", "role").is_ok());
        assert!(check_role_name("1r", "role").is_err());
        assert!(check_role_name("r-1", "role").is_err());
    }

    #[test]
    fn hashes_verify_and_verified_passwords_are_tied_to_a_revision() {
        let h = hash("Milvus").unwrap();
        assert!(h.starts_with("$2"));
        assert!(verify("Milvus", &h));
        assert!(!verify("milvus", &h));
        assert!(!verify("Milvus", "not a hash"));
        let v = Verified::default();
        v.remember("root", "Milvus", 5);
        assert!(v.knows("root", "Milvus", 5));
        assert!(!v.knows("root", "Milvus", 6));
        assert!(!v.knows("root", "other", 5));
        assert!(!v.knows("alice", "Milvus", 5));
        assert_eq!(
            decode_base64("TWlsdnVz", "password").unwrap(),
            "Milvus".to_string()
        );
        assert!(decode_base64("***", "password").is_err());
    }
}
