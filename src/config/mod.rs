//! Layered configuration: built-in defaults < `milvus.yaml` < environment variables.
//!
//! [`load`] is a pure function of the file text and the environment, so tests need not
//! touch the process environment; [`load_for_process`] wires it to the real ones.

pub mod keys;
pub mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::role::Role;
use keys::{all_keys, Kind};
pub use source::{Setting, Source};

/// Why a configuration could not be loaded. Every variant names what was wrong and what
/// is expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` names a file that does not exist.
    #[error("config file {0} does not exist (given with --config)")]
    MissingFile(PathBuf),
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("config file {path} is not valid YAML at line {line}, column {column}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// The parser's message.
        message: String,
    },
    /// The file's top level is not a mapping of sections.
    #[error("config file {0} must be a YAML mapping of sections (etcd:, rootCoord:, ...)")]
    NotAMapping(PathBuf),
    /// A key has a value of the wrong form.
    #[error("{origin}: {key} = {value:?} is not valid: {expected}")]
    Invalid {
        /// Dotted key name.
        key: String,
        /// The value as given.
        value: String,
        /// Where it was given.
        origin: Source,
        /// What the value must look like.
        expected: String,
    },
}

/// etcd connection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdConfig {
    /// `host:port` endpoints.
    pub endpoints: Vec<String>,
    /// `etcd.rootPath`.
    pub root_path: String,
    /// `etcd.metaSubPath`.
    pub meta_sub_path: String,
    /// `etcd.kvSubPath`.
    pub kv_sub_path: String,
    /// Upper bound on any single etcd call.
    pub request_timeout: Duration,
    /// `etcd.ssl.*`: TLS to etcd, when enabled.
    pub tls: Option<EtcdTls>,
    /// `etcd.auth.*`: etcd's own user and password, when enabled.
    pub auth: Option<Credentials>,
}

/// TLS to etcd (`etcd.ssl.enabled`): the CA that signed etcd's certificate and, for an
/// etcd started with `--client-cert-auth`, this process's certificate and key.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdTls {
    /// `etcd.ssl.tlsCACert`.
    pub ca: PathBuf,
    /// `etcd.ssl.tlsCert` and `etcd.ssl.tlsKey` (both or neither).
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// A user name and password for a server of the cluster (etcd, NATS).
#[derive(Clone, PartialEq)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for S3Config {
    /// The secret key never reaches a log line or debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field("use_ssl", &self.use_ssl)
            .field("ca_cert", &self.ca_cert)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .finish()
    }
}

impl std::fmt::Debug for Credentials {
    /// The password never reaches a log line or `dry-run`'s debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <password>)", self.user)
    }
}

impl EtcdConfig {
    /// The meta root, e.g. `by-dev/meta`.
    pub fn meta_root(&self) -> String {
        format!("{}/{}", self.root_path, self.meta_sub_path)
    }

    /// The kv root, e.g. `by-dev/kv`.
    pub fn kv_root(&self) -> String {
        format!("{}/{}", self.root_path, self.kv_sub_path)
    }
}

/// Session and lease settings (`common.session.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// Lease TTL.
    pub ttl: Duration,
    /// `common.session.retryTimes`: attempts for session registration calls.
    pub retry_times: u32,
    /// Exit with code 80 instead of re-registering when the lease is lost.
    pub exit_on_lease_loss: bool,
}

/// Settings of one role's section.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleConfig {
    /// Advertised address (`host` or `host:port`); empty means the host's own address.
    pub address: String,
    /// Listen port.
    pub port: u16,
    /// Active-standby enabled (either spelling of the switch).
    pub active_standby: bool,
    /// Largest gRPC messages it takes and sends, as server and as client.
    pub grpc: GrpcLimits,
}

/// Largest gRPC messages, in bytes (Milvus's `grpc.*` and `<role>.grpc.*` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcLimits {
    /// `serverMaxRecvSize`: largest request the role's server decodes.
    pub server_max_recv: usize,
    /// `serverMaxSendSize`: largest answer it encodes.
    pub server_max_send: usize,
    /// `clientMaxRecvSize`: largest answer its clients decode.
    pub client_max_recv: usize,
    /// `clientMaxSendSize`: largest request its clients encode.
    pub client_max_send: usize,
}

