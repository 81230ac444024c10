//! The Veil wallet library: a spending key in a 0600 key file, a JSON state file of owned notes
//! and submitted transfers, scanning of the sequencer's published notes by trial decryption,
//! note selection, and local construction and signing of payments, withdrawals (to a Bitcoin
//! address) and operator deposits, submitted over the node's HTTP API (DESIGN §3–§6, §9).

/// The Bitcoin side of transfers' public fields (`veil_bitcoin::refs`, shared with the node).
pub use veil_bitcoin::refs as btc;
pub mod client;
pub mod fs;
pub mod keyfile;
pub mod select;
pub mod state;
pub mod wait;
pub mod wallet;

pub use client::{ClientError, NodeClient};
pub use keyfile::{KeyFile, KeyFileError};
pub use state::WalletState;
pub use veil_bitcoin::bridge::deposit::{build_deposit, build_deposit_idempotent, DepositError};
pub use wait::{Until, WaitError};
pub use wallet::{Balance, SyncReport, Wallet, WalletError};
