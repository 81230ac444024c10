# Veil: the two newcomer commands are `make run` and `make test`.
CARGO ?= cargo
B ?= 16
D ?= 32

.PHONY: all build run demo test lint fmt circuit-info bench bench-quick bench-prover bench-msm bench-load bench-anchor bench-scale bench-peer snarkjs fixtures bitcoind postgres postgres-stop fuzz clean

all: build

build:
	$(CARGO) build --release --bin veil

# The newcomer's first command: builds, generates insecure dev keys if missing (one time, with
# a progress spinner), and starts the node on 127.0.0.1:8080 with an embedded redb in ./data.
# B = 4 keeps dev proving fast; the production shape is B = 16, D = 32 (`make run RUN_B=16`).
RUN_B ?= 4
RUN_D ?= 32
run: build
	./target/release/veil node --data-dir data --keys-dir keys --batch-size $(RUN_B) --depth $(RUN_D) --dev-keys 1 --dev-token

# The whole story on a throwaway node, removed at the end: two wallets, a deposit, a private
# payment, a withdrawal, verify-chain, a summary table. With a bitcoind (VEIL_BITCOIND, PATH or
# `make bitcoind`) on its own throwaway regtest node: anchors, a peg-in and a peg-out.
# Dev keys B = 2, D = 8 in ./keys (made once). DEMO_ARGS="--no-bitcoin", "--json", "--keep".
DEMO_ARGS ?=
demo: build
	./target/release/veil demo --keys-dir keys $(DEMO_ARGS)

test:
	$(CARGO) test --workspace --all-targets

# A throwaway PostgreSQL for the proving job queue (loopback, trust auth, data in
# target/postgres): prints the URL for `veil node --database-url` and `veil prover-worker`.
PG_DIR ?= target/postgres
postgres:
	@scripts/postgres.sh start $(PG_DIR)

postgres-stop:
	@scripts/postgres.sh stop $(PG_DIR)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

circuit-info: build
	./target/release/veil circuit-info --batch-size $(B) --depth $(D) --json

# Prover benchmark (tens of minutes: shapes 1x32, 4x32, 16x32, 32x32, 64x32; B = 64 needs about
# 14 GB for its one-off setup); transfers proven per second and proving's peak RSS per shape in
# target/bench/prover.md. `BENCH_ARGS="--shapes 32x32,64x32 --threads-compare false"` for some.
BENCH_ARGS ?=
bench:
	$(CARGO) run --release -p veil-bench -- prover $(BENCH_ARGS)

# The same on small shapes (1x8, 2x8, 4x8), seconds: checks the benchmark works.
bench-quick:
	$(CARGO) run --release -p veil-bench -- prover --quick

# Stock ark-groth16 vs Veil's prover on the same B = 16, D = 32 witness, alternating A/B
# (dev keys cached under target/bench/keys: a few minutes the first time); median ratio and a
# per-phase breakdown in target/bench/prover-ab.md. `AB_ARGS="--quick"` for a 2x8 smoke run.
AB_ARGS ?=
bench-prover:
	$(CARGO) run --release -p veil-bench -- prover-ab $(AB_ARGS)

# Veil against iden3's rapidsnark on the same R1CS and witness (`veil export r1cs` / `wtns`), B = 16,
# D = 32, alternating, each a child process: median seconds, peak RSS, the ratio; proofs checked
# (`veil verify`, and `snarkjs groth16 verify` after `make snarkjs`). The peer kit is
# ../shared/peers/rapidsnark (or VEIL_RAPIDSNARK_DIR); without it Veil alone is measured. The
# rapidsnark key is made once per circuit build (minutes). target/bench/peer.md.
# `PEER_ARGS=--quick` for a 2x8 smoke run.
PEER_ARGS ?=
bench-peer: build
	$(CARGO) run --release -p veil-bench -- peer $(PEER_ARGS)

# snarkjs 0.7.6 from npm into target/npm: the interop tests and bench-peer use it. Beside it,
# for the Solidity verifier's EVM test (cli/tests/export_solidity.rs, scripts/evm-verify.mjs):
# solc-js and @ethereumjs/evm, an in-process EVM with the BN254 precompiles. Exact versions.
NPM_TOOLS = snarkjs@0.7.6 solc@0.8.37 @ethereumjs/evm@10.1.3 @ethereumjs/util@10.1.3
snarkjs:
	npm install --silent --no-audit --no-fund --save-exact --prefix target/npm $(NPM_TOOLS)