/// Root coordinator settings beyond its section's address and port.
#[derive(Debug, Clone, PartialEq)]
pub struct RootCoordConfig {
    /// A standby follows the catalog in memory and takes over without reloading it.
    pub hot_standby: bool,
    /// `rootCoord.maxDatabaseNum`.
    pub max_database_num: usize,
    /// `rootCoord.maxPartitionNum`.
    pub max_partition_num: usize,
}

/// Proxy settings beyond its section's address and port.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// `proxy.maxFieldNum`.
    pub max_field_num: usize,
    /// How long a proxy retries while no active rootcoord answers, before answering
    /// UNAVAILABLE (`proxy.coordRetryTimeout` in ms; 0 means 2 x TTL + 1 s, at least
    /// [`MIN_COORD_RETRY`]).
    pub coord_retry_timeout: Duration,
}

/// The least default `proxy.coordRetryTimeout`: an etcd leader election on a loaded
/// machine and the coordinator takeover after it (a 3-member etcd with one member
/// restarted left calls unanswered for 5 s in the soak) take seconds whatever the TTL.
pub const MIN_COORD_RETRY: Duration = Duration::from_secs(10);

/// Authentication and authorization (`common.security.*` and the proxy's user limits).
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityConfig {
    /// `common.security.authorizationEnabled`: every client call must name a user and
    /// its password, and is checked against the user's roles.
    pub authorization_enabled: bool,
    /// `common.security.defaultRootPassword`: the password `root` is created with.
    pub default_root_password: String,
    /// `common.security.superUsers`: users (besides `root`) every privilege check passes.
    pub super_users: Vec<String>,
    /// `proxy.maxUsernameLength`.
    pub max_username_length: usize,
    /// `proxy.minPasswordLength`.
    pub min_password_length: usize,
    /// `proxy.maxPasswordLength`.
    pub max_password_length: usize,
    /// `proxy.maxUserNum`: the most users (root included).
    pub max_user_num: usize,
    /// `proxy.maxRoleNum`: the most roles, the built-in `admin` and `public` included.
    pub max_role_num: usize,
    /// `common.security.tlsMode` and the `tls.*` files: TLS on the proxy's port.
    pub tls: TlsConfig,
    /// `common.security.internaltlsEnabled` and the `internaltls.*` files: mutual TLS on
    /// every internal port and call.
    pub internal_tls: InternalTlsConfig,
}

/// Mutual TLS between the components (`common.security.internaltlsEnabled`,
/// `internaltls.*`): every role but the proxy serves its port only to callers with a
/// certificate of `ca_pem`, and every internal call presents `server_pem` and checks the
/// callee's certificate against `ca_pem` and the name `sni`.
#[derive(Debug, Clone, PartialEq)]
pub struct InternalTlsConfig {
    /// Whether internal TLS is on.
    pub enabled: bool,
    /// `internaltls.serverPemPath`: this component's certificate chain, presented both
    /// as a server and as a caller (it needs the serverAuth and clientAuth usages).
    pub server_pem: PathBuf,
    /// `internaltls.serverKeyPath`.
    pub server_key: PathBuf,
    /// `internaltls.caPemPath`: the cluster's CA.
    pub ca_pem: PathBuf,
    /// `internaltls.sni`: the name callers expect in the callee's certificate.
    pub sni: String,
}

/// TLS on the proxy's client port (`common.security.tlsMode`, `tls.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// 0: none; 1: the server proves itself (one-way); 2: both sides do (mutual).
    pub mode: u8,
    /// `tls.serverPemPath`: the server's certificate chain (PEM).
    pub server_pem: PathBuf,
    /// `tls.serverKeyPath`: its private key (PEM).
    pub server_key: PathBuf,
    /// `tls.caPemPath`: the CA client certificates must chain to (mode 2).
    pub ca_pem: PathBuf,
}

/// An external service's address (MinIO, Pulsar), carried for the data plane.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAddress {
    /// Host or URL.
    pub address: String,
    /// Port.
    pub port: u16,
}

/// Where segment and index files live (`common.storageType`).
#[derive(Debug, Clone, PartialEq)]
pub enum StorageKind {
    /// `local`: a directory every process can see (`localStorage.path`).
    Local,
    /// `minio` / `remote`: an S3-API bucket (`minio.*`).
    S3,
}

