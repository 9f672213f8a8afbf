//! How a component process dies when something inside it goes wrong: at once and whole.
//!
//! A panic anywhere (a request handler, a coordinator's background task, the runtime)
//! is logged with where it happened and then aborts the process (SIGABRT), as Go's
//! unrecovered panics end a Milvus process. Without this, a panic ends only the task it
//! happened on: the process would keep its session alive and its port open while part of
//! it is gone (an active coordinator whose scheduler died would stay ACTIVE until someone
//! noticed, and its standby would never take over). A dead process instead leaves the
//! evidence the fast death detection acts on (§2.8 of docs/architecture.md): its sockets
//! are closed by the kernel and its port refuses, so a standby takes over in milliseconds
//! and a supervisor (Docker's restart policy, Kubernetes) starts it again.
//!
//! **Test faults.** With `MILVUS_TEST_FAULTS=1` in its environment at start, a process
//! also provokes the two crashes the failover benchmark times against a SIGKILL:
//! SIGUSR2 makes a runtime task panic, and SIGUSR1 makes it allocate (and touch) memory
//! without bound, so that the kernel's OOM killer ends it under a memory limit (a memory
//! cgroup). Only someone who sets a process's environment and may signal it can use
//! them: they could kill it anyway. Unset, SIGUSR1 and SIGUSR2 keep their default action.
//!
//! With the test faults on, `MILVUS_TEST_COMPACTION_HOLD_MS` also makes a datanode hold
//! each compaction for that long after its output is written and before its registration
//! txn, so that a crash test can kill it at exactly that moment (output in storage, not
//! in the catalog) instead of racing a merge that may take milliseconds.

use std::panic::PanicHookInfo;

use tokio::signal::unix::{signal, SignalKind};

/// The environment variable that turns the test faults on (value `1` or `true`).
pub const TEST_FAULTS_ENV: &str = "MILVUS_TEST_FAULTS";

/// With the test faults on: how long a datanode holds a written compaction before
/// registering it (milliseconds).
pub const COMPACTION_HOLD_ENV: &str = "MILVUS_TEST_COMPACTION_HOLD_MS";

/// Installs the panic hook: log the panic, then abort the process.
pub fn abort_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        log::error!(thread = std::thread::current().name().unwrap_or("unnamed"),
            location = location(info).as_str(); "panic: {}, aborting the process", message(info));
        log::logger().flush();
        std::process::abort();
    }));
}

fn message(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a value that is not text)".to_string())
}

fn location(info: &PanicHookInfo<'_>) -> String {
    info.location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_else(|| "?".to_string())
}

/// Whether the test faults are on.
pub fn test_faults_enabled() -> bool {
    std::env::var(TEST_FAULTS_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The hold before a compaction's registration, when the test faults are on and ask for
/// one.
pub fn compaction_hold() -> Option<std::time::Duration> {
    if !test_faults_enabled() {
        return None;
    }
    let ms: u64 = std::env::var(COMPACTION_HOLD_ENV).ok()?.parse().ok()?;
    (ms > 0).then(|| std::time::Duration::from_millis(ms))
}

/// Arms the test faults when they are on (call inside the runtime).
pub fn arm_test_faults() -> std::io::Result<()> {
    if !test_faults_enabled() {
        return Ok(());
    }
    let mut panic_on = signal(SignalKind::user_defined2())?;
    let mut grow_on = signal(SignalKind::user_defined1())?;
    log::warn!(env = TEST_FAULTS_ENV; "test faults armed: SIGUSR2 panics, SIGUSR1 allocates without bound");
    tokio::spawn(async move {
        panic_on.recv().await;
        panic!("SIGUSR2 with {TEST_FAULTS_ENV} set: a panic on request");
    });
    tokio::spawn(async move {
        grow_on.recv().await;
        log::warn!("SIGUSR1 with {TEST_FAULTS_ENV} set: allocating until stopped");
        let mut held: Vec<Vec<u8>> = Vec::new();
        loop {
            // Touched, so the pages are really charged to the process.
            held.push(vec![1u8; 16 << 20]);
            tokio::task::yield_now().await;
        }
    });
    Ok(())
}
