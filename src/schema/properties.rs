//! Collection properties Milvus gives meaning to, and the checks of their values
//! (`AlterCollection`, `CreateCollection`).

use crate::proto::common::{KeyValuePair, Status};
use crate::status::{code, error};

/// The property that would make rows expire.
pub const TTL_KEY: &str = "collection.ttl.seconds";
/// Keys that change how a loaded collection is held in memory: Milvus refuses to change
/// them while it is loaded (the proxy checks, it knows the loads).
pub const MMAP_KEY: &str = "mmap.enabled";
/// See [`MMAP_KEY`].
pub const LAZYLOAD_KEY: &str = "lazyload.enabled";

/// An invalid-parameter status (1100) in Milvus's words: `<why>: invalid parameter`.
pub fn invalid(why: String) -> Status {
    error(code::PARAMETER_INVALID, format!("{why}: invalid parameter"))
}

/// Checks properties to set: Err names the key, its value and what is expected.
pub fn check_properties(properties: &[KeyValuePair]) -> Result<(), Status> {
    for kv in properties {
        match kv.key.as_str() {
            k @ (MMAP_KEY | LAZYLOAD_KEY)
                if !matches!(kv.value.to_ascii_lowercase().as_str(), "true" | "false") =>
            {
                return Err(invalid(format!(
                    "invalid {k} value: {}, expected: true, false",
                    kv.value
                )))
            }
            TTL_KEY => {
                return Err(error(
                    code::PARAMETER_INVALID,
                    format!(
                        "{TTL_KEY} is not supported by this Milvus-compatible cluster yet: rows would not expire"
                    ),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}