/// S3 (MinIO) settings, Milvus's `minio.*` keys.
#[derive(Clone, PartialEq)]
pub struct S3Config {
    /// `minio.address`: host (or `host:port`, which overrides `minio.port`).
    pub address: String,
    /// `minio.port`.
    pub port: u16,
    /// `minio.accessKeyID`.
    pub access_key_id: String,
    /// `minio.secretAccessKey`.
    pub secret_access_key: String,
    /// `minio.useSSL`.
    pub use_ssl: bool,
    /// `minio.ssl.tlsCACert`: a CA to trust for the S3 server's certificate, besides the
    /// system's (empty: the system's only).
    pub ca_cert: Option<PathBuf>,
    /// `minio.bucketName`.
    pub bucket: String,
    /// `minio.region`.
    pub region: String,
}

/// Object storage settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// Local directory or S3.
    pub kind: StorageKind,
    /// `localStorage.path`.
    pub local_path: PathBuf,
    /// `minio.rootPath`: prefix of every object, in either kind.
    pub root_path: String,
    /// S3 settings (used when `kind` is S3).
    pub s3: S3Config,
    /// `minio.requestTimeoutMs`: bound on every storage call.
    pub timeout: Duration,
}

/// The write-ahead log and its channels.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `natsmq.address`.
    pub address: String,
    /// `natsmq.requestTimeout`: bound on every log call.
    pub timeout: Duration,
    /// `natsmq.username` / `natsmq.password`, when a user is set.
    pub auth: Option<Credentials>,
    /// `natsmq.tls.*`: TLS to nats-server, when enabled.
    pub tls: Option<NatsTls>,
    /// `rootCoord.dmlChannelNum`: physical DML channels.
    pub dml_channels: usize,
    /// `msgChannel.chanNamePrefix.cluster`.
    pub cluster_prefix: String,
    /// `msgChannel.chanNamePrefix.rootCoordDml`.
    pub dml_prefix: String,
    /// `dataCoord.logRetention.enabled`: the active datacoord deletes the log's messages
    /// every reader has passed.
    pub retention: bool,
    /// `dataCoord.logRetention.grace` (s): a message is deleted only once every reader
    /// has been past it for this long.
    pub retention_grace: Duration,
}

/// TLS to nats-server (`natsmq.tls.enabled`).
#[derive(Debug, Clone, PartialEq)]
pub struct NatsTls {
    /// `natsmq.tls.caPemPath`: the CA of the server's certificate (empty: the system's).
    pub ca: Option<PathBuf>,
    /// `natsmq.tls.clientPemPath` / `clientKeyPath`, for a server that verifies clients.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Segment settings of the data coordinator.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentConfig {
    /// `dataCoord.segment.maxSize` in MB.
    pub max_size_mb: u64,
    /// `dataCoord.segment.sealProportion`.
    pub seal_proportion: f64,
    /// `dataNode.segment.syncPeriod`: buffered rows older than this are written out.
    pub sync_period: Duration,
    /// `dataCoord.gc.interval`: how often the datacoord collects garbage files.
    pub gc_interval: Duration,
    /// `dataCoord.gc.missingTolerance`: an unregistered file is deleted once this old.
    pub gc_missing_tolerance: Duration,
    /// `dataCoord.gc.dropTolerance`: a dropped segment's files are deleted this long
    /// after the drop.
    pub gc_drop_tolerance: Duration,
    /// `indexCoord.segment.minSegmentNumRowsToEnableIndex`: smaller segments are not
    /// indexed (searched exactly).
    pub min_rows_to_index: u64,
    /// `indexNode.buildParallel`: threads one build uses (0: every core).
    pub build_threads: usize,
    /// `indexNode.buildNice`: the nice value of a vector index build's threads (0-19).
    pub build_nice: u8,
    /// Compaction settings.
    pub compaction: CompactionConfig,
}

/// When the datacoord compacts segments.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionConfig {
    /// `dataCoord.enableCompaction`: compaction at all (manual and automatic).
    pub enabled: bool,
    /// `dataCoord.compaction.enableAutoCompaction`: the datacoord plans compactions by
    /// itself.
    pub auto: bool,
    /// `dataCoord.compaction.mix.triggerInterval` (s): how often it looks for segments to
    /// compact.
    pub trigger_interval: Duration,
    /// `dataCoord.compaction.min.segment`: small segments of one shard and partition
    /// merged automatically only when there are at least this many.
    pub min_segments: usize,
    /// `dataCoord.compaction.single.ratio.threshold`: a segment is rewritten when about
    /// this fraction of its rows is deleted or expired.
    pub single_ratio: f64,
    /// `dataCoord.segment.smallProportion`: a segment smaller than `maxSize` times this
    /// is small (merged with others).
    pub small_proportion: f64,
    /// `dataCoord.compaction.deltaRetention` (s, this project's key): a delete record
    /// applied to every segment is dropped once its newest delete is this much older than
    /// its channel's checkpoint (rows older than a delete may still be on their way
    /// through the log until then).
    pub delta_retention: Duration,
}

