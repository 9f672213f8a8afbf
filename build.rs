//! Compiles the project's own `.proto` files (a wire-compatible subset of milvus-proto,
//! plus the internal rootcoord API) with the tonic/prost versions etcd-client uses.
//!
//! Two runs: MilvusService is generated server-only (its `Connect` RPC would clash with
//! a generated client's `connect` constructor); the rootcoord package, client and server,
//! refers to the first run's messages through extern paths.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let (milvus_out, rootcoord_out) = (out.join("milvus"), out.join("rootcoord"));
    std::fs::create_dir_all(&milvus_out)?;
    std::fs::create_dir_all(&rootcoord_out)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&milvus_out)
        .compile_protos(&["proto/milvus.proto"], &["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&rootcoord_out)
        .extern_path(".milvus.proto.common", "crate::proto::common")
        .extern_path(".milvus.proto.schema", "crate::proto::schema")
        .extern_path(".milvus.proto.milvus", "crate::proto::milvus")
        .compile_protos(
            &[
                "proto/rootcoord.proto",
                "proto/wal.proto",
                "proto/datacoord.proto",
                "proto/indexcoord.proto",
                "proto/querycoord.proto",
                "proto/querynode.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
