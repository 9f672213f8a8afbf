//! Session values read from etcd: any bytes parse or are refused with an error (a
//! corrupt or foreign key never takes a process down).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = milvus::session::SessionValue::parse("by-dev/meta/session/rootcoord", data);
});
