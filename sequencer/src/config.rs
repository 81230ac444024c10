//! Node configuration: a TOML file with defaults for every field, then `VEIL_*` environment
//! overrides (`VEIL_LISTEN`, `VEIL_DATA_DIR`, `VEIL_BATCH_SIZE`, `VEIL_DEPTH`, `VEIL_KEYS_DIR`,
//! `VEIL_MAX_WAIT_MS`, `VEIL_OPERATOR_TOKEN`, `VEIL_NETWORK`, `VEIL_PROVE`).
//!
//! The operator token, when set, must be at least [`MIN_OPERATOR_TOKEN_BYTES`] bytes: an empty or
//! short `operator_token` (TOML) or `VEIL_OPERATOR_TOKEN` (environment) is refused rather than
//! read as "off" or accepted as guessable. Leave it unset to disable the operator endpoints.
//!
//! The `[http]` table (see [`HttpConfig`]) bounds what clients can hold on the HTTP edge: header
//! and body read timeouts, concurrent connections and the request-head size. Its overrides are
//! `VEIL_HTTP_HEADER_TIMEOUT_MS`, `VEIL_HTTP_BODY_TIMEOUT_MS`, `VEIL_HTTP_MAX_CONNECTIONS` and
//! `VEIL_HTTP_MAX_HEAD_BYTES`.
//!
//! Bitcoin anchoring (DESIGN §11) is off unless configured: an `[anchor]` table in the TOML
//! file (see [`AnchorConfig`]), or `VEIL_BITCOIN_RPC_URL` in the environment, which turns it on
//! with defaults for every other key. Its overrides are `VEIL_BITCOIN_RPC_URL`,
//! `VEIL_BITCOIN_RPC_COOKIE`, `VEIL_BITCOIN_RPC_USER`, `VEIL_BITCOIN_RPC_PASSWORD`,
//! `VEIL_BITCOIN_NETWORK`, `VEIL_OPERATOR_KEY_FILE`, `VEIL_ANCHOR_KEY_KIND`,
//! `VEIL_ANCHOR_FEE_RATE`, `VEIL_ANCHOR_CONFIRMATIONS` and `VEIL_ANCHOR_GENESIS`.
//!
//! `prove = false` pauses background proving: batches are still sealed (and stay `batched`),
//! and are proven once the node runs again with `prove = true`. Load benchmarks use it so that
//! the Groth16 prover does not compete with the API for the CPU.
//!
//! The `[proving]` table (see [`ProvingConfig`]) moves proving out of the process: with a
//! `database_url` (or `VEIL_DATABASE_URL`) sealed batches become jobs in PostgreSQL for
//! `veil prover-worker`s, and the node needs only the verifying key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use veil_circuits::batch::BatchShape;
use veil_circuits::Network;

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("parsing config: {0}")]
    Toml(#[from] toml::de::Error),
    /// An environment variable has a bad value.
    #[error("environment variable {name}: {message}")]
    Env {
        /// Variable.
        name: &'static str,
        /// Problem.
        message: String,
    },
    /// Batch size and depth do not form a valid shape.
    #[error("invalid shape: {0}")]
    Shape(String),
    /// A value outside what the node accepts (`key` is the TOML key or environment variable).
    #[error("{key}: {message}")]
    Invalid {
        /// TOML key or environment variable.
        key: &'static str,
        /// Problem.
        message: String,
    },
}

/// Shortest accepted operator token, in bytes.
pub const MIN_OPERATOR_TOKEN_BYTES: usize = 16;

/// The sequencer's configuration.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where the redb database lives.
    pub data_dir: PathBuf,
    /// Transfers per batch `B`.
    pub batch_size: usize,
    /// Tree depth `D`.
    pub depth: usize,
    /// Where Groth16 key files live (used by the caller that loads keys).
    pub keys_dir: PathBuf,
    /// Seal a non-full batch once its oldest transfer waited this long.
    pub max_wait_ms: u64,
    /// Bearer token of the operator endpoints; `None` disables them.
    pub operator_token: Option<String>,
    /// Network (address prefixes).
    pub network: Network,
    /// Prove sealed batches in the background (`false` pauses proving; see the module doc).
    pub prove: bool,
    /// Bitcoin anchoring; `None` (the default) disables it.
    pub anchor: Option<AnchorConfig>,
    /// Limits of the HTTP edge (the `[http]` table).
    pub http: HttpConfig,
    /// Where batches are proven (the `[proving]` table): in this process, or by prover workers
    /// through a PostgreSQL job queue.
    pub proving: ProvingConfig,
}

