//! The registry of every configuration key this binary reads, with its default.
//!
//! The shipped `milvus.yaml` documents exactly these keys; a test checks that it loads to
//! the same values as the defaults here.

use crate::role::Role;

/// What kind of value a key holds, which decides how it is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A TCP port, 1-65535.
    Port,
    /// `true` or `false` (also Go's 1/0, t/f).
    Bool,
    /// Free text.
    Text,
    /// A list of `host:port` endpoints (a YAML list or a comma-separated string).
    Endpoints,
    /// Whole seconds, at least 2 (etcd's smallest lease TTL).
    TtlSeconds,
    /// A non-negative whole number.
    Count,
    /// Milliseconds, a positive whole number.
    Millis,
    /// A log level name.
    LogLevel,
    /// A number above 0 and at most 1.
    Fraction,
    /// One word from a fixed list (checked when the configuration is built).
    Choice(&'static str),
    /// A size in bytes, at least 1 KiB and at most 2 GiB - 1 (gRPC's largest message).
    Bytes,
}

impl Kind {
    /// What a value of this kind must look like, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Port => "expected a port number 1-65535",
            Kind::Bool => "expected true or false",
            Kind::Text => "expected text",
            Kind::Endpoints => {
                "expected one or more etcd endpoints as host:port (a YAML list or comma-separated)"
            }
            Kind::TtlSeconds => "expected whole seconds, at least 2 (etcd's smallest lease TTL)",
            Kind::Count => "expected a whole number, 0 or more",
            Kind::Millis => "expected a whole number of milliseconds, at least 1",
            Kind::LogLevel => "expected one of debug, info, warn, error",
            Kind::Fraction => "expected a number above 0 and at most 1",
            Kind::Choice(list) => list,
            Kind::Bytes => "expected a size in bytes from 1024 to 2147483647",
        }
    }
}

/// One configuration key: its dotted name, default value (as text) and kind.
#[derive(Debug, Clone)]
pub struct KeyDef {
    /// Dotted name as in `milvus.yaml`, e.g. `rootCoord.port`.
    pub name: String,
    /// Built-in default, as text.
    pub default: String,
    /// How the value is validated.
    pub kind: Kind,
}

fn key(name: impl Into<String>, default: impl Into<String>, kind: Kind) -> KeyDef {
    KeyDef {
        name: name.into(),
        default: default.into(),
        kind,
    }
}

/// The gRPC message size keys, under `grpc.` (every role) and `<role>.grpc.` (one role).
pub const GRPC_SIZES: [&str; 4] = [
    "serverMaxRecvSize",
    "serverMaxSendSize",
    "clientMaxRecvSize",
    "clientMaxSendSize",
];

/// Milvus 2.5's defaults for the `grpc.` keys, in [`GRPC_SIZES`] order.
const GRPC_DEFAULTS: [u64; 4] = [256 << 20, 512 << 20, 512 << 20, 256 << 20];

/// The `<role>.grpc.` defaults of Milvus 2.5's `milvus.yaml`: the proxy takes requests
/// of at most 64 MiB, the other roles those of the `grpc.` defaults.
fn grpc_role_defaults(role: Role) -> [u64; 4] {
    match role {
        Role::Proxy => [64 << 20, 256 << 20, 64 << 20, 256 << 20],
        _ => GRPC_DEFAULTS,
    }
}

