//! A network partition of one process on loopback: the process is put into a `net_cls`
//! cgroup (v1) of its own with a class ID, and one iptables rule drops every packet that
//! class sends (`-o lo -m cgroup --cgroup ID`). Attaching a process to a `net_cls` group
//! re-tags the sockets it already has, so its open connections (to etcd, from clients)
//! fall silent as well as new ones: nothing it sends arrives, and nobody sees a close or a
//! reset, which is what a cut network looks like. Healing removes the rule and moves the
//! process back; its connections then carry on (or time out) as after a real partition.
//!
//! Only the project's own processes are touched: the rule matches the class of the cgroup
//! made here, which holds the one pid given. Needs root, iptables and a kernel with
//! `net_cls` (the machine's `/proc/cgroups`); the hierarchy is mounted at
//! `/sys/fs/cgroup/net_cls` when it is not mounted yet. A machine without them fails the
//! caller with a message saying which.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where the `net_cls` hierarchy is (or is mounted).
const MOUNT: &str = "/sys/fs/cgroup/net_cls";

/// Class IDs handed out here: major 0x4d43 ("MC"), minor counting up per partition.
static NEXT: AtomicU32 = AtomicU32::new(1);

/// A process cut off; healed when dropped.
pub struct Partition {
    pid: i32,
    classid: String,
    group: PathBuf,
    healed: bool,
}

impl Partition {
    /// Cuts `pid` off. Panics with what is missing when this machine cannot.
    pub fn isolate(pid: i32) -> Partition {
        let root = mount();
        let minor = NEXT.fetch_add(1, Ordering::SeqCst) + (std::process::id() % 0x1000) * 0x10;
        let classid = format!("0x4d43{:04x}", minor & 0xffff);
        let group = root.join(format!("milvus-partition-{}-{minor}", std::process::id()));
        std::fs::create_dir_all(&group)
            .unwrap_or_else(|e| panic!("partition: cannot make {}: {e}", group.display()));
        write(&group.join("net_cls.classid"), &classid);
        let p = Partition {
            pid,
            classid,
            group,
            healed: false,
        };
        iptables("-I", &p.classid);
        write(&p.group.join("cgroup.procs"), &pid.to_string());
        p
    }

    /// Lets the process talk again.
    pub fn heal(mut self) {
        self.undo();
    }

    fn undo(&mut self) {
        if std::mem::replace(&mut self.healed, true) {
            return;
        }
        let _ = std::fs::write(Path::new(MOUNT).join("cgroup.procs"), self.pid.to_string());
        let _ = Command::new("iptables")
            .args(rule("-D", &self.classid))
            .status();
        let _ = std::fs::remove_dir(&self.group);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.undo();
    }
}

/// The `net_cls` hierarchy's root, mounted if need be.
fn mount() -> PathBuf {
    let root = PathBuf::from(MOUNT);
    if root.join("net_cls.classid").exists() {
        return root;
    }
    let cgroups = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    assert!(
        cgroups.lines().any(|l| l.starts_with("net_cls\t")),
        "partition: this kernel has no net_cls cgroup controller (/proc/cgroups)"
    );
    let _ = std::fs::create_dir_all(&root);
    let out = Command::new("mount")
        .args(["-t", "cgroup", "-o", "net_cls", "net_cls", MOUNT])
        .output()
        .unwrap_or_else(|e| panic!("partition: cannot run mount: {e}"));
    assert!(
        root.join("net_cls.classid").exists(),
        "partition: cannot mount the net_cls cgroup at {MOUNT} (root needed): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    root
}

fn rule<'a>(op: &'a str, classid: &'a str) -> [&'a str; 10] {
    [
        op, "OUTPUT", "-o", "lo", "-m", "cgroup", "--cgroup", classid, "-j", "DROP",
    ]
}

fn iptables(op: &str, classid: &str) {
    let out = Command::new("iptables")
        .args(rule(op, classid))
        .output()
        .unwrap_or_else(|e| panic!("partition: iptables not found ({e}); Debian package iptables"));
    assert!(
        out.status.success(),
        "partition: iptables {op} failed (root and the xt_cgroup match needed): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text)
        .unwrap_or_else(|e| panic!("partition: cannot write {}: {e}", path.display()));
}
