//! Collection properties Milvus gives meaning to, and the checks of their values
//! (`AlterCollection`, `CreateCollection`).

use crate::proto::common::{KeyValuePair, Status};
use crate::status::{code, error};

/// The property that makes rows expire: rows written more than this many seconds ago
/// are invisible to search and query, and segments holding only such rows are dropped.
/// Absent, 0 or negative: rows never expire (Milvus's `common.entityExpiration` of -1).
pub const TTL_KEY: &str = "collection.ttl.seconds";

/// The collection's TTL from its properties; None when rows never expire.
pub fn ttl(properties: &[KeyValuePair]) -> Option<std::time::Duration> {
    let v = properties.iter().rev().find(|kv| kv.key == TTL_KEY)?;
    match v.value.trim().parse::<i64>() {
        Ok(s) if s > 0 => Some(std::time::Duration::from_secs(s as u64)),
        _ => None,
    }
}

/// The hybrid timestamp before which rows of a collection with `ttl` are expired at
/// wall-clock time `now_ms` (0: none are).
pub fn expire_before(ttl: Option<std::time::Duration>, now_ms: u64) -> u64 {
    match ttl {
        // Hybrid timestamps: physical milliseconds above 18 logical bits.
        Some(t) => now_ms.saturating_sub(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)) << 18,
        None => 0,
    }
}
/// Whether automatic compaction plans the collection's segments (Milvus's
/// `collection.autocompaction.enabled`; absent: `dataCoord.compaction.enableAutoCompaction`
/// decides alone). A manual `compact` plans them either way.
pub const AUTO_COMPACTION_KEY: &str = "collection.autocompaction.enabled";

/// Whether the collection's properties leave automatic compaction on: absent, or the last
/// value set reads as true. Values are checked when set ([`check_properties`]); one stored
/// before that check that does not read as a boolean turns it off, as Milvus's datacoord
/// skips a collection whose value it cannot parse.
pub fn auto_compaction(properties: &[KeyValuePair]) -> bool {
    properties
        .iter()
        .rev()
        .find(|kv| kv.key == AUTO_COMPACTION_KEY)
        .is_none_or(|kv| parse_bool(kv.value.trim()) == Some(true))
}

/// Keys that change how a loaded collection is held in memory: Milvus refuses to change
/// them while it is loaded (the proxy checks, it knows the loads).
pub const MMAP_KEY: &str = "mmap.enabled";
/// See [`MMAP_KEY`].
pub const LAZYLOAD_KEY: &str = "lazyload.enabled";

/// Index properties `AlterIndex` may set or remove (Milvus's configurable index
/// properties).
pub const INDEX_PROPERTIES: [&str; 2] = [MMAP_KEY, OFFSET_CACHE_KEY];
/// See [`INDEX_PROPERTIES`]: BITMAP indexes only.
pub const OFFSET_CACHE_KEY: &str = "indexoffsetcache.enabled";

/// A boolean as Milvus (Go's `strconv.ParseBool`) reads one: 1, t, T, TRUE, true, True,
/// 0, f, F, FALSE, false, False.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// An invalid-parameter status (1100) in Milvus's words: `<why>: invalid parameter`.
pub fn invalid(why: String) -> Status {
    error(code::PARAMETER_INVALID, format!("{why}: invalid parameter"))
}

/// Checks properties to set: Err names the key, its value and what is expected.
pub fn check_properties(properties: &[KeyValuePair]) -> Result<(), Status> {
    for kv in properties {
        match kv.key.as_str() {
            k @ (MMAP_KEY | LAZYLOAD_KEY | AUTO_COMPACTION_KEY)
                if parse_bool(&kv.value).is_none() =>
            {
                return Err(invalid(format!(
                    "invalid {k} value: {}, expected: true, false",
                    kv.value
                )))
            }
            TTL_KEY if kv.value.trim().parse::<i64>().is_err() => {
                return Err(invalid(format!(
                    "collection TTL is not a valid positive integer: {TTL_KEY}={}",
                    kv.value
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks index properties to set on an index of type `index_type` (Milvus's messages).
pub fn check_index_properties(properties: &[KeyValuePair], index_type: &str) -> Result<(), Status> {
    for kv in properties {
        let (what, key) = match kv.key.as_str() {
            MMAP_KEY => ("mmap", MMAP_KEY),
            OFFSET_CACHE_KEY => ("offset cache", OFFSET_CACHE_KEY),
            _ => continue,
        };
        let Some(on) = parse_bool(&kv.value) else {
            return Err(invalid(format!(
                "invalid {what} index params: invalid {key} value: {}, expected: true, false",
                kv.value
            )));
        };
        if on && key == OFFSET_CACHE_KEY && index_type != "BITMAP" {
            return Err(invalid(format!(
                "invalid {what} index params: only bitmap index support {key}, index type is {index_type}"
            )));
        }
    }
    Ok(())
}

/// Field properties `AlterCollectionField` may set (Milvus 2.5); only [`MMAP_KEY`] may be
/// removed. `mmap_enabled` is read as [`MMAP_KEY`].
pub const FIELD_PROPERTIES: [&str; 3] = ["max_length", MMAP_KEY, "max_capacity"];

/// A field property key as stored (`mmap_enabled` is `mmap.enabled`).
pub fn field_key(key: &str) -> &str {
    if key == "mmap_enabled" {
        MMAP_KEY
    } else {
        key
    }
}

/// Checks the keys of an `AlterCollectionField` (before the field is looked at):
/// Err in Milvus's words.
pub fn check_field_keys(set: &[KeyValuePair], delete: &[String]) -> Result<(), Status> {
    for kv in set {
        if !FIELD_PROPERTIES.contains(&field_key(&kv.key)) {
            return Err(invalid(format!(
                "{} does not allow update in collection field param",
                kv.key
            )));
        }
    }
    for k in delete {
        if field_key(k) != MMAP_KEY {
            return Err(invalid(format!(
                "{k} is not allowed to drop in collection field param"
            )));
        }
    }
    Ok(())
}

/// Checks a value of an `AlterCollectionField` against the field: `is_string` (VARCHAR
/// or an array of VARCHAR) for `max_length`, `is_array` for `max_capacity`.
pub fn check_field_value(
    field: &str,
    kv: &KeyValuePair,
    is_string: bool,
    is_array: bool,
    max_varchar: i64,
) -> Result<(), Status> {
    match field_key(&kv.key) {
        "max_length" => {
            if !is_string {
                return Err(invalid(format!(
                    "{field} can not modify the maxlength for non-string types"
                )));
            }
            let v: i64 = kv.value.trim().parse().map_err(|_| {
                invalid(format!(
                    "the value for max_length of field {field} must be an integer"
                ))
            })?;
            if v <= 0 || v > max_varchar {
                return Err(invalid(format!(
                    "{v} exceeds the maximum allowed value {max_varchar}"
                )));
            }
        }
        "max_capacity" => {
            if !is_array {
                return Err(invalid(format!(
                    "{field} can not modify the maxcapacity for non-array types"
                )));
            }
            let v: i64 = kv.value.trim().parse().map_err(|_| {
                invalid(format!(
                    "the value for max_capacity of field {field} must be an integer"
                ))
            })?;
            if !(1..=4096).contains(&v) {
                return Err(invalid(format!(
                    "the maximum capacity specified for a Array should be in (0, 4096], got {v}"
                )));
            }
        }
        _ => {
            if parse_bool(&kv.value).is_none() {
                return Err(invalid(format!(
                    "invalid {MMAP_KEY} value: {}, expected: true, false",
                    kv.value
                )));
            }
        }
    }
    Ok(())
}
