use std::path::Path;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with_file(text: &str, e: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load(Some((Path::new("milvus.yaml"), text)), &env(e))
}

fn setting<'a>(l: &'a Loaded, key: &str) -> &'a Setting {
    &l.settings.iter().find(|(k, _)| k == key).expect("key").1
}

#[test]
fn defaults_alone() {
    let l = load(None, &[]).unwrap();
    let c = &l.config;
    assert_eq!(c.etcd.endpoints, vec!["localhost:2379"]);
    assert_eq!(c.etcd.meta_root(), "by-dev/meta");
    assert_eq!(c.etcd.kv_root(), "by-dev/kv");
    assert_eq!(c.session.ttl, Duration::from_secs(10));
    assert_eq!(c.session.retry_times, 30);
    assert!(!c.session.exit_on_lease_loss);
    assert_eq!(c.role(Role::RootCoord).port, 53100);
    assert_eq!(c.role(Role::Proxy).port, 19530);
    assert_eq!(c.role(Role::QueryCoord).port, 19531);
    assert_eq!(c.role(Role::QueryNode).port, 21123);
    assert_eq!(c.role(Role::IndexCoord).port, 31000);
    assert_eq!(c.role(Role::IndexNode).port, 21121);
    assert_eq!(c.role(Role::DataCoord).port, 13333);
    assert_eq!(c.role(Role::DataNode).port, 21124);
    assert!(Role::ALL.iter().all(|r| !c.role(*r).active_standby));
    assert_eq!(c.log_level, log::LevelFilter::Info);
    assert!(l.settings.iter().all(|(_, s)| s.source == Source::Default));
}

#[test]
fn shipped_milvus_yaml_loads_to_the_defaults() {
    let text = include_str!("../../milvus.yaml");
    let from_file = with_file(text, &[]).unwrap();
    let defaults = load(None, &[]).unwrap();
    assert_eq!(from_file.config, defaults.config);
    assert!(
        from_file.ignored.is_empty(),
        "shipped file has unused keys: {:?}",
        from_file.ignored
    );
    // And it documents every key the binary reads.
    for (key, s) in &from_file.settings {
        assert!(
            matches!(s.source, Source::File(_)),
            "{key} is not in the shipped milvus.yaml"
        );
    }
}

#[test]
fn a_real_deployment_file_loads_and_ignores_what_it_does_not_use() {
    let text = include_str!("../../tests/data/milvus-deployment.yaml");
    let l = with_file(text, &[]).unwrap();
    assert_eq!(
        l.config.etcd.endpoints,
        vec!["etcd-0.etcd:2379", "etcd-1.etcd:2379"]
    );
    assert_eq!(l.config.etcd.meta_root(), "prod/meta");
    assert!(l.config.role(Role::RootCoord).active_standby);
    assert_eq!(l.config.session.ttl, Duration::from_secs(30));
    assert_eq!(l.config.minio.address, "minio");
    // The data plane's keys are read from it too.
    assert_eq!(l.config.storage.s3.bucket, "a-bucket");
    assert_eq!(l.config.storage.root_path, "files");
    assert_eq!(l.config.storage.timeout, Duration::from_secs(10));
    assert_eq!(l.config.log.dml_channels, 16);
    assert_eq!(l.config.segment.seal_proportion, 0.12);
    assert!(l.ignored.contains(&"rocksmq.compressionTypes".to_string()));
    assert!(l
        .ignored
        .contains(&"proxy.accessLog.formatters.query.methods".to_string()));
}

