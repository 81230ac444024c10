//! A `veil node` child process for the CLI suites that start their own node
//! (`quickstart.rs`, `dev_token.rs`, and the regtest suites through `support`): spawned from a prepared command with its stderr in a log
//! file, returned once its port accepts connections (a node that exits first, or does not listen
//! in time, fails the test with its log), killed when dropped.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `veil node`.
pub struct NodeProcess {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl NodeProcess {
    /// Runs `cmd` (a `veil node` command) with `--listen 127.0.0.1:<a free port>` appended and
    /// its stderr in `log`; returns once the port accepts connections, within `timeout`.
    pub fn spawn(mut cmd: Command, log: PathBuf, timeout: Duration) -> NodeProcess {
        let port = free_port();
        cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
        Self::spawn_on(cmd, port, log, timeout)
    }

    /// Runs `cmd`, a `veil node` command that listens on `port` (e.g. from its config file),
    /// with its stderr in `log`; returns once the port accepts connections, within `timeout`.
    pub fn spawn_on(mut cmd: Command, port: u16, log: PathBuf, timeout: Duration) -> NodeProcess {
        cmd.stderr(std::fs::File::create(&log).unwrap());
        let mut node = NodeProcess {
            child: cmd.spawn().expect("start veil node"),
            log,
            port,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            node.assert_running();
            assert!(
                start.elapsed() < timeout,
                "node not listening: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The node's log so far, without terminal colour codes.
    pub fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut plain = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC [ parameters final-byte (a letter).
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                plain.push(c);
            }
        }
        plain
    }

    /// Fails the test, with the log, if the node has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("veil node exited with {status}:\n{}", self.log());
        }
    }

    /// The child process (to wait for an exit the test expects, or to signal it).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
