#!/usr/bin/env bash
# Builds Bitcoin Core's bitcoind + bitcoin-cli for the regtest integration tests
# (bitcoin/tests/anchor_regtest.rs) from the Core source tree bundled in the crates.io crate
# libbitcoinkernel-sys 0.4.1 (Bitcoin Core v31.99.0 development snapshot): about 26 minutes on
# 2 cores. No wallet, no ZMQ, no GUI. Usage: build-bitcoind.sh DEST_DIR (run via `make bitcoind`).
set -euo pipefail
DEST=${1:?usage: build-bitcoind.sh DEST_DIR}
T0=$(date +%s)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends cmake libboost-dev libevent-dev g++ make pkg-config >/dev/null
echo "apt deps: $(( $(date +%s) - T0 )) s"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
cargo init -q --vcs none --name fetch_core
cargo add -q libbitcoinkernel-sys@=0.4.1
cargo fetch -q
tar xzf "$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/libbitcoinkernel-sys-0.4.1.crate | head -1)"
echo "source fetched: $(( $(date +%s) - T0 )) s"
cd libbitcoinkernel-sys-0.4.1/bitcoin
cmake -B build -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_DAEMON=ON -DBUILD_CLI=ON -DBUILD_BITCOIN_BIN=OFF -DENABLE_WALLET=OFF -DWITH_ZMQ=OFF \
  -DENABLE_IPC=OFF -DBUILD_TESTS=OFF -DBUILD_BENCH=OFF -DBUILD_GUI=OFF -DBUILD_TX=OFF \
  -DBUILD_UTIL=OFF -DBUILD_WALLET_TOOL=OFF -DBUILD_FUZZ_BINARY=OFF -DBUILD_KERNEL_LIB=OFF \
  -DBUILD_UTIL_CHAINSTATE=OFF -DENABLE_EXTERNAL_SIGNER=OFF -DWITH_USDT=OFF \
  -DWITH_EMBEDDED_ASMAP=OFF >/dev/null
cmake --build build -j"$(nproc)" --target bitcoind bitcoin-cli >/dev/null
mkdir -p "$DEST"
install -m755 build/bin/bitcoind build/bin/bitcoin-cli "$DEST"/
strip "$DEST"/bitcoind "$DEST"/bitcoin-cli
"$DEST"/bitcoind -version | head -1
echo "total: $(( $(date +%s) - T0 )) s"
