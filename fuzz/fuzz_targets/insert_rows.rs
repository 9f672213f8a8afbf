//! Insert validation: any `InsertRequest` a client can send (decoded from arbitrary bytes)
//! is accepted or refused with Milvus's code 1100, never a panic, and an accepted one
//! holds exactly `num_rows` rows in every column.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use milvus::proto::milvus::InsertRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = InsertRequest::decode(data) else {
        return;
    };
    if req.num_rows > 100_000 {
        return;
    }
    let schema = common::schema();
    for upsert in [false, true] {
        match milvus::schema::validate_rows(&schema, req.fields_data.clone(), req.num_rows, upsert) {
            Ok(v) => {
                for f in &v.fields {
                    let n = milvus::schema::field_len(f);
                    assert!(
                        n == req.num_rows as usize || f.field_name == "$meta",
                        "accepted a column of {n} rows for {} rows",
                        req.num_rows
                    );
                }
            }
            Err(s) => assert!(s.code != 0, "a refusal without a code: {s:?}"),
        }
    }
});
