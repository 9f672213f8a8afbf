//! Name rules as Milvus 2.5 checks them, with its codes and wording (clients and
//! Milvus's own test suite match on the messages): collections and aliases (code 1100),
//! partitions (65535), fields (1701), databases (802). Lengths count bytes; the first
//! character must be an ASCII letter or `_` (partitions also allow a digit), the rest
//! ASCII letters, digits and `_` (partitions also `-`).

use crate::proto::common::Status;
use crate::status::{code, error};

/// Longest name Milvus accepts (`proxy.maxNameLength`).
pub const MAX_NAME_LEN: usize = 255;

/// Keywords of the filter language a field may not be named.
const FIELD_KEYWORDS: [&str; 14] = [
    "$meta",
    "like",
    "LIKE",
    "and",
    "AND",
    "or",
    "OR",
    "not",
    "NOT",
    "in",
    "IN",
    "exists",
    "EXISTS",
    "json_contains",
];

fn letter(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

fn word(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// Why a name breaks the common rule (`what` is "collection name", "database name"...),
/// as Milvus words it, or None.
fn common_rule(name: &str, what: &str) -> Option<String> {
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "the length of a {what} must be less than {MAX_NAME_LEN} characters"
        ));
    }
    let b = name.as_bytes();
    if !(b[0] == b'_' || letter(b[0])) {
        return Some(format!(
            "the first character of a {what} must be an underscore or letter"
        ));
    }
    if !b.iter().all(|c| word(*c)) {
        return Some(format!(
            "{what} can only contain numbers, letters and underscores"
        ));
    }
    None
}

fn collection_or_alias(name: &str, kind: &str) -> Result<(), Status> {
    if name.is_empty() {
        return Err(error(
            code::PARAMETER_INVALID,
            format!("collection {kind} should not be empty: invalid parameter"),
        ));
    }
    match common_rule(name, &format!("collection {kind}")) {
        None => Ok(()),
        Some(why) => Err(error(
            code::PARAMETER_INVALID,
            format!("Invalid collection {kind}: {name}. {why}: invalid parameter"),
        )),
    }
}

/// A collection name (code 1100).
pub fn collection(name: &str) -> Result<(), Status> {
    collection_or_alias(name, "name")
}

/// An alias (code 1100).
pub fn alias(name: &str) -> Result<(), Status> {
    collection_or_alias(name, "alias")
}

/// A database name (code 802).
pub fn database(name: &str) -> Result<(), Status> {
    let why = if name.is_empty() {
        Some("database name couldn't be empty".to_string())
    } else {
        common_rule(name, "database name")
    };
    match why {
        None => Ok(()),
        Some(why) => Err(error(
            code::DATABASE_NAME_INVALID,
            format!("{why}: invalid database name[database={name}]"),
        )),
    }
}

/// A partition name (code 65535). Leading and trailing spaces are ignored; `strict`
/// (creating, dropping, writing) also checks the characters, where reads only check
/// the length and then look the name up.
pub fn partition(name: &str, strict: bool) -> Result<(), Status> {
    let n = name.trim();
    let bad = |why: &str| {
        Err(error(
            code::UNEXPECTED,
            format!("Invalid partition name: {n}. {why}"),
        ))
    };
    if n.is_empty() {
        return bad("Partition name should not be empty.");
    }
    if n.len() > MAX_NAME_LEN {
        return bad(&format!(
            "The length of a partition name must be less than {MAX_NAME_LEN} characters."
        ));
    }
    if strict {
        let b = n.as_bytes();
        if !(b[0] == b'_' || b[0].is_ascii_alphanumeric()) {
            return bad("The first character of a partition name must be an underscore or letter.");
        }
        if !b.iter().all(|c| word(*c) || *c == b'-') {
            return bad("Partition name can only contain numbers, letters and underscores.");
        }
    }
    Ok(())
}

