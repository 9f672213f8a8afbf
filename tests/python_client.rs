//! pymilvus 2.5.18 against the proxy, also through rootcoord failovers. The Python side
//! is `tests/python/pymilvus_client.py`; `scripts/test.sh` prepares `.venv` with pymilvus
//! and exports `MILVUS_TEST_PYTHON`.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::Cluster;
use milvus::testkit::{python, wait_until, Milvus, Spawned};
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/pymilvus_client.py")
}

/// An HA rootcoord pair and a proxy.
fn cluster() -> (Cluster, Vec<Milvus>, Milvus) {
    common::ha_pair_and_proxy(2)
}

/// Starts the script in `mode` against proxy `p` for `seconds`, and waits until its
/// first call was answered.
fn spawn_script(mode: &str, p: &Milvus, seconds: &str) -> Spawned {
    let script = script();
    let uri = format!("http://127.0.0.1:{}", p.port);
    let mut client = Spawned::start(
        &python(),
        &[script.to_str().expect("UTF-8 path"), mode, &uri, seconds],
    );
    client.wait_started(30 * SEC);
    client
}

/// How many collections `create_nonstop` says it created so far.
fn created(client: &Spawned) -> usize {
    client
        .output()
        .lines()
        .filter(|l| l.starts_with("created "))
        .count()
}

/// Waits for the script; asserts it succeeded (`what` says what a failure means) and
/// returns its output.
fn finish(client: Spawned, p: &Milvus, what: &str) -> String {
    let (ok, text) = client.finish();
    println!("{text}");
    assert!(ok, "{what}:\n{text}\nproxy log:\n{}", p.log());
    text
}

#[test]
fn pymilvus_basic_operations() {
    let (_c, _rcs, p) = cluster();
    let out = Command::new(python())
        .arg(script())
        .args(["basic", &format!("http://127.0.0.1:{}", p.port)])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "pymilvus checks failed:\n{text}\nproxy log:\n{}",
        p.log()
    );
    assert!(text.contains("basic: all checks passed"), "{text}");
}

#[test]
fn pymilvus_keeps_working_through_a_crash_and_a_stop_of_the_active_rootcoord() {
    let (c, mut rcs, p) = cluster();
    let client = spawn_script("failover", &p, "12");
    // Crash the active; the standby takes over within the TTL.
    let i = rcs
        .iter()
        .position(|r| r.state().as_deref() == Some("Healthy"))
        .unwrap();
    rcs[i].signal(Signal::SIGKILL);
    rcs.remove(i);
    assert!(rcs[0].wait_state("Healthy", 5 * SEC));
    rcs.push(c.rootcoord_ha());
    assert!(rcs[1].wait_state("StandBy", 10 * SEC));
    // Stop the new active; the new standby takes over at once.
    rcs[0].signal(Signal::SIGTERM);
    assert!(rcs[1].wait_state("Healthy", 3 * SEC));
    finish(client, &p, "calls failed during the failovers");
}

#[test]
fn pymilvus_creates_nonstop_through_six_crashes_of_the_active_rootcoord() {
    let (c, mut rcs, p) = cluster();
    let client = spawn_script("create_nonstop", &p, "40");
    for kill in 0..6 {
        // Kill the active mid-stream; the standby takes over within the TTL, and the
        // dead one comes back as the new standby.
        let i = rcs
            .iter()
            .position(|r| r.state().as_deref() == Some("Healthy"))
            .unwrap_or_else(|| panic!("no active rootcoord before kill {kill}"));
        rcs[i].signal(Signal::SIGKILL);
        rcs.remove(i);
        assert!(
            rcs[0].wait_state("Healthy", 5 * SEC),
            "kill {kill}: {}",
            rcs[0].log()
        );
        rcs.push(c.rootcoord_ha());
        assert!(rcs[1].wait_state("StandBy", 10 * SEC));
        // Calls go on against the new active before the next kill.
        let made = created(&client);
        assert!(
            wait_until(10 * SEC, || created(&client) > made),
            "no collection created after kill {kill}:\n{}",
            client.output()
        );
    }
    let text = finish(
        client,
        &p,
        "creates failed or names were not listed exactly once",
    );
    assert!(text.contains("\"failures\": []"), "{text}");
}