impl SegmentConfig {
    /// The buffered size of a channel at which a datanode writes it out as segments:
    /// `maxSize * sealProportion`.
    pub fn flush_bytes(&self) -> usize {
        ((self.max_size_mb as f64) * self.seal_proportion * 1024.0 * 1024.0).max(1.0) as usize
    }
}

/// The whole typed configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// etcd.
    pub etcd: EtcdConfig,
    /// MinIO.
    pub minio: ServiceAddress,
    /// Pulsar.
    pub pulsar: ServiceAddress,
    /// Sessions.
    pub session: SessionConfig,
    /// `log.level`.
    pub log_level: log::LevelFilter,
    /// Root coordinator settings.
    pub root_coord: RootCoordConfig,
    /// Proxy settings.
    pub proxy: ProxyConfig,
    /// Object storage.
    pub storage: StorageConfig,
    /// The write-ahead log.
    pub log: LogConfig,
    /// Segments.
    pub segment: SegmentConfig,
    /// `common.gracefulTime`: staleness allowed by Bounded consistency.
    pub graceful_time: Duration,
    /// Users, passwords and privileges.
    pub security: SecurityConfig,
    roles: BTreeMap<Role, RoleConfig>,
}

impl Config {
    /// The settings of `role`'s section.
    pub fn role(&self, role: Role) -> &RoleConfig {
        &self.roles[&role]
    }
}

/// A loaded configuration with the provenance of each value.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The typed configuration.
    pub config: Config,
    /// Every key this binary reads, with its effective value and source, in registry order.
    pub settings: Vec<(String, Setting)>,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    /// `user.yaml` beside it, read over it, if there is one.
    pub overlay: Option<PathBuf>,
    /// Keys in the file this binary does not use.
    pub ignored: Vec<String>,
}

/// Loads the configuration from optional file text (with its path) and an environment.
pub fn load(file: Option<(&Path, &str)>, env: &[(String, String)]) -> Result<Loaded, ConfigError> {
    load_layers(file.as_slice(), env)
}

/// Loads the configuration from files layered in order (a key in a later file wins, as
/// Milvus's `user.yaml` wins over `milvus.yaml`), then the environment over them all.
pub fn load_layers(
    files: &[(&Path, &str)],
    env: &[(String, String)],
) -> Result<Loaded, ConfigError> {
    let mut from_file: BTreeMap<String, (String, &Path)> = BTreeMap::new();
    for (path, text) in files {
        for (k, v) in source::flatten_yaml(path, text)? {
            from_file.insert(k, (v, path));
        }
    }
    let defs = all_keys();
    let mut settings = Vec::with_capacity(defs.len());
    for def in &defs {
        let setting = if let Some((var, value)) = source::env_for(def, env) {
            Setting {
                value: value.to_string(),
                source: Source::Env(var.to_string()),
            }
        } else if let Some((v, path)) = from_file.get(&def.name) {
            Setting {
                value: v.clone(),
                source: Source::File(path.to_path_buf()),
            }
        } else {
            Setting {
                value: def.default.clone(),
                source: Source::Default,
            }
        };
        settings.push((def.name.clone(), setting));
    }
    let known: std::collections::HashSet<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    let ignored = from_file
        .keys()
        .filter(|k| !known.contains(k.as_str()))
        .cloned()
        .collect();
    let config = Typed::new(&defs, &settings).build()?;
    Ok(Loaded {
        config,
        settings,
        file: files.first().map(|(p, _)| p.to_path_buf()),
        overlay: files.get(1).map(|(p, _)| p.to_path_buf()),
        ignored,
    })
}