/// A field name (code 1701). Leading and trailing spaces are ignored.
pub fn field(name: &str) -> Result<(), Status> {
    let n = name.trim();
    let bad = |why: String| {
        Err(error(
            code::FIELD_NAME_INVALID,
            format!("{why}: field name invalid[field={n}]"),
        ))
    };
    if n.is_empty() {
        return bad("field name should not be empty".into());
    }
    let invalid = format!("Invalid field name: {n}. ");
    if n.len() > MAX_NAME_LEN {
        return bad(format!(
            "{invalid}The length of a field name must be less than {MAX_NAME_LEN} characters."
        ));
    }
    let b = n.as_bytes();
    if !(b[0] == b'_' || letter(b[0])) {
        return bad(format!(
            "{invalid}The first character of a field name must be an underscore or letter."
        ));
    }
    if !b.iter().all(|c| word(*c)) {
        return bad(format!(
            "{invalid}Field name can only contain numbers, letters, and underscores."
        ));
    }
    if FIELD_KEYWORDS.contains(&n) {
        return bad(format!("{invalid}{n} is keyword in milvus."));
    }
    Ok(())
}

/// An index name (code 65535); empty means the default name.
pub fn index(name: &str) -> Result<(), Status> {
    if name.is_empty() {
        return Ok(());
    }
    let bad = |why: &str| {
        Err(error(
            code::UNEXPECTED,
            format!("Invalid index name: {name}. {why}"),
        ))
    };
    if name.len() > MAX_NAME_LEN {
        return bad("The length of a index name must be less than 255 characters.");
    }
    let b = name.as_bytes();
    if !(b[0] == b'_' || letter(b[0])) {
        return bad("The first character of a index name must be an underscore or letter.");
    }
    if !b.iter().all(|c| word(*c)) {
        return bad("Index name can only contain numbers, letters, and underscores.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<(), Status>) -> (i32, String) {
        let s = r.unwrap_err();
        (s.code, s.reason)
    }

    #[test]
    fn names_are_refused_with_milvus_s_codes_and_words() {
        assert!(collection("a_1").is_ok() && collection("_x").is_ok());
        assert!(collection(&"a".repeat(255)).is_ok());
        assert_eq!(
            reason(collection("12-s")),
            (
                1100,
                "Invalid collection name: 12-s. the first character of a collection name must be an underscore or letter: invalid parameter".into()
            )
        );
        assert!(reason(collection("a b")).1.contains(
            "Invalid collection name: a b. collection name can only contain numbers, letters and underscores"
        ));
        assert!(reason(collection(&"a".repeat(256)))
            .1
            .contains("the length of a collection name must be less than 255 characters"));
        assert!(reason(collection("中文")).1.contains("the first character"));
        assert_eq!(
            reason(collection("")).1,
            "collection name should not be empty: invalid parameter"
        );
        assert!(reason(alias("1a"))
            .1
            .contains("Invalid collection alias: 1a."));
        // Partitions: digits first and '-' are fine; spaces are trimmed.
        assert!(partition("12-s", true).is_ok() && partition(" p ", true).is_ok());
        assert_eq!(
            reason(partition("a b", true)),
            (
                65535,
                "Invalid partition name: a b. Partition name can only contain numbers, letters and underscores.".into()
            )
        );
        assert!(reason(partition("中文", true))
            .1
            .contains("Invalid partition name: 中文. The first character"));
        assert!(partition("中文", false).is_ok());
        assert!(reason(partition(" ", false))
            .1
            .contains("Partition name should not be empty."));
        assert_eq!(
            reason(database("12-s")),
            (
                802,
                "the first character of a database name must be an underscore or letter: invalid database name[database=12-s]".into()
            )
        );
        assert_eq!(
            reason(field("like")),
            (1701, "Invalid field name: like. like is keyword in milvus.: field name invalid[field=like]".into())
        );
        assert!(reason(field("1a"))
            .1
            .contains("The first character of a field name"));
        assert!(index("").is_ok());
        assert!(reason(index("a b")).1.contains("Invalid index name: a b."));
    }
}