/// The `[proving]` table. Without `database_url` the node proves in-process (the embedded
/// default); with it, sealed batches become jobs in PostgreSQL that `veil prover-worker`s on
/// any machine claim, and the node verifies each returned proof before storing it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvingConfig {
    /// `postgres://user:password@host:port/db` (or `VEIL_DATABASE_URL`).
    pub database_url: Option<String>,
    /// A running job whose worker has not heartbeaten for this long goes back to the queue.
    pub heartbeat_timeout_ms: u64,
    /// Attempts (worker failures, lost heartbeats, refused proofs) before a job is failed.
    pub max_attempts: u32,
}

impl Default for ProvingConfig {
    fn default() -> Self {
        ProvingConfig {
            database_url: None,
            heartbeat_timeout_ms: 30_000,
            max_attempts: 3,
        }
    }
}

impl std::fmt::Debug for ProvingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvingConfig")
            .field(
                "database_url",
                &self.database_url.as_deref().map(veil_jobs::redact_url),
            )
            .field("heartbeat_timeout_ms", &self.heartbeat_timeout_ms)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl ProvingConfig {
    /// The heartbeat timeout.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_timeout_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if self.heartbeat_timeout_ms < 100 {
            return invalid("proving.heartbeat_timeout_ms", "must be at least 100");
        }
        if self.max_attempts == 0 {
            return invalid("proving.max_attempts", "must be at least 1");
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return invalid(
                    "proving.database_url",
                    "must be a postgres:// or postgresql:// URL",
                );
            }
        }
        Ok(())
    }
}

/// The `[http]` table: how long and how many clients may hold the node's sockets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A request head (request line and headers) must arrive in full within this many
    /// milliseconds of the connection opening or of the previous response; an idle keep-alive
    /// connection is closed after as long.
    pub header_timeout_ms: u64,
    /// A request body must arrive in full within this many milliseconds of its head (and a
    /// response must be taken by the client within as long).
    pub body_timeout_ms: u64,
    /// Concurrent connections; one more is answered `503 too_many_connections` and closed.
    pub max_connections: usize,
    /// Largest request head in bytes (`1024..=65536`); a longer request line is refused with
    /// `414`, longer headers with `431`.
    pub max_head_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 256,
            max_head_bytes: 16 * 1024,
        }
    }
}

impl HttpConfig {
    /// Smallest and largest `max_head_bytes`.
    pub const HEAD_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=65536;

    /// `header_timeout_ms` as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// `body_timeout_ms` as a duration.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if self.header_timeout_ms == 0 {
            return invalid("http.header_timeout_ms", "must be at least 1");
        }
        if self.body_timeout_ms == 0 {
            return invalid("http.body_timeout_ms", "must be at least 1");
        }
        if self.max_connections == 0 || self.max_connections > 1 << 20 {
            return invalid("http.max_connections", "must be in 1..=1048576");
        }
        if !Self::HEAD_BYTES_RANGE.contains(&self.max_head_bytes) {
            return invalid("http.max_head_bytes", "must be in 1024..=65536");
        }
        Ok(())
    }
}