# Sequencer API throughput (B = 16, D = 32; 32 keep-alive clients): accepted transfers/s, latency
# percentiles, the node's peak RSS; once with proving paused (`prove = false`), once with proving
# on (dev keys generated once under target/bench/keys: minutes the first time). Table in
# target/bench/load.md. `LOAD_ARGS="--prove-run false"` skips the proving run.
LOAD_ARGS ?=
bench-load:
	$(CARGO) run --release -p veil-bench -- load $(LOAD_ARGS)

# Veil's MSM against arkworks' (BN254 G1 and G2, n = 2^16, 2^18, 2^20, full random scalars;
# about a minute): median seconds and ratio; table in target/bench/msm.md.
# `MSM_ARGS=--quick` for small sizes.
MSM_ARGS ?=
bench-msm:
	$(CARGO) run --release -p veil-bench -- msm $(MSM_ARGS)

# What settling on Bitcoin costs: one range anchor package (commit + anchor) per size (1, 16, 64,
# 256 private transfers) on a throwaway regtest bitcoind (VEIL_BITCOIND, PATH or `make bitcoind`);
# vbytes as Core counts them, vB and sats per transfer at 1/10/50 sat/vB; then verify-chain
# --from-bitcoin timed on a proven B = 16, D = 32 history (--verify-transfers, default 256; the
# first run makes the dev keys, minutes); target/bench/anchor.md.
ANCHOR_ARGS ?=
bench-anchor:
	$(CARGO) run --release -p veil-bench -- anchor $(ANCHOR_ARGS)

# Proving on many machines: one node and 1, then 2, `veil prover-worker --threads 1` through a
# throwaway PostgreSQL (scripts/postgres.sh), B = 4, D = 32 under a steady deposit load: transfers
# proven per second, the 2/1 ratio, the queue's overhead per job, and the workers needed for
# 10/100/1,000 transfers/s at B = 16, D = 32; target/bench/scale.md (minutes).
SCALE_ARGS ?=
bench-scale: build
	$(CARGO) run --release -p veil-bench -- scale $(SCALE_ARGS)

# libFuzzer on every decoder a stranger can reach (fuzz/, needs `cargo install cargo-fuzz`),
# FUZZ_SECONDS per target, one target after another: writes the seed corpora (fuzz/corpus, made
# by the code and fixtures/data), then runs each target and prints libFuzzer's final stats (inputs
# executed); a crash stops it with the input in fuzz/artifacts/<target>/. RUSTC_BOOTSTRAP=1 lets
# stable rustc take cargo-fuzz's -Z flags. `FUZZ_SANITIZER=none` if ASan is unavailable.
# CI runs the bounded proptest layer instead (tests/tests/fuzz_decoders.rs, in `make test`).
FUZZ_SECONDS ?= 60
FUZZ_SANITIZER ?= address
FUZZ_MAX_LEN ?= 1048576
FUZZ_TARGETS ?= transfer_json deposit_json api_request field_hex batch_file proof_file \
	proof_bytes vk_file pk_file anchor_payload anchor_tx anchor_data envelope_leaf
fuzz:
	$(CARGO) test -p veil-tests --test fuzz_decoders -- --ignored write_cargo_fuzz_corpus
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		echo "== $$t ($(FUZZ_SECONDS) s)"; \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer $(FUZZ_SANITIZER) $$t -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 || exit 1; \
	done

# Regenerates fixtures/data deliberately (dev-seed keys, seeded proofs: byte-for-byte reproducible).
# Commit the result only when the circuit or a file format changed on purpose.
fixtures: build
	./target/release/veil fixtures --out-dir fixtures/data

# Bitcoin Core for the regtest tests (bitcoin/tests/anchor_regtest.rs), built once (~26 min on
# 2 cores) into a cache outside the clone; prints the binary's path. The tests find it there, or
# take VEIL_BITCOIND=/path/to/bitcoind, or a bitcoind on PATH.
BITCOIND_DIR ?= $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)/veil/bitcoind
bitcoind:
	@if [ ! -x "$(BITCOIND_DIR)/bitcoind" ]; then \
		bash bitcoin/tests/support/build-bitcoind.sh "$(BITCOIND_DIR)" >&2; \
	fi
	@echo "$(BITCOIND_DIR)/bitcoind"

clean:
	$(CARGO) clean
