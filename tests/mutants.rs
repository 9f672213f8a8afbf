//! The mutants of `tests/mutants/` (each reintroduces a bug a test exists to catch;
//! `scripts/mutants.sh` runs them) still apply to the tree, so they cannot rot unseen.

use std::process::Command;

#[test]
fn every_mutant_still_applies() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{repo}/scripts/mutants.sh"))
        .arg("--check")
        .current_dir(repo)
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("every one applies"), "{text}");
}
