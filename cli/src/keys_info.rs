//! `veil keys info <file>`: what a key file holds: kind, shape, format version, the constraint-
//! system hash in its header and whether it matches this build's circuit, the circuit's
//! constraint count, and for a verifying key its identity (SHA-256 of the whole vk file).

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;
use veil_prover::keys::{self, KeyKind};

use crate::util;

/// `veil keys ...`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Describe a key file.
    Info(Args),
}

/// Arguments of `veil keys info`.
#[derive(clap::Args)]
pub struct Args {
    /// A `pk-B{B}-D{D}.bin` or `vk-B{B}-D{D}.bin` file.
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Info {
    file: String,
    kind: &'static str,
    format_version: u16,
    batch_size: u32,
    depth: u32,
    file_bytes: u64,
    shape_hash: String,
    shape_hash_matches_build: bool,
    constraints: usize,
    public_inputs: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    vk_sha256: Option<String>,
}

/// Runs `veil keys`.
pub fn run(cmd: Command) -> Result<std::process::ExitCode> {
    match cmd {
        Command::Info(args) => info(args),
    }
}

fn info(args: Args) -> Result<std::process::ExitCode> {
    let header = keys::read_header(&args.file)?;
    let shape = util::shape(header.batch_size as usize, header.depth as usize)
        .with_context(|| format!("{}: header", args.file.display()))?;
    let file_bytes = std::fs::metadata(&args.file)
        .with_context(|| format!("cannot stat {}", args.file.display()))?
        .len();
    // A verifying key is small: decode it fully, so a corrupt body is reported.
    let vk_sha256 = match header.kind {
        KeyKind::Verifying => Some(keys::load_verifying_key(&args.file, shape)?.sha256),
        KeyKind::Proving => None,
    };
    let pb = util::spinner(format!("synthesising the {shape} circuit"));
    let dir = args.file.parent().unwrap_or(std::path::Path::new("."));
    let r1cs = veil_prover::r1cs::R1cs::cached(dir, shape);
    pb.finish_and_clear();
    let info = Info {
        file: args.file.display().to_string(),
        kind: match header.kind {
            KeyKind::Proving => "proving",
            KeyKind::Verifying => "verifying",
        },
        format_version: header.version,
        batch_size: header.batch_size,
        depth: header.depth,
        file_bytes,
        shape_hash: hex::encode(header.shape_hash),
        shape_hash_matches_build: r1cs.hash() == header.shape_hash,
        constraints: r1cs.num_constraints(),
        public_inputs: r1cs.num_instance_variables() - 1,
        vk_sha256,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("{}", info.file);
        println!("  kind            {} key", info.kind);
        println!("  format version  {}", info.format_version);
        println!(
            "  shape           B = {}, D = {}",
            info.batch_size, info.depth
        );
        println!(
            "  shape hash      {} ({})",
            info.shape_hash,
            if info.shape_hash_matches_build {
                "matches this build's circuit"
            } else {
                "DIFFERS from this build's circuit: regenerate with `veil setup`"
            }
        );
        println!("  constraints     {}", info.constraints);
        println!("  public inputs   {}", info.public_inputs);
        println!("  file size       {} bytes", info.file_bytes);
        if let Some(h) = &info.vk_sha256 {
            println!("  vk sha256       {h}");
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