/// Loads the configuration the way a process does: locates the file (`--config`,
/// `$MILVUSCONF`, `./milvus.yaml`, `./configs/milvus.yaml`), layers `user.yaml` from the
/// same directory over it when there is one (Milvus's rule; Milvus's Helm chart puts the
/// user's `extraConfigFiles` there), and reads the real environment.
pub fn load_for_process(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let milvusconf = env
        .iter()
        .find(|(k, _)| k == "MILVUSCONF")
        .map(|(_, v)| v.as_str());
    let Some(path) = source::locate_file(explicit, milvusconf)? else {
        return load(None, &env);
    };
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: e,
        })
    };
    let text = read(&path)?;
    let user = path.with_file_name("user.yaml");
    if user.is_file() && user != path {
        let user_text = read(&user)?;
        return load_layers(&[(&path, &text), (&user, &user_text)], &env);
    }
    load(Some((&path, &text)), &env)
}

/// Turns validated text settings into the typed struct.
struct Typed<'a> {
    kinds: BTreeMap<&'a str, Kind>,
    settings: BTreeMap<&'a str, &'a Setting>,
}

impl<'a> Typed<'a> {
    fn new(defs: &'a [keys::KeyDef], settings: &'a [(String, Setting)]) -> Self {
        Typed {
            kinds: defs.iter().map(|d| (d.name.as_str(), d.kind)).collect(),
            settings: settings.iter().map(|(k, s)| (k.as_str(), s)).collect(),
        }
    }

    fn invalid(&self, key: &str, expected: &str) -> ConfigError {
        let s = self.settings[key];
        ConfigError::Invalid {
            key: key.to_string(),
            value: s.value.clone(),
            origin: s.source.clone(),
            expected: expected.to_string(),
        }
    }

    fn raw(&self, key: &str) -> (&str, Kind) {
        (self.settings[key].value.trim(), self.kinds[key])
    }

    fn text(&self, key: &str) -> String {
        self.raw(key).0.to_string()
    }

    fn port(&self, key: &str) -> Result<u16, ConfigError> {
        let (v, kind) = self.raw(key);
        match v.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(self.invalid(key, kind.expected())),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, ConfigError> {
        let (v, kind) = self.raw(key);
        parse_bool(v).ok_or_else(|| self.invalid(key, kind.expected()))
    }

    fn number(&self, key: &str, min: u64) -> Result<u64, ConfigError> {
        let (v, kind) = self.raw(key);
        match v.parse::<u64>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(self.invalid(key, kind.expected())),
        }
    }

    /// A nice value, 0-19.
    fn nice(&self, key: &str) -> Result<u8, ConfigError> {
        let (v, kind) = self.raw(key);
        match v.parse::<u8>() {
            Ok(n) if n <= 19 => Ok(n),
            _ => Err(self.invalid(key, kind.expected())),
        }
    }

    fn fraction(&self, key: &str) -> Result<f64, ConfigError> {
        let (v, kind) = self.raw(key);
        match v.parse::<f64>() {
            Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
            _ => Err(self.invalid(key, kind.expected())),
        }
    }

