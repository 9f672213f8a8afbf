//! milvus.yaml: any file text loads or is refused with a `ConfigError` (never a panic).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = milvus::config::load(Some((std::path::Path::new("milvus.yaml"), text)), &[]);
});
