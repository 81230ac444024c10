//! The `veil` command-line tool: circuit inspection today; setup, proving, verification, the node
//! and the wallet as they land.

mod circuit_info;

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
    /// Constraint counts of the batch circuit, in total, per transfer and per sub-circuit.
    CircuitInfo(circuit_info::Args),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CircuitInfo(args) => circuit_info::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
