//! One pid file per process, so `milvus stop <role>` can find every process of a role on
//! this host: `<dir>/<role>-<alias>.pid` with `--alias`, else `<dir>/<role>-<pid>.pid`.
//! The directory is `/run/milvus`, else `/tmp/milvus`; `MILVUS_PID_DIR` overrides both.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::role::Role;

/// A pid file removed when dropped.
pub struct PidFile {
    path: PathBuf,
}

/// Pid file errors.
#[derive(Debug, thiserror::Error)]
pub enum PidError {
    /// No usable directory.
    #[error("cannot create a pid file directory ({0})")]
    NoDir(String),
    /// Writing failed.
    #[error("cannot write pid file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Another live process uses the alias.
    #[error("{role} with alias {alias:?} is already running as pid {pid} (pid file {path}); choose another --alias or stop it with `milvus stop {role} --alias {alias}`")]
    AliasInUse {
        /// Role.
        role: Role,
        /// Alias.
        alias: String,
        /// Its pid.
        pid: i32,
        /// The file.
        path: PathBuf,
    },
}

/// The pid file directory, created if needed.
pub fn dir() -> Result<PathBuf, PidError> {
    let candidates: Vec<PathBuf> = match std::env::var_os("MILVUS_PID_DIR") {
        Some(d) => vec![PathBuf::from(d)],
        None => vec![PathBuf::from("/run/milvus"), PathBuf::from("/tmp/milvus")],
    };
    let mut tried = Vec::new();
    for d in candidates {
        if fs::create_dir_all(&d).is_ok() && writable(&d) {
            return Ok(d);
        }
        tried.push(d.display().to_string());
    }
    Err(PidError::NoDir(tried.join(", ")))
}

fn writable(d: &Path) -> bool {
    nix::unistd::access(d, nix::unistd::AccessFlags::W_OK).is_ok()
}

impl PidFile {
    /// Writes this process's pid file.
    pub fn create(role: Role, alias: Option<&str>) -> Result<PidFile, PidError> {
        let dir = dir()?;
        let pid = std::process::id();
        let name = match alias {
            Some(a) => format!("{}-{a}.pid", role.name()),
            None => format!("{}-{pid}.pid", role.name()),
        };
        let path = dir.join(name);
        if let Some(a) = alias {
            if let Some(other) = read_pid(&path).filter(|p| is_milvus_role(*p, role)) {
                return Err(PidError::AliasInUse {
                    role,
                    alias: a.to_string(),
                    pid: other,
                    path,
                });
            }
        }
        fs::write(&path, format!("{pid}\n")).map_err(|e| PidError::Write {
            path: path.clone(),
            source: e,
        })?;
        Ok(PidFile { path })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The pid files of `role` (only the alias's one when given).
pub fn files(role: Role, alias: Option<&str>) -> Vec<PathBuf> {
    let Ok(dir) = dir() else { return Vec::new() };
    if let Some(a) = alias {
        let p = dir.join(format!("{}-{a}.pid", role.name()));
        return if p.exists() { vec![p] } else { Vec::new() };
    }
    let prefix = format!("{}-", role.name());
    let mut out: Vec<PathBuf> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".pid"))
        })
        .collect();
    out.sort();
    out
}

/// The pid in a pid file.
pub fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// True when `pid` is alive and its command line is `... milvus run <role> ...`, so a
/// recycled pid is never signalled.
pub fn is_milvus_role(pid: i32, role: Role) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    let exe_ok = args.first().is_some_and(|a| a.ends_with(b"milvus"));
    let run_at = args.iter().position(|a| *a == b"run");
    exe_ok
        && run_at.is_some_and(|i| {
            args.get(i + 1)
                .is_some_and(|r| *r == role.name().as_bytes())
        })
        && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
