//! Index and search parameters: any key/value list (as clients send `params`) is parsed
//! or refused with a message, never a panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use milvus::index::params::{flatten, parse, Range, SearchParams};
use milvus::proto::common::KeyValuePair;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Lines of `key=value`; a `params` value may itself be JSON, as pymilvus sends it.
    let pairs: Vec<KeyValuePair> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| KeyValuePair {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect();
    let Ok(flat) = flatten(&pairs) else {
        return;
    };
    if let Ok(spec) = parse(&flat) {
        for limit in [1usize, 10, 16_384] {
            let _ = SearchParams::parse(&flat, &spec, limit);
        }
        let radius = flat.get("radius").and_then(|r| r.parse::<f64>().ok());
        let range_filter = flat.get("range_filter").and_then(|r| r.parse::<f64>().ok());
        if let Some(r) = radius {
            let _ = Range::new(spec.metric, r, range_filter);
        }
    }
    let _: BTreeMap<String, String> = flat;
});