/// The `[anchor]` table: where Bitcoin Core is, the operator key, fees and confirmations.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnchorConfig {
    /// Bitcoin Core JSON-RPC URL (default `http://127.0.0.1:18443`, regtest's port).
    pub rpc_url: String,
    /// Bitcoin Core's `.cookie` file (re-read on every request); or `rpc_user`/`rpc_password`.
    pub rpc_cookie: Option<PathBuf>,
    /// RPC user (with `rpc_password`).
    pub rpc_user: Option<String>,
    /// RPC password (never logged).
    pub rpc_password: Option<String>,
    /// Bitcoin network: `regtest` (default), `signet`, `testnet`, `testnet4` or `mainnet`. The
    /// node refuses to anchor on a Bitcoin Core running another chain.
    pub network: String,
    /// Operator key file (WIF, mode 0600), created if missing; default `DATA_DIR/operator.key`.
    pub key_file: Option<PathBuf>,
    /// How anchors are signed and where change goes: `p2tr` (default) or `p2wpkh`.
    pub key_kind: String,
    /// Fixed fee rate in sat/vB; unset: `estimatesmartfee fee_conf_target`.
    pub fee_rate: Option<u64>,
    /// Confirmation target of the fee estimate, in blocks.
    pub fee_conf_target: u16,
    /// Fee rate (sat/vB) while Bitcoin Core has no estimate (always on a fresh regtest chain).
    pub fallback_fee_rate: u64,
    /// Highest fee rate (sat/vB) a fee bump goes to.
    pub max_fee_rate: u64,
    /// Fee-bump (RBF) an anchor still unconfirmed this many blocks after its broadcast.
    pub bump_after_blocks: u64,
    /// Confirmations after which a batch counts as anchored.
    pub confirmations: u64,
    /// The outpoint (`TXID:VOUT`, locked to the operator key) that batch 0's anchor spends.
    pub genesis: Option<String>,
    /// How often the anchorer polls Bitcoin Core, in milliseconds.
    pub poll_ms: u64,
    /// Longest wait between retries while Bitcoin Core is unreachable, in milliseconds.
    pub retry_max_ms: u64,
    /// Confirmations a peg-in output needs before the node credits it (docs/bridge.md).
    pub deposit_confirmations: u64,
    /// Fee rate (sat/vB) a withdrawal's transfer fee must cover for its output in the anchor.
    pub withdrawal_fee_rate: u64,
    /// Also accept operator-attested deposits (`POST /v1/deposits`) on this Bitcoin node: off by
    /// default, since such deposits are not backed by a peg-in and `verify-chain` flags them
    /// unless given `--allow-attested`. For tests and migrations only.
    pub attested_deposits: bool,
}

impl Default for AnchorConfig {
    fn default() -> Self {
        AnchorConfig {
            rpc_url: "http://127.0.0.1:18443".into(),
            rpc_cookie: None,
            rpc_user: None,
            rpc_password: None,
            network: "regtest".into(),
            key_file: None,
            key_kind: "p2tr".into(),
            fee_rate: None,
            fee_conf_target: 6,
            fallback_fee_rate: 2,
            max_fee_rate: 100,
            bump_after_blocks: 3,
            confirmations: 6,
            genesis: None,
            poll_ms: 10_000,
            retry_max_ms: 60_000,
            deposit_confirmations: 6,
            withdrawal_fee_rate: 10,
            attested_deposits: false,
        }
    }
}

impl std::fmt::Debug for AnchorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnchorConfig")
            .field("rpc_url", &self.rpc_url)
            .field("rpc_cookie", &self.rpc_cookie)
            .field("rpc_user", &self.rpc_user)
            .field(
                "rpc_password",
                &self.rpc_password.as_ref().map(|_| "<redacted>"),
            )
            .field("network", &self.network)
            .field("key_file", &self.key_file)
            .field("key_kind", &self.key_kind)
            .field("fee_rate", &self.fee_rate)
            .field("fee_conf_target", &self.fee_conf_target)
            .field("fallback_fee_rate", &self.fallback_fee_rate)
            .field("max_fee_rate", &self.max_fee_rate)
            .field("bump_after_blocks", &self.bump_after_blocks)
            .field("confirmations", &self.confirmations)
            .field("genesis", &self.genesis)
            .field("poll_ms", &self.poll_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("deposit_confirmations", &self.deposit_confirmations)
            .field("withdrawal_fee_rate", &self.withdrawal_fee_rate)
            .field("attested_deposits", &self.attested_deposits)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("veil-data"),
            batch_size: 16,
            depth: 32,
            keys_dir: PathBuf::from("keys"),
            max_wait_ms: 5_000,
            operator_token: None,
            network: Network::Regtest,
            prove: true,
            anchor: None,
            http: HttpConfig::default(),
            proving: ProvingConfig::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("batch_size", &self.batch_size)
            .field("depth", &self.depth)
            .field("keys_dir", &self.keys_dir)
            .field("max_wait_ms", &self.max_wait_ms)
            .field(
                "operator_token",
                &self.operator_token.as_ref().map(|_| "<redacted>"),
            )
            .field("network", &self.network)
            .field("prove", &self.prove)
            .field("anchor", &self.anchor)
            .field("http", &self.http)
            .field("proving", &self.proving)
            .finish()
    }
}

