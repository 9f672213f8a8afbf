//! Generated protobuf and gRPC code (see `proto/` and `build.rs`).

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `milvus.proto.common`.
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/milvus/milvus.proto.common.rs"));
}

/// `milvus.proto.schema`.
pub mod schema {
    include!(concat!(env!("OUT_DIR"), "/milvus/milvus.proto.schema.rs"));
}

/// `milvus.proto.milvus`: the client-facing MilvusService (server side).
pub mod milvus {
    include!(concat!(env!("OUT_DIR"), "/milvus/milvus.proto.milvus.rs"));
}

/// `milvus.proto.rootcoord`: the rootcoord's internal API and catalog records.
pub mod rootcoord {
    include!(concat!(
        env!("OUT_DIR"),
        "/rootcoord/milvus.proto.rootcoord.rs"
    ));
}

/// `milvus.proto.wal`: messages in the write-ahead log.
pub mod wal {
    include!(concat!(env!("OUT_DIR"), "/rootcoord/milvus.proto.wal.rs"));
}

/// `milvus.proto.datacoord`: the datacoord's internal API and its records.
pub mod datacoord {
    include!(concat!(
        env!("OUT_DIR"),
        "/rootcoord/milvus.proto.datacoord.rs"
    ));
}

/// `milvus.proto.indexcoord`: the indexcoord's internal API and its records.
pub mod indexcoord {
    include!(concat!(
        env!("OUT_DIR"),
        "/rootcoord/milvus.proto.indexcoord.rs"
    ));
}

/// `milvus.proto.querycoord`: the querycoord's internal API and its records.
pub mod querycoord {
    include!(concat!(
        env!("OUT_DIR"),
        "/rootcoord/milvus.proto.querycoord.rs"
    ));
}

/// `milvus.proto.querynode`: the querynode's API (shard search and query).
pub mod querynode {
    include!(concat!(
        env!("OUT_DIR"),
        "/rootcoord/milvus.proto.querynode.rs"
    ));
}