/// Every key the binary reads, in the order `dry-run` prints them.
pub fn all_keys() -> Vec<KeyDef> {
    let mut keys = vec![
        key("etcd.endpoints", "localhost:2379", Kind::Endpoints),
        key("etcd.rootPath", "by-dev", Kind::Text),
        key("etcd.metaSubPath", "meta", Kind::Text),
        key("etcd.kvSubPath", "kv", Kind::Text),
        key("etcd.requestTimeout", "5000", Kind::Millis),
        key("etcd.ssl.enabled", "false", Kind::Bool),
        key("etcd.ssl.tlsCert", "", Kind::Text),
        key("etcd.ssl.tlsKey", "", Kind::Text),
        key("etcd.ssl.tlsCACert", "", Kind::Text),
        key("etcd.auth.enabled", "false", Kind::Bool),
        key("etcd.auth.userName", "", Kind::Text),
        key("etcd.auth.password", "", Kind::Text),
        key("minio.address", "localhost", Kind::Text),
        key("minio.port", "9000", Kind::Port),
        key("minio.accessKeyID", "minioadmin", Kind::Text),
        key("minio.secretAccessKey", "minioadmin", Kind::Text),
        key("minio.useSSL", "false", Kind::Bool),
        key("minio.ssl.tlsCACert", "", Kind::Text),
        key("minio.bucketName", "a-bucket", Kind::Text),
        key("minio.rootPath", "files", Kind::Text),
        key("minio.region", "us-east-1", Kind::Text),
        key("minio.requestTimeoutMs", "10000", Kind::Millis),
        key(
            "common.storageType",
            "local",
            Kind::Choice("expected local, minio or remote"),
        ),
        key("localStorage.path", "/var/lib/milvus/data/", Kind::Text),
        key(
            "mq.type",
            "default",
            Kind::Choice("expected natsmq or default (the log of this build is NATS JetStream)"),
        ),
        key("natsmq.address", "nats://127.0.0.1:4222", Kind::Text),
        key("natsmq.requestTimeout", "5000", Kind::Millis),
        key("natsmq.username", "", Kind::Text),
        key("natsmq.password", "", Kind::Text),
        key("natsmq.tls.enabled", "false", Kind::Bool),
        key("natsmq.tls.caPemPath", "", Kind::Text),
        key("natsmq.tls.clientPemPath", "", Kind::Text),
        key("natsmq.tls.clientKeyPath", "", Kind::Text),
        key("msgChannel.chanNamePrefix.cluster", "by-dev", Kind::Text),
        key(
            "msgChannel.chanNamePrefix.rootCoordDml",
            "rootcoord-dml",
            Kind::Text,
        ),
        key("rootCoord.dmlChannelNum", "16", Kind::Count),
        key("dataCoord.segment.maxSize", "1024", Kind::Count),
        key("dataCoord.segment.sealProportion", "0.12", Kind::Fraction),
        key("dataCoord.gc.interval", "3600", Kind::Count),
        key("dataCoord.gc.missingTolerance", "86400", Kind::Count),
        key("dataCoord.gc.dropTolerance", "86400", Kind::Count),
        key("dataNode.segment.syncPeriod", "600", Kind::Count),
        key("dataCoord.logRetention.enabled", "true", Kind::Bool),
        key("dataCoord.logRetention.grace", "10", Kind::Count),
        key("dataCoord.enableCompaction", "true", Kind::Bool),
        key(
            "dataCoord.compaction.enableAutoCompaction",
            "true",
            Kind::Bool,
        ),
        key(
            "dataCoord.compaction.mix.triggerInterval",
            "60",
            Kind::Count,
        ),
        key("dataCoord.compaction.min.segment", "3", Kind::Count),
        key(
            "dataCoord.compaction.single.ratio.threshold",
            "0.2",
            Kind::Fraction,
        ),
        key("dataCoord.compaction.deltaRetention", "600", Kind::Count),
        key("dataCoord.segment.smallProportion", "0.5", Kind::Fraction),
        key(
            "indexCoord.segment.minSegmentNumRowsToEnableIndex",
            "1024",
            Kind::Count,
        ),
        key("indexNode.buildParallel", "0", Kind::Count),
        key(
            "indexNode.buildNice",
            "10",
            Kind::Choice(
                "expected a nice value 0-19 (0: builds compete with searches on equal terms)",
            ),
        ),
        key("common.gracefulTime", "5000", Kind::Millis),
        key("pulsar.address", "localhost", Kind::Text),
        key("pulsar.port", "6650", Kind::Port),
        key("common.session.ttl", "10", Kind::TtlSeconds),
        key("common.session.retryTimes", "30", Kind::Count),
        key("common.session.exitOnLeaseLoss", "false", Kind::Bool),
        key("log.level", "info", Kind::LogLevel),
        key("rootCoord.hotStandby", "true", Kind::Bool),
        key("rootCoord.maxDatabaseNum", "64", Kind::Count),
        key("rootCoord.maxPartitionNum", "4096", Kind::Count),
        key("proxy.maxFieldNum", "64", Kind::Count),
        key("proxy.coordRetryTimeout", "0", Kind::Count),
        key("common.security.authorizationEnabled", "false", Kind::Bool),
        key("common.security.defaultRootPassword", "Milvus", Kind::Text),
        key("common.security.superUsers", "", Kind::Text),
        key(
            "common.security.tlsMode",
            "0",
            Kind::Choice("expected 0 (no TLS), 1 (one-way TLS) or 2 (mutual TLS)"),
        ),
        key("tls.serverPemPath", "configs/cert/server.pem", Kind::Text),
        key("tls.serverKeyPath", "configs/cert/server.key", Kind::Text),
        key("tls.caPemPath", "configs/cert/ca.pem", Kind::Text),
        key("common.security.internaltlsEnabled", "false", Kind::Bool),
        key(
            "internaltls.serverPemPath",
            "configs/cert/server.pem",
            Kind::Text,
        ),
        key(
            "internaltls.serverKeyPath",
            "configs/cert/server.key",
            Kind::Text,
        ),
        key("internaltls.caPemPath", "configs/cert/ca.pem", Kind::Text),
        key("internaltls.sni", "localhost", Kind::Text),
        key("proxy.maxUsernameLength", "32", Kind::Count),
        key("proxy.minPasswordLength", "6", Kind::Count),
        key("proxy.maxPasswordLength", "256", Kind::Count),
        key("proxy.maxUserNum", "100", Kind::Count),
        key("proxy.maxRoleNum", "10", Kind::Count),
    ];
    for (name, default) in GRPC_SIZES.iter().zip(GRPC_DEFAULTS) {
        keys.push(key(
            format!("grpc.{name}"),
            default.to_string(),
            Kind::Bytes,
        ));
    }
    for role in Role::ALL {
        let s = role.section();
        keys.push(key(format!("{s}.address"), "", Kind::Text));
        keys.push(key(
            format!("{s}.port"),
            role.default_port().to_string(),
            Kind::Port,
        ));
        for (name, default) in GRPC_SIZES.iter().zip(grpc_role_defaults(role)) {
            keys.push(key(
                format!("{s}.grpc.{name}"),
                default.to_string(),
                Kind::Bytes,
            ));
        }
        if role.is_coordinator() {
            keys.push(key(format!("{s}.enableActiveStandby"), "false", Kind::Bool));
            keys.push(key(
                format!("{s}.activeStandby.enabled"),
                "false",
                Kind::Bool,
            ));
        }
    }
    keys
}

/// Milvus's environment rule: lowercase, with `.`, `_` and `/` removed.
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '.' | '_' | '/'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The conventional environment variable for a key: `rootCoord.enableActiveStandby` ->
/// `ROOT_COORD_ENABLE_ACTIVE_STANDBY` (any spelling with the same letters also matches).
pub fn env_name(key: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if c == '.' {
            out.push('_');
            prev_lower = false;
        } else if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c);
            prev_lower = false;
        } else {
            out.push(c.to_ascii_uppercase());
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}
