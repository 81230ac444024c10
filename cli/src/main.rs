//! The `veil` command-line tool: circuit inspection, Groth16 setup and key inspection, batch
//! proving and verification, and deterministic demo batches and fixtures; the node, the wallet,
//! operator deposits and batch download for verification; Bitcoin anchor status and the
//! whole-chain audit against Bitcoin; a node data directory restored from Bitcoin alone.
//!
//! Exit status: 0 success, 1 `veil verify` found the proof invalid or `veil verify-chain` (or
//! `veil restore`) found problems, 2 any error (one line `error: ...` on stderr).

mod anchor;
mod circuit_info;
mod demo;
mod deposit;
mod dev_batches;
mod dev_token;
mod export;
mod fetch_batch;
mod fixtures;
mod jobs;
mod keys_info;
mod node;
mod prove;
mod prover_worker;
mod restore;
mod setup;
mod util;
mod verify;
mod verify_chain;
mod verify_from_bitcoin;
mod wallet;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Veil: a zero-knowledge validity rollup for private payments on Bitcoin.
#[derive(Parser)]
#[command(name = "veil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sequencer node (HTTP API, storage, batching, proving).
    Node(Box<node::Args>),
    /// The wallet: keys, scanning, balances, payments and withdrawals.
    Wallet(wallet::Args),
    /// Operator: credit a Bitcoin deposit to a payment address.
    Deposit(deposit::Args),
    /// Download a proven batch from a node as batch and proof files for `veil verify`.
    FetchBatch(fetch_batch::Args),
    /// Bitcoin anchors of a node's batches.
    #[command(subcommand)]
    Anchor(anchor::Command),
    /// Audit a node's whole history: every proof (one multi-pairing), the root chain, and each
    /// batch's anchor on Bitcoin (exit 0 all good, 1 problems, one line each; 2 errors).
    VerifyChain(verify_chain::Args),
    /// The escape hatch: write a node data directory from Bitcoin alone (the chain of anchors
    /// from the genesis outpoint, every envelope, every proof verified; exit 1 with one line
    /// per problem when the chain is not a valid history).
    Restore(restore::Args),
    /// Constraint counts of the batch circuit, in total, per transfer and per sub-circuit.
    CircuitInfo(circuit_info::Args),
    /// Groth16 setup of one shape: writes pk-B{B}-D{D}.bin and vk-B{B}-D{D}.bin.
    Setup(setup::Args),
    /// Inspect key files.
    #[command(subcommand)]
    Keys(keys_info::Command),
    /// Prove a batch file (with witness) and write a proof file.
    Prove(prove::Args),
    /// Verify a proof file against a verifying key and a batch file (exit 0 valid, 1 invalid,
    /// 2 bad input).
    Verify(verify::Args),
    /// Write the batches of the deterministic demo history as batch files with witnesses.
    DevBatches(dev_batches::Args),
    /// Regenerate the committed regression fixtures (INSECURE dev keys, deterministic proofs).
    Fixtures(fixtures::Args),
    /// Prove batches from the node's PostgreSQL job queue (run on as many machines as needed).
    ProverWorker(Box<prover_worker::Args>),
    /// The proving job queue: `veil jobs status`.
    #[command(subcommand)]
    Jobs(jobs::Command),
    /// The circuit and witnesses in the circom ecosystem's formats (snarkjs, rapidsnark).
    #[command(subcommand)]
    Export(export::Command),
    /// The whole story on a throwaway node: two wallets, a deposit, a private payment, a
    /// withdrawal, `verify-chain`; on a throwaway regtest Bitcoin Core when a bitcoind is found
    /// (anchors, a peg-in and a peg-out); a summary table at the end.
    Demo(demo::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
                // arkworks' gadgets open `r1cs` spans whose fields Debug-print the whole
                // constraint system: at `info` that took 22 GB while a key was being checked.
                .add_directive("r1cs=off".parse().expect("a valid directive")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CircuitInfo(args) => circuit_info::run(args).map(|()| ExitCode::SUCCESS),
        Command::Setup(args) => setup::run(args),
        Command::Keys(cmd) => keys_info::run(cmd),
        Command::Prove(args) => prove::run(args),
        Command::Verify(args) => verify::run(args),
        Command::DevBatches(args) => dev_batches::run(args),
        Command::Fixtures(args) => fixtures::run(args),
        Command::Node(args) => node::run(*args),
        Command::Wallet(args) => wallet::run(args),
        Command::Deposit(args) => deposit::run(args),
        Command::FetchBatch(args) => fetch_batch::run(args),
        Command::Anchor(cmd) => anchor::run(cmd),
        Command::VerifyChain(args) => verify_chain::run(args),
        Command::Restore(args) => restore::run(args),
        Command::ProverWorker(args) => prover_worker::run(*args),
        Command::Jobs(cmd) => jobs::run(cmd),
        Command::Export(cmd) => export::run(cmd),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", util::one_line(&e));
            ExitCode::from(2)
        }
    }
}
