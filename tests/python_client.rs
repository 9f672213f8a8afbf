//! pymilvus 2.5.18 against the proxy, also through rootcoord failovers. The Python side
//! is `tests/python/pymilvus_client.py`; `scripts/test.sh` prepares `.venv` with pymilvus
//! and exports `MILVUS_TEST_PYTHON`.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Cluster;
use milvus::testkit::{python, Milvus};
use nix::sys::signal::Signal;

const SEC: Duration = Duration::from_secs(1);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/pymilvus_client.py")
}

/// An HA rootcoord pair and a proxy.
fn cluster() -> (Cluster, Vec<Milvus>, Milvus) {
    common::ha_pair_and_proxy(2)
}

/// Starts the script in `mode` against proxy `p` for `seconds`.
fn spawn_script(mode: &str, p: &Milvus, seconds: &str) -> Child {
    Command::new(python())
        .arg(script())
        .args([mode, &format!("http://127.0.0.1:{}", p.port), seconds])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the script; asserts it succeeded (`what` says what a failure means) and
/// returns its output.
fn finish(client: Child, p: &Milvus, what: &str) -> String {
    let out = client.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "{what}:\n{text}\nproxy log:\n{}",
        p.log()
    );
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
    std::thread::sleep(3 * SEC);
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
    std::thread::sleep(2 * SEC);
    // Stop the new active; the new standby takes over at once.
    rcs[0].signal(Signal::SIGTERM);
    assert!(rcs[1].wait_state("Healthy", 3 * SEC));
    finish(client, &p, "calls failed during the failovers");
}

#[test]
fn pymilvus_creates_nonstop_through_six_crashes_of_the_active_rootcoord() {
    let (c, mut rcs, p) = cluster();
    let client = Command::new(python())
        .arg(script())
        .args([
            "create_nonstop",
            &format!("http://127.0.0.1:{}", p.port),
            "40",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(2 * SEC);
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
        std::thread::sleep(2 * SEC);
    }
    let text = finish(
        client,
        &p,
        "creates failed or names were not listed exactly once",
    );
    assert!(text.contains("\"failures\": []"), "{text}");
}
