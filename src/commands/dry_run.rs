//! `milvus dry-run <role>`: the effective configuration, with where each value came from.
//! Secrets (passwords, the S3 secret key) are shown only as set or empty.

use std::io::Write;

use crate::config::Loaded;
use crate::process::advertised_address;
use crate::role::Role;

/// Whether `key` holds a secret: a password or the S3 secret key.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with("password") || k.ends_with("secretaccesskey")
}

/// Writes the report for `role` to `out`.
pub fn print(role: Role, loaded: &Loaded, out: &mut impl Write) -> std::io::Result<()> {
    match &loaded.file {
        Some(p) => writeln!(out, "config file: {}", p.display())?,
        None => writeln!(
            out,
            "config file: none found, built-in defaults and environment only"
        )?,
    }
    if let Some(p) = &loaded.overlay {
        writeln!(out, "config file over it: {}", p.display())?;
    }
    let rc = loaded.config.role(role);
    writeln!(out, "role: {role}")?;
    writeln!(out, "listen port: {}", rc.port)?;
    writeln!(
        out,
        "advertised address: {}",
        advertised_address(&rc.address, rc.port)
    )?;
    if role.is_coordinator() {
        writeln!(
            out,
            "active standby: {}",
            if rc.active_standby {
                "enabled"
            } else {
                "disabled"
            }
        )?;
    }
    writeln!(out, "meta root: {}", loaded.config.etcd.meta_root())?;
    writeln!(out)?;
    let own = format!("{}.", role.section());
    let is_other_role = |key: &str| {
        Role::ALL
            .iter()
            .any(|r| *r != role && key.starts_with(&format!("{}.", r.section())))
    };
    for (key, setting) in &loaded.settings {
        if key.starts_with(&own) || !is_other_role(key) {
            let value = if setting.value.is_empty() {
                "\"\""
            } else if is_secret(key) {
                "<hidden>"
            } else {
                setting.value.as_str()
            };
            writeln!(out, "{key} = {value} ({})", setting.source)?;
        }
    }
    if !loaded.ignored.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{} keys in the file are not used by this binary",
            loaded.ignored.len()
        )?;
    }
    Ok(())
}
