//! Running the `veil` binary under test, shared by the CLI suites (included with `mod` or
//! `#[path]`): [`command`] (without `RUST_LOG`, so the output is only what the command prints),
//! [`veil`] (run it to completion) and [`text`] (its output as lossy UTF-8).

#![allow(dead_code)]

use std::process::{Command, Output};

/// `veil args`, ready to run, with `RUST_LOG` removed from its environment.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veil"));
    cmd.args(args).env_remove("RUST_LOG");
    cmd
}

/// Runs `veil args` to completion.
pub fn veil(args: &[&str]) -> Output {
    command(args).output().expect("run veil")
}

/// Lossy UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
