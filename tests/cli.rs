//! The command line, configuration errors and the process basics, run on the built binary.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{run_cmd, text};
use milvus::testkit::TempDir;

#[test]
fn version_and_help() {
    let d = TempDir::new("cli");
    let o = run_cmd(&["--version"], &[], &d.0);
    assert!(o.status.success());
    assert!(text(&o).contains(env!("CARGO_PKG_VERSION")));
    let o = run_cmd(&["--help"], &[], &d.0);
    assert!(o.status.success());
    let t = text(&o);
    for word in ["run", "stop", "dry-run", "status"] {
        assert!(t.contains(word), "{t}");
    }
}

#[test]
fn unknown_role_exits_2_and_lists_the_roles() {
    let d = TempDir::new("cli");
    let o = run_cmd(&["run", "rootcord"], &[], &d.0);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(t.contains("rootcord"), "{t}");
    for role in [
        "rootcoord",
        "querycoord",
        "datacoord",
        "indexcoord",
        "proxy",
        "querynode",
        "datanode",
        "indexnode",
    ] {
        assert!(t.contains(role), "{t}");
    }
}

#[test]
fn dry_run_shows_values_and_their_sources() {
    let d = TempDir::new("cli");
    let o = run_cmd(
        &["dry-run", "rootcoord"],
        &[
            ("ROOT_COORD_ENABLE_ACTIVE_STANDBY", "true"),
            ("ETCD_AUTH_PASSWORD", "etcd-s3cret"),
        ],
        &d.0,
    );
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    // Secrets are shown as set, never their values.
    assert!(!t.contains("etcd-s3cret"), "{t}");
    assert!(
        t.contains("etcd.auth.password = <hidden> (env ETCD_AUTH_PASSWORD)"),
        "{t}"
    );
    assert!(t.contains("minio.secretAccessKey = <hidden>"), "{t}");
    assert!(
        t.contains("rootCoord.enableActiveStandby = true (env ROOT_COORD_ENABLE_ACTIVE_STANDBY)"),
        "{t}"
    );
    assert!(t.contains("config file: none found"), "{t}");

    std::fs::write(
        d.0.join("milvus.yaml"),
        "rootCoord:\n  enableActiveStandby: true\n",
    )
    .unwrap();
    let o = run_cmd(&["dry-run", "rootcoord"], &[], &d.0);
    let t = text(&o);
    assert!(
        o.status.success(),
        "dry-run with a config file exited {:?}: {t}",
        o.status.code()
    );
    assert!(
        t.contains("rootCoord.enableActiveStandby = true (file milvus.yaml)"),
        "{t}"
    );
    assert!(t.contains("rootCoord.port = 53100 (default)"), "{t}");
}

#[test]
fn config_file_search_order() {
    let d = TempDir::new("cli");
    std::fs::create_dir_all(d.0.join("configs")).unwrap();
    std::fs::create_dir_all(d.0.join("conf")).unwrap();
    std::fs::write(d.0.join("configs/milvus.yaml"), "proxy:\n  port: 1001\n").unwrap();
    let t = text(&run_cmd(&["dry-run", "proxy"], &[], &d.0));
    assert!(
        t.contains("proxy.port = 1001 (file configs/milvus.yaml)"),
        "{t}"
    );
    std::fs::write(d.0.join("milvus.yaml"), "proxy:\n  port: 1002\n").unwrap();
    let t = text(&run_cmd(&["dry-run", "proxy"], &[], &d.0));
    assert!(t.contains("proxy.port = 1002 (file milvus.yaml)"), "{t}");
    std::fs::write(d.0.join("conf/milvus.yaml"), "proxy:\n  port: 1003\n").unwrap();
    let conf = d.0.join("conf").display().to_string();
    let t = text(&run_cmd(
        &["dry-run", "proxy"],
        &[("MILVUSCONF", &conf)],
        &d.0,
    ));
    assert!(t.contains("proxy.port = 1003"), "{t}");
    std::fs::write(d.0.join("x.yaml"), "proxy:\n  port: 1004\n").unwrap();
    let t = text(&run_cmd(
        &["dry-run", "proxy", "--config", "x.yaml"],
        &[("MILVUSCONF", &conf)],
        &d.0,
    ));
    assert!(t.contains("proxy.port = 1004 (file x.yaml)"), "{t}");
    let o = run_cmd(&["dry-run", "proxy", "--config", "missing.yaml"], &[], &d.0);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("missing.yaml does not exist"),
        "{}",
        text(&o)
    );
}

/// Each bad input: `run` exits 2 with the message before touching etcd (none runs here).
#[test]
fn bad_configuration_exits_2_with_a_clear_message() {
    let d = TempDir::new("cli");
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "etcd:\n  endpoints: [a:1\nrootCoord:\n  port: 1\n",
            &[],
            &["milvus.yaml", "line 3", "column"],
        ),
        (
            "rootCoord:\n  port: abc\n",
            &[],
            &[
                "rootCoord.port",
                "\"abc\"",
                "expected a port number 1-65535",
            ],
        ),
        (
            "etcd:\n  endpoints: []\n",
            &[],
            &["etcd.endpoints", "empty"],
        ),
        (
            "common:\n  session:\n    ttl: 1\n",
            &[],
            &["common.session.ttl", "at least 2"],
        ),
        (
            "",
            &[("ROOT_COORD_PORT", "0")],
            &["env ROOT_COORD_PORT", "rootCoord.port"],
        ),
    ];
    for (yaml, env, needles) in cases {
        std::fs::write(d.0.join("milvus.yaml"), yaml).unwrap();
        for cmd in [&["run", "rootcoord"][..], &["dry-run", "rootcoord"][..]] {
            let o = run_cmd(cmd, env, &d.0);
            let t = text(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd:?} with {yaml:?}: {t}");
            for n in *needles {
                assert!(t.contains(n), "{cmd:?} with {yaml:?}: missing {n:?} in {t}");
            }
        }
    }
}

#[test]
fn port_in_use_is_a_clear_error() {
    let d = TempDir::new("cli");
    let busy = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let o = run_cmd(
        &["run", "querynode"],
        &[
            ("QUERY_NODE_PORT", &port),
            ("ETCD_ENDPOINTS", "127.0.0.1:1"),
        ],
        &d.0,
    );
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains(&format!("port {port}"))
            && t.contains("queryNode.port")
            && t.contains("QUERY_NODE_PORT"),
        "{t}"
    );
}

#[test]
fn status_without_etcd_fails_clearly() {
    let d = TempDir::new("cli");
    let port = milvus::testkit::free_port().to_string();
    let ep = format!("127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let o = run_cmd(
        &["status"],
        &[("ETCD_ENDPOINTS", &ep), ("ETCD_REQUEST_TIMEOUT", "1000")],
        &d.0,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains(&format!("cannot read sessions from etcd at {ep}")),
        "{}",
        text(&o)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn stop_with_nothing_running_says_so() {
    let d = TempDir::new("cli");
    let pids = d.0.join("pids").display().to_string();
    let o = run_cmd(&["stop", "datanode"], &[("MILVUS_PID_DIR", &pids)], &d.0);
    assert!(o.status.success());
    assert!(
        text(&o).contains("no datanode process is running"),
        "{}",
        text(&o)
    );
}