    /// The value of a `Choice` key, lowercased, if it is one of `allowed`.
    fn choice(&self, key: &str, allowed: &[&str]) -> Result<String, ConfigError> {
        let (v, kind) = self.raw(key);
        let v = v.to_ascii_lowercase();
        if allowed.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(self.invalid(key, kind.expected()))
        }
    }

    /// A gRPC size: `<section>.grpc.<name>` when set, else `grpc.<name>` when set, else
    /// the role's own default.
    fn grpc_size(&self, section: &str, name: &str) -> Result<usize, ConfigError> {
        let own = format!("{section}.grpc.{name}");
        let global = format!("grpc.{name}");
        let key = if self.settings[own.as_str()].source == Source::Default
            && self.settings[global.as_str()].source != Source::Default
        {
            global
        } else {
            own
        };
        let (v, kind) = self.raw(&key);
        match v.parse::<u64>() {
            Ok(n) if (1024..=i32::MAX as u64).contains(&n) => Ok(n as usize),
            _ => Err(self.invalid(&key, kind.expected())),
        }
    }

    fn grpc_limits(&self, section: &str) -> Result<GrpcLimits, ConfigError> {
        let [recv, send, client_recv, client_send] = keys::GRPC_SIZES;
        Ok(GrpcLimits {
            server_max_recv: self.grpc_size(section, recv)?,
            server_max_send: self.grpc_size(section, send)?,
            client_max_recv: self.grpc_size(section, client_recv)?,
            client_max_send: self.grpc_size(section, client_send)?,
        })
    }

    fn millis(&self, key: &str) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.number(key, 1)?))
    }

    fn endpoints(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let (v, kind) = self.raw(key);
        let mut out = Vec::new();
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            // The scheme follows etcd.ssl.enabled, as in Milvus.
            let bare = part
                .strip_prefix("http://")
                .or_else(|| part.strip_prefix("https://"))
                .unwrap_or(part)
                .trim_end_matches('/');
            let ok = bare.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !ok {
                return Err(self.invalid(key, kind.expected()));
            }
            out.push(bare.to_string());
        }
        if out.is_empty() {
            return Err(self.invalid(
                key,
                "expected at least one etcd endpoint as host:port, the list is empty",
            ));
        }
        Ok(out)
    }

    fn log_level(&self, key: &str) -> Result<log::LevelFilter, ConfigError> {
        let (v, kind) = self.raw(key);
        match v.to_ascii_lowercase().as_str() {
            "debug" => Ok(log::LevelFilter::Debug),
            "info" => Ok(log::LevelFilter::Info),
            "warn" | "warning" => Ok(log::LevelFilter::Warn),
            "error" | "fatal" | "panic" | "dpanic" => Ok(log::LevelFilter::Error),
            _ => Err(self.invalid(key, kind.expected())),
        }
    }

    /// Either spelling of the HA switch: the highest layer that sets one decides; within
    /// one layer, enabled wins.
    fn active_standby(&self, section: &str) -> Result<bool, ConfigError> {
        let a = format!("{section}.enableActiveStandby");
        let b = format!("{section}.activeStandby.enabled");
        let rank = |k: &str| match self.settings[k].source {
            Source::Default => 0,
            Source::File(_) => 1,
            Source::Env(_) => 2,
        };
        let top = rank(&a).max(rank(&b));
        let mut on = false;
        for k in [&a, &b] {
            let v = self.boolean(k)?;
            if rank(k) == top {
                on |= v;
            }
        }
        Ok(on)
    }

    fn security(&self) -> Result<SecurityConfig, ConfigError> {
        let min = self.number("proxy.minPasswordLength", 1)? as usize;
        let max = self.number("proxy.maxPasswordLength", 1)? as usize;
        if max < min {
            return Err(self.invalid(
                "proxy.maxPasswordLength",
                &format!("expected at least proxy.minPasswordLength ({min})"),
            ));
        }
        let root = self.text("common.security.defaultRootPassword");
        if root.len() < min || root.len() > max {
            return Err(self.invalid(
                "common.security.defaultRootPassword",
                &format!("expected a password of {min} to {max} characters (proxy.minPasswordLength, proxy.maxPasswordLength)"),
            ));
        }
        Ok(SecurityConfig {
            authorization_enabled: self.boolean("common.security.authorizationEnabled")?,
            default_root_password: root,
            super_users: self
                .text("common.security.superUsers")
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
            max_username_length: self.number("proxy.maxUsernameLength", 1)? as usize,
            min_password_length: min,
            max_password_length: max,
            max_user_num: self.number("proxy.maxUserNum", 1)? as usize,
            max_role_num: self.number("proxy.maxRoleNum", 0)? as usize,
            tls: TlsConfig {
                mode: self
                    .choice("common.security.tlsMode", &["0", "1", "2"])?
                    .parse()
                    .unwrap_or(0),
                server_pem: PathBuf::from(self.text("tls.serverPemPath")),
                server_key: PathBuf::from(self.text("tls.serverKeyPath")),
                ca_pem: PathBuf::from(self.text("tls.caPemPath")),
            },
            internal_tls: InternalTlsConfig {
                enabled: self.boolean("common.security.internaltlsEnabled")?,
                server_pem: PathBuf::from(self.text("internaltls.serverPemPath")),
                server_key: PathBuf::from(self.text("internaltls.serverKeyPath")),
                ca_pem: PathBuf::from(self.text("internaltls.caPemPath")),
                sni: self.text("internaltls.sni"),
            },
        })
    }

    /// A non-empty path from `key`, or None when the key is empty.
    fn path(&self, key: &str) -> Option<PathBuf> {
        let v = self.text(key);
        let v = v.trim();
        (!v.is_empty()).then(|| PathBuf::from(v))
    }

    /// A certificate and key given by two keys: both or neither.
    fn identity(&self, cert: &str, key: &str) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
        match (self.path(cert), self.path(key)) {
            (Some(c), Some(k)) => Ok(Some((c, k))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(self.invalid(
                key,
                &format!("expected the private key of the certificate {cert} names"),
            )),
            (None, Some(_)) => Err(self.invalid(
                cert,
                &format!("expected the certificate of the private key {key} names"),
            )),
        }
    }

    /// A user and password given by two keys; `enabled` (when given) must be true for
    /// them to count, and then the user must be set.
    fn credentials(
        &self,
        enabled: Option<&str>,
        user: &str,
        password: &str,
    ) -> Result<Option<Credentials>, ConfigError> {
        let on = match enabled {
            Some(k) => self.boolean(k)?,
            None => !self.text(user).trim().is_empty(),
        };
        if !on {
            if enabled.is_none() && !self.text(password).is_empty() {
                return Err(self.invalid(
                    user,
                    &format!("expected the user whose password {password} gives"),
                ));
            }
            return Ok(None);
        }
        let name = self.text(user).trim().to_string();
        if name.is_empty() {
            let why = match enabled {
                Some(k) => format!("expected a user name, since {k} is true"),
                None => "expected a user name".to_string(),
            };
            return Err(self.invalid(user, &why));
        }
        Ok(Some(Credentials {
            user: name,
            password: self.text(password),
        }))
    }

    fn etcd_tls(&self) -> Result<Option<EtcdTls>, ConfigError> {
        if !self.boolean("etcd.ssl.enabled")? {
            return Ok(None);
        }
        let Some(ca) = self.path("etcd.ssl.tlsCACert") else {
            return Err(self.invalid(
                "etcd.ssl.tlsCACert",
                "expected the CA certificate (PEM) etcd's certificate is signed by, since etcd.ssl.enabled is true",
            ));
        };
        Ok(Some(EtcdTls {
            ca,
            identity: self.identity("etcd.ssl.tlsCert", "etcd.ssl.tlsKey")?,
        }))
    }

    fn nats_tls(&self) -> Result<Option<NatsTls>, ConfigError> {
        // A tls:// address asks for TLS too: its CA and certificate then count.
        let scheme = self.text("natsmq.address").trim().starts_with("tls://");
        if !self.boolean("natsmq.tls.enabled")? && !scheme {
            return Ok(None);
        }
        Ok(Some(NatsTls {
            ca: self.path("natsmq.tls.caPemPath"),
            identity: self.identity("natsmq.tls.clientPemPath", "natsmq.tls.clientKeyPath")?,
        }))
    }

    fn build(&self) -> Result<Config, ConfigError> {
        let mut roles = BTreeMap::new();
        for role in Role::ALL {
            let s = role.section();
            let active_standby = if role.is_coordinator() {
                self.active_standby(s)?
            } else {
                false
            };
            roles.insert(
                role,
                RoleConfig {
                    address: self.text(&format!("{s}.address")),
                    port: self.port(&format!("{s}.port"))?,
                    active_standby,
                    grpc: self.grpc_limits(s)?,
                },
            );
        }
        let ttl = Duration::from_secs(self.number("common.session.ttl", 2)?);
        let retry_ms = self.number("proxy.coordRetryTimeout", 0)?;
        let storage_kind = match self
            .choice("common.storageType", &["local", "minio", "remote"])?
            .as_str()
        {
            "local" => StorageKind::Local,
            _ => StorageKind::S3,
        };
        self.choice("mq.type", &["default", "natsmq"])?;
        Ok(Config {
            storage: StorageConfig {
                kind: storage_kind,
                local_path: PathBuf::from(self.text("localStorage.path")),
                root_path: self.text("minio.rootPath").trim_matches('/').to_string(),
                s3: S3Config {
                    address: self.text("minio.address"),
                    port: self.port("minio.port")?,
                    access_key_id: self.text("minio.accessKeyID"),
                    secret_access_key: self.text("minio.secretAccessKey"),
                    use_ssl: self.boolean("minio.useSSL")?,
                    ca_cert: self.path("minio.ssl.tlsCACert"),
                    bucket: self.text("minio.bucketName"),
                    region: self.text("minio.region"),
                },
                timeout: self.millis("minio.requestTimeoutMs")?,
            },
            log: LogConfig {
                address: self.text("natsmq.address"),
                timeout: self.millis("natsmq.requestTimeout")?,
                auth: self.credentials(None, "natsmq.username", "natsmq.password")?,
                tls: self.nats_tls()?,
                dml_channels: self.number("rootCoord.dmlChannelNum", 1)? as usize,
                cluster_prefix: self.text("msgChannel.chanNamePrefix.cluster"),
                dml_prefix: self.text("msgChannel.chanNamePrefix.rootCoordDml"),
                retention: self.boolean("dataCoord.logRetention.enabled")?,
                retention_grace: Duration::from_secs(
                    self.number("dataCoord.logRetention.grace", 1)?,
                ),
            },
            segment: SegmentConfig {
                max_size_mb: self.number("dataCoord.segment.maxSize", 1)?,
                seal_proportion: self.fraction("dataCoord.segment.sealProportion")?,
                sync_period: Duration::from_secs(self.number("dataNode.segment.syncPeriod", 1)?),
                gc_interval: Duration::from_secs(self.number("dataCoord.gc.interval", 1)?),
                gc_missing_tolerance: Duration::from_secs(
                    self.number("dataCoord.gc.missingTolerance", 0)?,
                ),
                gc_drop_tolerance: Duration::from_secs(
                    self.number("dataCoord.gc.dropTolerance", 0)?,
                ),
                min_rows_to_index: self
                    .number("indexCoord.segment.minSegmentNumRowsToEnableIndex", 0)?,
                build_threads: self.number("indexNode.buildParallel", 0)? as usize,
                build_nice: self.nice("indexNode.buildNice")?,
                compaction: CompactionConfig {
                    enabled: self.boolean("dataCoord.enableCompaction")?,
                    auto: self.boolean("dataCoord.compaction.enableAutoCompaction")?,
                    trigger_interval: Duration::from_secs(
                        self.number("dataCoord.compaction.mix.triggerInterval", 1)?,
                    ),
                    min_segments: self.number("dataCoord.compaction.min.segment", 2)? as usize,
                    single_ratio: self.fraction("dataCoord.compaction.single.ratio.threshold")?,
                    small_proportion: self.fraction("dataCoord.segment.smallProportion")?,
                    delta_retention: Duration::from_secs(
                        self.number("dataCoord.compaction.deltaRetention", 1)?,
                    ),
                },
            },
            graceful_time: self.millis("common.gracefulTime")?,
            security: self.security()?,
            root_coord: RootCoordConfig {
                hot_standby: self.boolean("rootCoord.hotStandby")?,
                max_database_num: self.number("rootCoord.maxDatabaseNum", 1)? as usize,
                max_partition_num: self.number("rootCoord.maxPartitionNum", 1)? as usize,
            },
            proxy: ProxyConfig {
                max_field_num: self.number("proxy.maxFieldNum", 1)? as usize,
                // Long enough to ride through a SIGSTOPped active (replaced at its TTL)
                // and, whatever the TTL, an etcd leader election under load followed by
                // a takeover (a few seconds each).
                coord_retry_timeout: if retry_ms == 0 {
                    (ttl * 2 + Duration::from_secs(1)).max(MIN_COORD_RETRY)
                } else {
                    Duration::from_millis(retry_ms)
                },
            },
            etcd: EtcdConfig {
                endpoints: self.endpoints("etcd.endpoints")?,
                root_path: self.text("etcd.rootPath").trim_matches('/').to_string(),
                meta_sub_path: self.text("etcd.metaSubPath").trim_matches('/').to_string(),
                kv_sub_path: self.text("etcd.kvSubPath").trim_matches('/').to_string(),
                request_timeout: Duration::from_millis(self.number("etcd.requestTimeout", 1)?),
                tls: self.etcd_tls()?,
                auth: self.credentials(
                    Some("etcd.auth.enabled"),
                    "etcd.auth.userName",
                    "etcd.auth.password",
                )?,
            },
            minio: ServiceAddress {
                address: self.text("minio.address"),
                port: self.port("minio.port")?,
            },
            pulsar: ServiceAddress {
                address: self.text("pulsar.address"),
                port: self.port("pulsar.port")?,
            },
            session: SessionConfig {
                ttl,
                retry_times: self
                    .number("common.session.retryTimes", 0)?
                    .try_into()
                    .map_err(|_| {
                        self.invalid(
                            "common.session.retryTimes",
                            "expected a whole number below 2^32",
                        )
                    })?,
                exit_on_lease_loss: self.boolean("common.session.exitOnLeaseLoss")?,
            },
            log_level: self.log_level("log.level")?,
            roles,
        })
    }
}

/// Go's `strconv.ParseBool`, which Milvus uses.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