impl Config {
    /// Parses TOML text (missing keys take defaults; unknown keys and invalid values are errors).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types do not: the operator token's length and the `[http]` limits.
    /// [`Config::from_toml`], [`Config::apply_env`] and [`crate::start`] call it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.operator_token {
            check_operator_token("operator_token", token)?;
        }
        self.proving.validate()?;
        self.http.validate()
    }

    /// Reads a TOML file, then applies the process environment's `VEIL_*` overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut c = Config::from_toml(&text)?;
        c.apply_env(|k| std::env::var(k).ok())?;
        Ok(c)
    }

    /// Applies `VEIL_*` overrides read through `get` (the process environment in [`Config::load`]).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                message: e.to_string(),
            })
        }
        if let Some(v) = get("VEIL_LISTEN") {
            self.listen = parse("VEIL_LISTEN", &v)?;
        }
        if let Some(v) = get("VEIL_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("VEIL_BATCH_SIZE") {
            self.batch_size = parse("VEIL_BATCH_SIZE", &v)?;
        }
        if let Some(v) = get("VEIL_DEPTH") {
            self.depth = parse("VEIL_DEPTH", &v)?;
        }
        if let Some(v) = get("VEIL_KEYS_DIR") {
            self.keys_dir = PathBuf::from(v);
        }
        if let Some(v) = get("VEIL_MAX_WAIT_MS") {
            self.max_wait_ms = parse("VEIL_MAX_WAIT_MS", &v)?;
        }
        if let Some(v) = get("VEIL_DATABASE_URL") {
            self.proving.database_url = Some(v);
        }
        if let Some(v) = get("VEIL_OPERATOR_TOKEN") {
            check_operator_token("VEIL_OPERATOR_TOKEN", &v)?;
            self.operator_token = Some(v);
        }
        if let Some(v) = get("VEIL_PROVE") {
            self.prove = match v.as_str() {
                "1" | "true" => true,
                "0" | "false" => false,
                other => {
                    return Err(ConfigError::Env {
                        name: "VEIL_PROVE",
                        message: format!("expected true or false, got {other:?}"),
                    })
                }
            };
        }
        self.apply_anchor_env(&get)?;
        self.apply_http_env(&get)?;
        if let Some(v) = get("VEIL_NETWORK") {
            self.network = match v.as_str() {
                "regtest" => Network::Regtest,
                "mainnet" => Network::Mainnet,
                other => {
                    return Err(ConfigError::Env {
                        name: "VEIL_NETWORK",
                        message: format!("unknown network {other:?} (regtest or mainnet)"),
                    })
                }
            };
        }
        self.validate()
    }

    fn apply_http_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                message: e.to_string(),
            })
        }
        let h = &mut self.http;
        if let Some(v) = get("VEIL_HTTP_HEADER_TIMEOUT_MS") {
            h.header_timeout_ms = num("VEIL_HTTP_HEADER_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = get("VEIL_HTTP_BODY_TIMEOUT_MS") {
            h.body_timeout_ms = num("VEIL_HTTP_BODY_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = get("VEIL_HTTP_MAX_CONNECTIONS") {
            h.max_connections = num("VEIL_HTTP_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("VEIL_HTTP_MAX_HEAD_BYTES") {
            h.max_head_bytes = num("VEIL_HTTP_MAX_HEAD_BYTES", &v)?;
        }
        Ok(())
    }

    fn apply_anchor_env(
        &mut self,
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                message: e.to_string(),
            })
        }
        if let Some(v) = get("VEIL_BITCOIN_RPC_URL") {
            self.anchor
                .get_or_insert_with(AnchorConfig::default)
                .rpc_url = v;
        }
        let Some(a) = self.anchor.as_mut() else {
            return Ok(());
        };
        if let Some(v) = get("VEIL_BITCOIN_RPC_COOKIE") {
            a.rpc_cookie = (!v.is_empty()).then(|| PathBuf::from(v));
        }
        if let Some(v) = get("VEIL_BITCOIN_RPC_USER") {
            a.rpc_user = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = get("VEIL_BITCOIN_RPC_PASSWORD") {
            a.rpc_password = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = get("VEIL_BITCOIN_NETWORK") {
            a.network = v;
        }
        if let Some(v) = get("VEIL_OPERATOR_KEY_FILE") {
            a.key_file = (!v.is_empty()).then(|| PathBuf::from(v));
        }
        if let Some(v) = get("VEIL_ANCHOR_KEY_KIND") {
            a.key_kind = v;
        }
        if let Some(v) = get("VEIL_ANCHOR_FEE_RATE") {
            a.fee_rate = Some(num("VEIL_ANCHOR_FEE_RATE", &v)?);
        }
        if let Some(v) = get("VEIL_ANCHOR_CONFIRMATIONS") {
            a.confirmations = num("VEIL_ANCHOR_CONFIRMATIONS", &v)?;
        }
        if let Some(v) = get("VEIL_ANCHOR_GENESIS") {
            a.genesis = (!v.is_empty()).then_some(v);
        }
        Ok(())
    }

    /// The circuit shape.
    pub fn shape(&self) -> Result<BatchShape, ConfigError> {
        BatchShape::new(self.batch_size, self.depth).map_err(|e| ConfigError::Shape(e.to_string()))
    }

    /// `max_wait_ms` as a duration.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }
}

