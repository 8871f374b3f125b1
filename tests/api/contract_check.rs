//! scripts/contract-check: skipped with one line in a clone without the
//! shared contract (required under CI), and strict about its pending list.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the check with `check` as the contract's check.py and `pending` as its list.
fn contract_check(check: &Path, pending: &Path, ci: bool) -> Output {
    let mut command = Command::new("scripts/contract-check");
    command
        .env("CONTRACT_CHECK", check)
        .env("CONTRACT_PENDING", pending)
        .env_remove("CI");
    if ci {
        command.env("CI", "true");
    }
    command.output().expect("scripts/contract-check runs")
}

/// A stand-in for the shared check.py that reports these incompatibilities.
fn fake_check(dir: &Path, reported: &[&str]) -> std::path::PathBuf {
    let mut script = String::from("import sys\n");
    for line in reported {
        script.push_str(&format!("print('contract: {line}')\n"));
    }
    script.push_str(&format!(
        "print('contract: {} incompatibilities with contract.graphql')\nsys.exit({})\n",
        reported.len(),
        u8::from(!reported.is_empty())
    ));
    let path = dir.join("check.py");
    std::fs::write(&path, script).unwrap();
    path
}

fn pending(dir: &Path, lines: &str) -> std::path::PathBuf {
    let path = dir.join("pending.txt");
    std::fs::write(&path, lines).unwrap();
    path
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("contract-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn without_the_shared_contract_the_check_is_skipped_with_one_line_outside_ci_and_fails_under_ci() {
    let dir = scratch("absent");
    let absent = dir.join("shared/contract/check.py");
    let list = pending(&dir, "");

    let lone = contract_check(&absent, &list, false);
    assert!(lone.status.success(), "a lone clone goes on: {}", text(&lone.stderr));
    let out = text(&lone.stdout);
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(out.contains("skipped") && out.contains("not found"), "says why: {out}");

    let ci = contract_check(&absent, &list, true);
    assert!(!ci.status.success(), "CI requires the contract");
    assert!(text(&ci.stderr).contains("not found"));
}

#[test]
fn the_check_fails_on_an_incompatibility_not_pending_and_on_a_pending_line_no_longer_reported() {
    let dir = scratch("pending");
    let check = fake_check(&dir, &["FIELD_REMOVED: Mutation.a was removed."]);

    let listed = pending(&dir, "# a comment\nFIELD_REMOVED: Mutation.a was removed.\n");
    let out = contract_check(&check, &listed, true);
    assert!(out.status.success(), "listed: {}", text(&out.stderr));

    let unlisted = pending(&dir, "");
    let out = contract_check(&check, &unlisted, true);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not pending: FIELD_REMOVED: Mutation.a was removed."));

    let stale = pending(
        &dir,
        "FIELD_REMOVED: Mutation.a was removed.\nTYPE_REMOVED: B was removed.\n",
    );
    let out = contract_check(&check, &stale, true);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no longer reported (remove the line): TYPE_REMOVED: B was removed."));
}