#[test]
fn environment_follows_milvus_name_rule() {
    let l = load(
        None,
        &env(&[
            ("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true"),
            ("ETCD_ENDPOINTS", "etcd:2379"),
            ("ROOT_COORD_ADDRESS", "rootcoord:53100"),
            ("MINIO_ADDRESS", "minio:9000"),
            ("PULSAR_ADDRESS", "pulsar://pulsar:6650"),
            ("PATH", "/usr/bin"),
        ]),
    )
    .unwrap();
    let c = &l.config;
    assert!(c.role(Role::RootCoord).active_standby);
    assert_eq!(
        setting(&l, "rootCoord.enableActiveStandby").source,
        Source::Env("ROOT_COORD_ENABLE_ACTIVE_STANDBY".into())
    );
    assert_eq!(c.etcd.endpoints, vec!["etcd:2379"]);
    assert_eq!(c.role(Role::RootCoord).address, "rootcoord:53100");
    assert_eq!(c.minio.address, "minio:9000");
    assert_eq!(c.pulsar.address, "pulsar://pulsar:6650");
}

#[test]
fn several_endpoints_in_env_and_as_a_yaml_list() {
    let l = load(
        None,
        &env(&[("ETCD_ENDPOINTS", "a:2379, http://b:2379,c:2379")]),
    )
    .unwrap();
    assert_eq!(l.config.etcd.endpoints, vec!["a:2379", "b:2379", "c:2379"]);
    let l = with_file("etcd:\n  endpoints:\n    - x:1\n    - y:2\n", &[]).unwrap();
    assert_eq!(l.config.etcd.endpoints, vec!["x:1", "y:2"]);
}

#[test]
fn milvus_conf_prefix_is_accepted_and_wins() {
    let l = load(
        None,
        &env(&[
            ("MILVUS_CONF_COMMON_SESSION_TTL", "4"),
            ("COMMON_SESSION_TTL", "7"),
        ]),
    )
    .unwrap();
    assert_eq!(l.config.session.ttl, Duration::from_secs(4));
    assert_eq!(
        setting(&l, "common.session.ttl").source,
        Source::Env("MILVUS_CONF_COMMON_SESSION_TTL".into())
    );
}

#[test]
fn both_spellings_of_the_ha_switch() {
    let l = with_file("queryCoord:\n  activeStandby:\n    enabled: true\n", &[]).unwrap();
    assert!(l.config.role(Role::QueryCoord).active_standby);
    // A file that enables one spelling while the other stays at false: enabled.
    let l = with_file(
        "dataCoord:\n  enableActiveStandby: false\n  activeStandby:\n    enabled: true\n",
        &[],
    )
    .unwrap();
    assert!(l.config.role(Role::DataCoord).active_standby);
    // The environment beats the file.
    let l = with_file(
        "indexCoord:\n  activeStandby:\n    enabled: true\n",
        &[("INDEX_COORD_ENABLE_ACTIVE_STANDBY", "false")],
    )
    .unwrap();
    assert!(!l.config.role(Role::IndexCoord).active_standby);
}

#[test]
fn file_then_env_precedence_and_sources() {
    let l = with_file(
        "rootCoord:\n  port: 53001\n  enableActiveStandby: true\n",
        &[("ROOT_COORD_PORT", "53002")],
    )
    .unwrap();
    assert_eq!(l.config.role(Role::RootCoord).port, 53002);
    assert_eq!(
        setting(&l, "rootCoord.enableActiveStandby").source,
        Source::File("milvus.yaml".into())
    );
}

#[test]
fn user_yaml_layers_over_milvus_yaml_and_env_over_both() {
    let base = "rootCoord:\n  port: 53001\nlog:\n  level: warn\nproxy:\n  port: 19540\n";
    let user = "rootCoord:\n  port: 53005\n  activeStandby:\n    enabled: true\n";
    let l = load_layers(
        &[
            (Path::new("configs/milvus.yaml"), base),
            (Path::new("configs/user.yaml"), user),
        ],
        &env(&[("PROXY_PORT", "19541")]),
    )
    .unwrap();
    assert_eq!(l.config.role(Role::RootCoord).port, 53005);
    assert!(l.config.role(Role::RootCoord).active_standby);
    assert_eq!(l.config.role(Role::Proxy).port, 19541);
    assert_eq!(
        setting(&l, "rootCoord.port").source,
        Source::File("configs/user.yaml".into())
    );
    assert_eq!(
        setting(&l, "log.level").source,
        Source::File("configs/milvus.yaml".into())
    );
    assert_eq!(l.file.as_deref(), Some(Path::new("configs/milvus.yaml")));
    assert_eq!(l.overlay.as_deref(), Some(Path::new("configs/user.yaml")));
    // A bad value in the overlay names the overlay.
    let e = load_layers(
        &[
            (Path::new("configs/milvus.yaml"), base),
            (Path::new("configs/user.yaml"), "rootCoord:\n  port: nope\n"),
        ],
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("configs/user.yaml"), "{e}");
}