/// An operator token must be long enough not to be guessed; empty is not a way to say "off"
/// (leave the key or variable unset for that). The token itself is never part of the error.
fn check_operator_token(key: &'static str, token: &str) -> Result<(), ConfigError> {
    if token.len() >= MIN_OPERATOR_TOKEN_BYTES {
        return Ok(());
    }
    let message = if token.is_empty() {
        "the operator token is empty; leave it unset to disable the operator endpoints".to_owned()
    } else {
        format!(
            "the operator token is {} bytes, at least {MIN_OPERATOR_TOKEN_BYTES} are required \
             (leave it unset to disable the operator endpoints)",
            token.len()
        )
    };
    Err(ConfigError::Invalid { key, message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn toml_defaults_and_env_overrides() {
        let c = Config::from_toml("batch_size = 4\ndepth = 16\nnetwork = \"mainnet\"\n").unwrap();
        assert_eq!(c.batch_size, 4);
        assert_eq!(c.depth, 16);
        assert_eq!(c.network, Network::Mainnet);
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.shape().unwrap(), BatchShape::new(4, 16).unwrap());
        assert!(Config::from_toml("bogus = 1").is_err());
        assert!(Config::from_toml("batch_size = \"x\"").is_err());

        let env: HashMap<&str, &str> = [
            ("VEIL_LISTEN", "127.0.0.1:0"),
            ("VEIL_MAX_WAIT_MS", "25"),
            ("VEIL_OPERATOR_TOKEN", "secret-operator-token"),
            ("VEIL_NETWORK", "regtest"),
            ("VEIL_PROVE", "false"),
        ]
        .into();
        let mut c2 = c.clone();
        c2.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c2.listen.port(), 0);
        assert_eq!(c2.max_wait(), Duration::from_millis(25));
        assert_eq!(c2.operator_token.as_deref(), Some("secret-operator-token"));
        assert_eq!(c2.network, Network::Regtest);
        assert!(c.prove && !c2.prove);
        assert!(!Config::from_toml("prove = false").unwrap().prove);
        assert!(Config::default()
            .apply_env(|k| (k == "VEIL_PROVE").then(|| "maybe".to_string()))
            .is_err());
        assert!(!format!("{c2:?}").contains("secret"));

        let mut c3 = c.clone();
        let err = c3
            .apply_env(|k| (k == "VEIL_BATCH_SIZE").then(|| "many".to_string()))
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Env {
                name: "VEIL_BATCH_SIZE",
                ..
            }
        ));
        // Anchoring: off by default, on with an [anchor] table or VEIL_BITCOIN_RPC_URL.
        assert!(c.anchor.is_none());
        let a = Config::from_toml(
            "[anchor]\nrpc_url = \"http://127.0.0.1:1\"\nrpc_password = \"hunter2\"\nconfirmations = 2\n",
        )
        .unwrap();
        let anchor = a.anchor.clone().unwrap();
        assert_eq!(anchor.confirmations, 2);
        assert_eq!(anchor.key_kind, "p2tr");
        assert!(!format!("{a:?}").contains("hunter2"));
        assert!(Config::from_toml("[anchor]\nbogus = 1\n").is_err());
        let env: HashMap<&str, &str> = [
            ("VEIL_BITCOIN_RPC_URL", "http://127.0.0.1:2"),
            ("VEIL_BITCOIN_RPC_COOKIE", "/tmp/.cookie"),
            ("VEIL_ANCHOR_KEY_KIND", "p2wpkh"),
            ("VEIL_ANCHOR_FEE_RATE", "7"),
            ("VEIL_ANCHOR_CONFIRMATIONS", "1"),
            ("VEIL_ANCHOR_GENESIS", "00:1"),
        ]
        .into();
        let mut c5 = Config::default();
        c5.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        let anchor = c5.anchor.unwrap();
        assert_eq!(anchor.rpc_url, "http://127.0.0.1:2");
        assert_eq!(anchor.rpc_cookie, Some(PathBuf::from("/tmp/.cookie")));
        assert_eq!(anchor.key_kind, "p2wpkh");
        assert_eq!(anchor.fee_rate, Some(7));
        assert_eq!(anchor.confirmations, 1);
        assert_eq!(anchor.genesis.as_deref(), Some("00:1"));
        // Without an RPC URL the other anchor variables do not turn anchoring on.
        let mut c6 = Config::default();
        c6.apply_env(|k| (k == "VEIL_ANCHOR_CONFIRMATIONS").then(|| "3".to_string()))
            .unwrap();
        assert!(c6.anchor.is_none());

        let c4 = Config {
            batch_size: 3,
            ..Config::default()
        };
        assert!(c4.shape().is_err());
    }

    #[test]
    fn empty_or_short_operator_tokens_are_refused() {
        // TOML: empty and 15 bytes are refused, 16 bytes accepted; the token is never echoed.
        for (token, ok) in [
            ("", false),
            ("fifteen-bytes-x", false),
            ("sixteen-bytes-xx", true),
        ] {
            let text = format!("operator_token = {token:?}\n");
            match Config::from_toml(&text) {
                Ok(c) => {
                    assert!(ok, "{token:?} accepted");
                    assert_eq!(c.operator_token.as_deref(), Some(token));
                }
                Err(e) => {
                    assert!(!ok, "{token:?} refused: {e}");
                    let msg = e.to_string();
                    assert!(msg.starts_with("operator_token: "), "{msg}");
                    assert!(!msg.contains('\n'));
                    assert!(token.is_empty() || !msg.contains(token), "{msg}");
                }
            }
        }
        // Environment: an empty or short VEIL_OPERATOR_TOKEN is refused, not read as "off".
        for token in ["", "short"] {
            let err = Config::default()
                .apply_env(|k| (k == "VEIL_OPERATOR_TOKEN").then(|| token.to_string()))
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Invalid {
                        key: "VEIL_OPERATOR_TOKEN",
                        ..
                    }
                ),
                "{err}"
            );
        }
        // Set programmatically: refused by validate (which `start` calls).
        let c = Config {
            operator_token: Some("abc".into()),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn proving_table_from_toml_and_env_and_each_rule_refused_on_its_own() {
        let c = Config::default();
        assert_eq!(c.proving.database_url, None);
        assert_eq!(c.proving.heartbeat_timeout(), Duration::from_secs(30));
        assert_eq!(c.proving.max_attempts, 3);
        let c = Config::from_toml(
            "[proving]\ndatabase_url = \"postgres://veil:pw-secret@db:5432/veil\"\nheartbeat_timeout_ms = 100\nmax_attempts = 1\n",
        )
        .unwrap();
        assert_eq!(c.proving.heartbeat_timeout(), Duration::from_millis(100));
        assert_eq!(c.proving.max_attempts, 1);
        // The password is redacted wherever the config is printed.
        assert!(!format!("{c:?}").contains("pw-secret"), "{c:?}");
        assert!(Config::from_toml("[proving]\nbogus = 1\n").is_err());
        assert!(Config::from_toml("[proving]\ndatabase_url = \"postgresql://h/db\"\n").is_ok());

        // Each rule, alone, with the key it names; the value one below each limit is refused.
        for (bad, key) in [
            ("heartbeat_timeout_ms = 99", "proving.heartbeat_timeout_ms"),
            ("max_attempts = 0", "proving.max_attempts"),
            ("database_url = \"mysql://h/db\"", "proving.database_url"),
            ("database_url = \"\"", "proving.database_url"),
        ] {
            let err = Config::from_toml(&format!("[proving]\n{bad}\n")).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { key: k, .. } if k == key),
                "{bad}: {err}"
            );
            assert!(err.to_string().starts_with(key), "{err}");
        }

        // VEIL_DATABASE_URL sets the queue and is checked like the file's value.
        let mut c = Config::default();
        c.apply_env(|k| (k == "VEIL_DATABASE_URL").then(|| "postgres://h/q".to_string()))
            .unwrap();
        assert_eq!(c.proving.database_url.as_deref(), Some("postgres://h/q"));
        let err = Config::default()
            .apply_env(|k| (k == "VEIL_DATABASE_URL").then(|| "h:5432/q".to_string()))
            .unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "proving.database_url",
                    ..
                }
            ),
            "{err}"
        );
        // Set programmatically: refused by validate (which `start` calls).
        let c = Config {
            proving: ProvingConfig {
                max_attempts: 0,
                ..ProvingConfig::default()
            },
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn http_limits_from_toml_and_env() {
        let c = Config::default();
        assert_eq!(c.http.header_timeout(), Duration::from_secs(10));
        assert_eq!(c.http.body_timeout(), Duration::from_secs(30));
        assert_eq!(c.http.max_connections, 256);
        assert_eq!(c.http.max_head_bytes, 16 * 1024);
        let c = Config::from_toml(
            "[http]\nheader_timeout_ms = 1500\nbody_timeout_ms = 2500\nmax_connections = 8\nmax_head_bytes = 4096\n",
        )
        .unwrap();
        assert_eq!(
            c.http,
            HttpConfig {
                header_timeout_ms: 1500,
                body_timeout_ms: 2500,
                max_connections: 8,
                max_head_bytes: 4096
            }
        );
        assert!(Config::from_toml("[http]\nbogus = 1\n").is_err());
        for bad in [
            "header_timeout_ms = 0",
            "body_timeout_ms = 0",
            "max_connections = 0",
            "max_head_bytes = 1023",
            "max_head_bytes = 65537",
        ] {
            let err = Config::from_toml(&format!("[http]\n{bad}\n")).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { .. }), "{bad}: {err}");
        }
        let env: HashMap<&str, &str> = [
            ("VEIL_HTTP_HEADER_TIMEOUT_MS", "100"),
            ("VEIL_HTTP_BODY_TIMEOUT_MS", "200"),
            ("VEIL_HTTP_MAX_CONNECTIONS", "3"),
            ("VEIL_HTTP_MAX_HEAD_BYTES", "2048"),
        ]
        .into();
        let mut c = Config::default();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.http.header_timeout_ms, 100);
        assert_eq!(c.http.body_timeout_ms, 200);
        assert_eq!(c.http.max_connections, 3);
        assert_eq!(c.http.max_head_bytes, 2048);
        let err = Config::default()
            .apply_env(|k| (k == "VEIL_HTTP_MAX_CONNECTIONS").then(|| "0".to_string()))
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                key: "http.max_connections",
                ..
            }
        ));
        let err = Config::default()
            .apply_env(|k| (k == "VEIL_HTTP_BODY_TIMEOUT_MS").then(|| "soon".to_string()))
            .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Env {
                name: "VEIL_HTTP_BODY_TIMEOUT_MS",
                ..
            }
        ));
    }
}
