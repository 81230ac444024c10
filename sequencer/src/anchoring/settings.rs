//! The `[anchor]` configuration parsed into [`AnchorSettings`]: network, key kind, fee policy,
//! confirmations, genesis outpoint, polling; the operator key file (created 0600 if missing) and
//! the Bitcoin Core RPC client.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use bitcoin::{FeeRate, Network, OutPoint};
use veil_bitcoin::{
    BitcoinRpc, FeePolicy, KeyKind, OperatorKey, OperatorKeyError, RpcAuth, RpcConfig,
};

use super::AnchorError;
use crate::config::AnchorConfig;

/// The parsed `[anchor]` configuration.
#[derive(Debug, Clone)]
pub struct AnchorSettings {
    /// Bitcoin network.
    pub network: Network,
    /// How anchors are signed and change is locked.
    pub kind: KeyKind,
    /// Fee rate source.
    pub fee: FeePolicy,
    /// Fee bumps stop at this rate.
    pub max_fee_rate: FeeRate,
    /// Bump after this many blocks unconfirmed.
    pub bump_after_blocks: u64,
    /// Confirmations for `anchored`.
    pub confirmations: u64,
    /// What batch 0's anchor spends.
    pub genesis: OutPoint,
    /// Poll interval.
    pub poll: Duration,
    /// Longest retry backoff.
    pub retry_max: Duration,
    /// Confirmations before a peg-in is credited.
    pub deposit_confirmations: u64,
    /// The rate a withdrawal's transfer fee must cover for its output.
    pub withdrawal_fee_rate: FeeRate,
    /// Operator-attested deposits are accepted too.
    pub attested_deposits: bool,
}

/// `regtest`, `signet`, `testnet`, `testnet4`, `mainnet` (or `bitcoin`).
pub fn parse_network(s: &str) -> Result<Network, AnchorError> {
    match s {
        "mainnet" | "bitcoin" | "main" => Ok(Network::Bitcoin),
        "testnet" | "testnet3" | "test" => Ok(Network::Testnet),
        "testnet4" => Ok(Network::Testnet4),
        "signet" => Ok(Network::Signet),
        "regtest" => Ok(Network::Regtest),
        other => Err(AnchorError::Config(format!(
            "unknown bitcoin network {other:?} (regtest, signet, testnet, testnet4 or mainnet)"
        ))),
    }
}

fn sat_vb(v: u64, what: &str) -> Result<FeeRate, AnchorError> {
    FeeRate::from_sat_per_vb(v)
        .filter(|r| *r >= veil_bitcoin::tx::MIN_FEE_RATE)
        .ok_or_else(|| AnchorError::Config(format!("{what} = {v} sat/vB is out of range")))
}

/// The operator key of `config` (created 0600 if missing) and the settings.
pub fn load_settings(
    config: &AnchorConfig,
    data_dir: &Path,
) -> Result<(OperatorKey, AnchorSettings), AnchorError> {
    let network = parse_network(&config.network)?;
    let kind = KeyKind::from_str(&config.key_kind)?;
    let key_file = config
        .key_file
        .clone()
        .unwrap_or_else(|| data_dir.join("operator.key"));
    if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| OperatorKeyError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let key = OperatorKey::load_or_generate(&key_file, network, &mut rand::rngs::OsRng)?;
    let fee = match config.fee_rate {
        Some(r) => FeePolicy::Fixed(sat_vb(r, "fee_rate")?),
        None => FeePolicy::Estimate {
            conf_target: config.fee_conf_target.max(1),
            fallback: sat_vb(config.fallback_fee_rate, "fallback_fee_rate")?,
        },
    };
    let Some(genesis) = config.genesis.as_deref() else {
        return Err(AnchorError::Config(format!(
            "anchor.genesis (VEIL_ANCHOR_GENESIS) is not set: send bitcoin to the operator \
             address {} and set genesis = \"TXID:VOUT\" of that output",
            key.address(kind, network)
        )));
    };
    let genesis = OutPoint::from_str(genesis)
        .map_err(|e| AnchorError::Config(format!("genesis {genesis:?} is not TXID:VOUT: {e}")))?;
    if config.rpc_cookie.is_none() && config.rpc_user.is_none() {
        return Err(AnchorError::Config(
            "set rpc_cookie (Bitcoin Core's .cookie file) or rpc_user and rpc_password".into(),
        ));
    }
    if config.confirmations == 0 {
        return Err(AnchorError::Config(
            "confirmations must be at least 1".into(),
        ));
    }
    Ok((
        key,
        AnchorSettings {
            network,
            kind,
            fee,
            max_fee_rate: sat_vb(config.max_fee_rate, "max_fee_rate")?,
            bump_after_blocks: config.bump_after_blocks.max(1),
            confirmations: config.confirmations,
            genesis,
            poll: Duration::from_millis(config.poll_ms.max(10)),
            retry_max: Duration::from_millis(config.retry_max_ms.max(10)),
            deposit_confirmations: config.deposit_confirmations.max(1),
            withdrawal_fee_rate: sat_vb(config.withdrawal_fee_rate, "withdrawal_fee_rate")?,
            attested_deposits: config.attested_deposits,
        },
    ))
}

