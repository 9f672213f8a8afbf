//! A memory limit on one process, so the kernel's OOM killer ends it when it grows past
//! it: the process is moved into a memory cgroup of its own (v1 `memory` hierarchy, or a
//! v2 group where the memory controller is enabled) with a hard limit and no swap.
//!
//! Only the pid given is touched. Needs root and a kernel with the memory controller; a
//! machine without them fails the caller with a message saying which.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A process under a memory limit; the group is removed when dropped (once the process
/// is gone, or after moving it back to the root group).
pub struct MemoryLimit {
    pid: i32,
    root: PathBuf,
    group: PathBuf,
    v2: bool,
}

impl MemoryLimit {
    /// Puts `pid` under a limit of `bytes` (charged from now: memory it already has stays
    /// where it was). Panics with what is missing when this machine cannot.
    pub fn apply(pid: i32, bytes: u64) -> MemoryLimit {
        let (root, v2) = hierarchy();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let group = root.join(format!("milvus-memlimit-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&group)
            .unwrap_or_else(|e| panic!("memlimit: cannot make {}: {e}", group.display()));
        if v2 {
            write(&group.join("memory.max"), &bytes.to_string());
            let _ = std::fs::write(group.join("memory.swap.max"), "0");
        } else {
            write(&group.join("memory.limit_in_bytes"), &bytes.to_string());
            let _ = std::fs::write(group.join("memory.swappiness"), "0");
        }
        write(&group.join("cgroup.procs"), &pid.to_string());
        MemoryLimit {
            pid,
            root,
            group,
            v2,
        }
    }

    /// How many processes the kernel's OOM killer has ended in this group.
    pub fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(self.group.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemoryLimit {
    fn drop(&mut self) {
        let _ = std::fs::write(self.root.join("cgroup.procs"), self.pid.to_string());
        // The group goes once its last process has left (a dead one's charges drain).
        for _ in 0..100 {
            if std::fs::remove_dir(&self.group).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// The memory hierarchy's root and whether it is cgroup v2.
fn hierarchy() -> (PathBuf, bool) {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.join("memory.limit_in_bytes").exists() {
        return (v1.to_path_buf(), false);
    }
    for v2 in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let controllers = std::fs::read_to_string(Path::new(v2).join("cgroup.subtree_control"))
            .unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "memory") {
            return (PathBuf::from(v2), true);
        }
    }
    panic!(
        "memlimit: no memory cgroup controller on this machine (neither /sys/fs/cgroup/memory \
         (v1) nor a cgroup v2 root with `memory` in cgroup.subtree_control); run as root on a \
         kernel with memory cgroups"
    )
}

fn write(path: &Path, value: &str) {
    std::fs::write(path, value).unwrap_or_else(|e| {
        panic!(
            "memlimit: cannot write {value} to {}: {e} (needs root)",
            path.display()
        )
    });
}
