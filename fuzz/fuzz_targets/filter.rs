//! The filter language: any text compiles or is refused with an error (never a panic or
//! a hang), and a compiled filter gives the same answers row by row and a column at a
//! time (invariant B1), and its chunk bounds never rule out a matching row (B2).
#![no_main]

mod common;

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use milvus::expr::{Bounds, Filter};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > 4096 {
        return;
    }
    let schema = common::schema();
    let Ok(filter) = Filter::compile(text, &schema, &HashMap::new()) else {
        return;
    };
    let table = common::table();
    let batch = filter.select(&table, 3);
    for (row, b) in batch.iter().enumerate() {
        assert_eq!(
            filter.matches(&table, row),
            *b,
            "row {row} of {text:?}: row and column evaluation differ"
        );
    }
    let bounds: HashMap<i64, Bounds> = table
        .cols
        .iter()
        .filter_map(|c| Bounds::of(c).map(|b| (c.field_id, b)))
        .collect();
    if batch.iter().any(|b| *b) {
        assert!(filter.may_match(&bounds), "bounds rule out a matching row of {text:?}");
    }
});
