//! The dev operator token. `veil node --dev-token` (as `make run` starts it), on a node without
//! Bitcoin and without a configured token, generates a random operator token once and keeps it
//! in `DATA_DIR/operator-token` (0600, in the 0700 data directory); `veil deposit` on the same
//! machine reads it from there when neither `--token` nor `$VEIL_OPERATOR_TOKEN` is given. The
//! token itself is never printed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::RngCore;

/// The token file's name inside the data directory.
pub const FILE: &str = "operator-token";

/// Where a dev node in `data_dir` keeps its token.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// The token in `path`: its only line, at least 16 bytes.
pub fn read(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let token = text.trim();
    if token.len() < veil_sequencer::config::MIN_OPERATOR_TOKEN_BYTES || token.contains('\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an operator token (one line, at least 16 bytes)",
        ));
    }
    Ok(token.to_owned())
}

/// The token of the dev node in `data_dir`, generated and written the first time (32 random
/// bytes, hex); `true` when it was generated now.
pub fn load_or_create(data_dir: &Path) -> Result<(String, bool)> {
    veil_sequencer::store::secure_data_dir(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = path(data_dir);
    match read(&path) {
        Ok(token) => return Ok((token, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    // create_new: a second node starting at the same moment keeps the first one's token.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> std::io::Result<()> {
        let mut f = options.open(&path)?;
        f.write_all(format!("{token}\n").as_bytes())?;
        f.sync_all()
    };
    match write() {
        Ok(()) => Ok((token, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((
            read(&path).with_context(|| format!("reading {}", path.display()))?,
            false,
        )),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (token, created) = load_or_create(&data).unwrap();
        assert!(created);
        assert_eq!(token.len(), 64);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(read(&path(&data)).unwrap(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path(&data)), 0o600);
            assert_eq!(mode(&data), 0o700);
        }
        assert_eq!(load_or_create(&data).unwrap(), (token.clone(), false));
        // Another data directory, another token.
        let (other, _) = load_or_create(&dir.path().join("other")).unwrap();
        assert_ne!(other, token);
        // A damaged file is refused, not replaced behind the operator's back.
        std::fs::write(path(&data), "short\n").unwrap();
        assert!(load_or_create(&data).is_err());
    }
}