/// The RPC client of `config`.
pub fn rpc_client(config: &AnchorConfig) -> Result<BitcoinRpc, AnchorError> {
    let auth = match (&config.rpc_cookie, &config.rpc_user) {
        (Some(cookie), _) => RpcAuth::CookieFile(cookie.clone()),
        (None, Some(user)) => RpcAuth::UserPass {
            user: user.clone(),
            password: config.rpc_password.clone().unwrap_or_default(),
        },
        (None, None) => {
            return Err(AnchorError::Config(
                "no RPC credentials (rpc_cookie or rpc_user)".into(),
            ))
        }
    };
    let mut rpc = RpcConfig::new(config.rpc_url.clone(), auth);
    rpc.retries = 2;
    rpc.backoff = Duration::from_millis(200);
    Ok(BitcoinRpc::new(rpc)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_refuse_bad_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = AnchorConfig {
            rpc_user: Some("u".into()),
            rpc_password: Some("p".into()),
            confirmations: 2,
            ..AnchorConfig::default()
        };
        // No genesis: the error names the operator address to fund.
        match load_settings(&c, dir.path()) {
            Err(AnchorError::Config(m)) => assert!(m.contains("bcrt1p"), "{m}"),
            other => panic!("expected a config error, got {other:?}"),
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("operator.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
        c.genesis = Some(format!("{txid}:1"));
        let (key, s) = load_settings(&c, dir.path()).unwrap();
        assert_eq!(s.genesis.vout, 1);
        assert_eq!(s.confirmations, 2);
        assert_eq!(s.network, Network::Regtest);
        assert_eq!(s.kind, KeyKind::P2tr);
        // Same key on reload.
        let (again, _) = load_settings(&c, dir.path()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        for bad in [
            AnchorConfig {
                network: "moon".into(),
                ..c.clone()
            },
            AnchorConfig {
                key_kind: "p2sh".into(),
                ..c.clone()
            },
            AnchorConfig {
                genesis: Some("nope".into()),
                ..c.clone()
            },
            AnchorConfig {
                confirmations: 0,
                ..c.clone()
            },
            AnchorConfig {
                rpc_user: None,
                ..c.clone()
            },
            AnchorConfig {
                fee_rate: Some(0),
                ..c.clone()
            },
        ] {
            assert!(load_settings(&bad, dir.path()).is_err(), "{bad:?}");
        }
        // A mainnet node refuses a key file made for a test network.
        let main = AnchorConfig {
            network: "mainnet".into(),
            ..c.clone()
        };
        assert!(matches!(
            load_settings(&main, dir.path()),
            Err(AnchorError::Key(OperatorKeyError::WrongNetwork { .. }))
        ));
        assert!(parse_network("signet").is_ok() && parse_network("testnet4").is_ok());
    }
}