#[test]
fn yaml_syntax_error_names_file_line_and_column() {
    let e = with_file("etcd:\n  endpoints: [a:1\nrootCoord:\n  port: 1\n", &[]).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, ConfigError::Syntax { line, .. } if line > 0),
        "{msg}"
    );
    assert!(
        msg.contains("milvus.yaml") && msg.contains("line") && msg.contains("column"),
        "{msg}"
    );
}

#[test]
fn wrong_port_names_key_value_and_expectation() {
    let msg = with_file("rootCoord:\n  port: abc\n", &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("rootCoord.port"), "{msg}");
    assert!(msg.contains("\"abc\""), "{msg}");
    assert!(msg.contains("expected a port number 1-65535"), "{msg}");
    let msg = load(None, &env(&[("PROXY_PORT", "70000")]))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("env PROXY_PORT") && msg.contains("proxy.port"),
        "{msg}"
    );
}

#[test]
fn empty_endpoint_list_is_rejected() {
    let msg = with_file("etcd:\n  endpoints: []\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("etcd.endpoints") && msg.contains("empty"),
        "{msg}"
    );
    let msg = load(None, &env(&[("ETCD_ENDPOINTS", " , ")]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("etcd.endpoints"), "{msg}");
    let msg = load(None, &env(&[("ETCD_ENDPOINTS", "nohost")]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("host:port"), "{msg}");
}

#[test]
fn ttl_below_two_seconds_is_rejected() {
    let msg = with_file("common:\n  session:\n    ttl: 1\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("common.session.ttl") && msg.contains("at least 2"),
        "{msg}"
    );
}

#[test]
fn bad_bool_and_log_level() {
    let msg = load(
        None,
        &env(&[("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "yes please")]),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("expected true or false"), "{msg}");
    let msg = with_file("log:\n  level: loud\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("log.level") && msg.contains("debug, info"),
        "{msg}"
    );
}

#[test]
fn top_level_must_be_a_mapping() {
    let e = with_file("- a\n- b\n", &[]).unwrap_err();
    assert!(matches!(e, ConfigError::NotAMapping(_)), "{e}");
    assert!(with_file("", &[]).is_ok());
}

#[test]
fn env_names_for_messages() {
    assert_eq!(
        keys::env_name("rootCoord.enableActiveStandby"),
        "ROOT_COORD_ENABLE_ACTIVE_STANDBY"
    );
    assert_eq!(keys::env_name("etcd.endpoints"), "ETCD_ENDPOINTS");
    assert_eq!(keys::env_name("common.session.ttl"), "COMMON_SESSION_TTL");
}

#[test]
fn data_plane_defaults_and_environment() {
    let c = load(None, &[]).unwrap().config;
    assert_eq!(c.storage.kind, StorageKind::Local);
    assert_eq!(c.storage.local_path, PathBuf::from("/var/lib/milvus/data/"));
    assert_eq!(c.storage.root_path, "files");
    assert_eq!(c.log.address, "nats://127.0.0.1:4222");
    assert_eq!(
        (
            c.log.dml_channels,
            c.log.cluster_prefix.as_str(),
            c.log.dml_prefix.as_str()
        ),
        (16, "by-dev", "rootcoord-dml")
    );
    assert_eq!(c.segment.max_size_mb, 1024);
    assert_eq!(c.graceful_time, Duration::from_secs(5));
    let c = load(
        None,
        &env(&[
            ("COMMON_STORAGE_TYPE", "minio"),
            ("MINIO_ADDRESS", "minio.svc"),
            ("MINIO_BUCKET_NAME", "b2"),
            ("NATSMQ_ADDRESS", "nats://nats.svc:4222"),
            ("MQ_TYPE", "natsmq"),
        ]),
    )
    .unwrap()
    .config;
    assert_eq!(c.storage.kind, StorageKind::S3);
    assert_eq!(
        (c.storage.s3.address.as_str(), c.storage.s3.bucket.as_str()),
        ("minio.svc", "b2")
    );
    assert_eq!(c.log.address, "nats://nats.svc:4222");
}

#[test]
fn unsupported_queue_storage_type_and_proportion_are_refused() {
    let msg = with_file("mq:\n  type: pulsar\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("mq.type") && msg.contains("\"pulsar\"") && msg.contains("natsmq"),
        "{msg}"
    );
    let msg = load(None, &env(&[("COMMON_STORAGE_TYPE", "azure")]))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("common.storageType") && msg.contains("local, minio or remote"),
        "{msg}"
    );
    let msg = with_file("dataCoord:\n  segment:\n    sealProportion: 2\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("dataCoord.segment.sealProportion") && msg.contains("at most 1"),
        "{msg}"
    );
}

#[test]
fn grpc_sizes_have_milvus_defaults_per_role_then_the_grpc_section() {
    let l = load(None, &[]).unwrap();
    let proxy = l.config.role(Role::Proxy).grpc;
    assert_eq!(proxy.server_max_recv, 64 << 20);
    assert_eq!(proxy.server_max_send, 256 << 20);
    let qn = l.config.role(Role::QueryNode).grpc;
    assert_eq!(qn, GrpcLimits::default());
    // grpc.* applies where a role's own key is not set; the role's key wins.
    let l = with_file(
        "grpc:\n  serverMaxRecvSize: 1048576\nproxy:\n  grpc:\n    serverMaxRecvSize: 2097152\n",
        &[],
    )
    .unwrap();
    assert_eq!(l.config.role(Role::Proxy).grpc.server_max_recv, 2 << 20);
    assert_eq!(l.config.role(Role::DataNode).grpc.server_max_recv, 1 << 20);
    let l = load(
        None,
        &env(&[("QUERY_NODE_GRPC_CLIENT_MAX_SEND_SIZE", "4096")]),
    )
    .unwrap();
    assert_eq!(l.config.role(Role::QueryNode).grpc.client_max_send, 4096);
    // Out of range or not a number: refused, naming the key and what is expected.
    for bad in ["0", "12", "-5", "3000000000", "big"] {
        let e = load(None, &env(&[("PROXY_GRPC_SERVER_MAX_RECV_SIZE", bad)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("proxy.grpc.serverMaxRecvSize") && e.contains("from 1024 to 2147483647"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn links_to_etcd_nats_and_s3_are_plain_until_their_keys_say_otherwise() {
    let c = load(None, &[]).unwrap().config;
    assert_eq!((c.etcd.tls.clone(), c.etcd.auth.clone()), (None, None));
    assert_eq!((c.log.tls.clone(), c.log.auth.clone()), (None, None));
    assert_eq!(c.storage.s3.ca_cert, None);
    assert!(!c.security.internal_tls.enabled);
    assert_eq!(c.security.internal_tls.sni, "localhost");

    let c = load(
        None,
        &env(&[
            ("ETCD_SSL_ENABLED", "true"),
            ("ETCD_SSL_TLSCACERT", "/c/ca.pem"),
            ("ETCD_SSL_TLSCERT", "/c/client.pem"),
            ("ETCD_SSL_TLSKEY", "/c/client.key"),
            ("ETCD_AUTH_ENABLED", "true"),
            ("ETCD_AUTH_USERNAME", "root"),
            ("ETCD_AUTH_PASSWORD", "s3cret"),
            ("ETCD_ENDPOINTS", "https://e1:2379"),
            ("NATSMQ_USERNAME", "milvus"),
            ("NATSMQ_PASSWORD", "n-pw"),
            ("NATSMQ_TLS_ENABLED", "true"),
            ("NATSMQ_TLS_CA_PEM_PATH", "/c/ca.pem"),
            ("MINIO_SSL_TLSCACERT", "/c/ca.pem"),
            ("COMMON_SECURITY_INTERNALTLS_ENABLED", "true"),
        ]),
    )
    .unwrap()
    .config;
    let tls = c.etcd.tls.clone().unwrap();
    assert_eq!(tls.ca, Path::new("/c/ca.pem"));
    assert_eq!(
        tls.identity,
        Some(("/c/client.pem".into(), "/c/client.key".into()))
    );
    assert_eq!(c.etcd.endpoints, vec!["e1:2379"]);
    let auth = c.etcd.auth.clone().unwrap();
    assert_eq!(
        (auth.user.as_str(), auth.password.as_str()),
        ("root", "s3cret")
    );
    // Passwords never reach debug output (dry-run, logs).
    let shown = format!("{:?} {:?}", c.etcd, c.log);
    assert!(
        !shown.contains("s3cret") && !shown.contains("n-pw"),
        "{shown}"
    );
    assert_eq!(c.log.auth.clone().unwrap().user, "milvus");
    let nats = c.log.tls.clone().unwrap();
    assert_eq!((nats.ca, nats.identity), (Some("/c/ca.pem".into()), None));
    assert_eq!(c.storage.s3.ca_cert, Some("/c/ca.pem".into()));
    assert!(c.security.internal_tls.enabled);

    // A tls:// address asks for TLS: its CA counts without natsmq.tls.enabled.
    let c = load(
        None,
        &env(&[
            ("NATSMQ_ADDRESS", "tls://nats:4222"),
            ("NATSMQ_TLS_CA_PEM_PATH", "/c/ca.pem"),
        ]),
    )
    .unwrap()
    .config;
    assert_eq!(c.log.tls.unwrap().ca, Some("/c/ca.pem".into()));
}

#[test]
fn half_given_tls_and_auth_settings_name_the_missing_key() {
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("NATSMQ_PASSWORD", "pw")], "natsmq.username"),
        (&[("ETCD_SSL_ENABLED", "true")], "etcd.ssl.tlsCACert"),
        (
            &[
                ("ETCD_SSL_ENABLED", "true"),
                ("ETCD_SSL_TLSCACERT", "/ca"),
                ("ETCD_SSL_TLSCERT", "/cert"),
            ],
            "etcd.ssl.tlsKey",
        ),
        (&[("ETCD_AUTH_ENABLED", "true")], "etcd.auth.userName"),
        (
            &[
                ("NATSMQ_TLS_ENABLED", "true"),
                ("NATSMQ_TLS_CLIENT_KEY_PATH", "/k"),
            ],
            "natsmq.tls.clientPemPath",
        ),
    ];
    for (vars, key) in cases {
        let e = load(None, &env(vars)).unwrap_err().to_string();
        assert!(e.contains(key), "{vars:?}: {e}");
    }
}

#[test]
fn an_index_build_s_nice_value_is_0_to_19() {
    assert_eq!(load(None, &[]).unwrap().config.segment.build_nice, 10);
    let l = load(None, &env(&[("INDEX_NODE_BUILD_NICE", "0")])).unwrap();
    assert_eq!(l.config.segment.build_nice, 0);
    for bad in ["20", "-1", "low"] {
        let e = load(None, &env(&[("INDEX_NODE_BUILD_NICE", bad)]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("indexNode.buildNice") && e.contains("expected a nice value 0-19"),
            "{bad}: {e}"
        );
    }
}
