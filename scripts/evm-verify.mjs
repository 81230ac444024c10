#!/usr/bin/env node
// Runs a `veil export solidity` contract on a real EVM: compiles it with solc-js, deploys it on
// @ethereumjs/evm (BN254 precompiles 0x06-0x08 from @noble/curves) and calls verifyProof with the
// arguments from `veil export solidity-calldata`, then with altered ones:
//
//   node scripts/evm-verify.mjs VeilVerifier.sol calldata.json
//
// Expected: the proof as given -> true; a public input changed, the inputs swapped, -A for A, a
// point off the curve, B's coordinates in the wrong order, an input + r (the same value mod r),
// a coordinate + q -> false (the contract returns false rather than reverting; a revert counts
// as a failed check). One line per call with its gas; exits 0 iff every call gave the expected
// answer, 1 if not, 2 on bad usage or a compile error.
//
// The npm packages (`make snarkjs` installs them) are read from $VEIL_NPM_DIR, else target/npm.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;
const SIGNATURE = 'verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[3])';

function fail(msg) {
  console.error(`error: ${msg}`);
  process.exit(2);
}

const [contractPath, calldataPath] = process.argv.slice(2);
if (!contractPath || !calldataPath) fail('usage: evm-verify.mjs CONTRACT.sol CALLDATA.json');
const npmDir = process.env.VEIL_NPM_DIR
  ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'target', 'npm');
const require = createRequire(join(resolve(npmDir), 'package.json'));
let solc, evmLib, util;
try {
  solc = require('solc');
  evmLib = require('@ethereumjs/evm');
  util = require('@ethereumjs/util');
} catch (e) {
  fail(`npm tools missing under ${npmDir} (run \`make snarkjs\`): ${e.message.split('\n')[0]}`);
}

// --- Compile -----------------------------------------------------------------------------------
const source = readFileSync(contractPath, 'utf8');
const output = JSON.parse(solc.compile(JSON.stringify({
  language: 'Solidity',
  sources: { 'VeilVerifier.sol': { content: source } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['evm.bytecode.object', 'evm.methodIdentifiers'] } },
  },
})));
const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
if (errors.length > 0) fail(`solc: ${errors.map((e) => e.formattedMessage).join('\n')}`);
const compiled = output.contracts?.['VeilVerifier.sol']?.VeilVerifier;
if (!compiled) fail('solc: no contract VeilVerifier');
const selector = compiled.evm.methodIdentifiers[SIGNATURE];
if (!selector) fail(`VeilVerifier has no ${SIGNATURE}`);
console.log(`compiled VeilVerifier with solc ${solc.version()}`);

// --- The arguments -------------------------------------------------------------------------------
const args = JSON.parse(readFileSync(calldataPath, 'utf8'));
const big = (w) => BigInt(w);
const proof = {
  a: args.a.map(big),
  b: args.b.map((row) => row.map(big)),
  c: args.c.map(big),
  input: args.input.map(big),
};
const word = (x) => x.toString(16).padStart(64, '0');
function encode(p) {
  const words = [...p.a, ...p.b.flat(), ...p.c, ...p.input];
  if (words.some((x) => x < 0n || x >= 1n << 256n)) throw new Error('a word out of range');
  return `0x${selector}${words.map(word).join('')}`;
}
if (encode(proof) !== args.calldata) {
  fail(`${calldataPath}: "calldata" is not the ABI encoding of a, b, c, input with solc's selector 0x${selector}`);
}

// --- Deploy ----------------------------------------------------------------------------------------
const evm = await evmLib.createEVM();
const hexBytes = (h) => util.hexToBytes(h.startsWith('0x') ? h : `0x${h}`);
const deployed = await evm.runCall({ data: hexBytes(compiled.evm.bytecode.object), gasLimit: 10_000_000n });
if (deployed.execResult.exceptionError || !deployed.createdAddress) {
  fail(`deployment failed: ${deployed.execResult.exceptionError?.error}`);
}
const address = deployed.createdAddress;
console.log(`deployed at ${address.toString()} (${deployed.execResult.executionGasUsed} gas)`);

// --- Calls -------------------------------------------------------------------------------------------
async function call(p) {
  const data = hexBytes(encode(p));
  const res = await evm.runCall({ to: address, data, gasLimit: 1_000_000n, isStatic: true });
  const gas = res.execResult.executionGasUsed;
  // Intrinsic cost of a transaction carrying this call (EIP-2028 calldata pricing).
  const calldataGas = data.reduce((g, byte) => g + (byte === 0 ? 4n : 16n), 0n);
  if (res.execResult.exceptionError) return { answer: 'revert', gas, calldataGas };
  const ret = res.execResult.returnValue;
  const answer = ret.length === 32 && ret.slice(0, 31).every((b) => b === 0) && ret[31] <= 1
    ? ret[31] === 1 : `malformed return ${util.bytesToHex(ret)}`;
  return { answer, gas, calldataGas };
}

const clone = () => structuredClone(proof);
const cases = [
  ['the proof', true, clone()],
  ['public input 0 + 1', false, (() => { const p = clone(); p.input[0] = (p.input[0] + 1n) % R; return p; })()],
  ['old and new state roots swapped', false, (() => { const p = clone(); [p.input[0], p.input[1]] = [p.input[1], p.input[0]]; return p; })()],
  ['public input 2 + r (same value mod r)', false, (() => { const p = clone(); p.input[2] += R; return p; })()],
  ['-A for A (a point on the curve)', false, (() => { const p = clone(); p.a[1] = (Q - p.a[1]) % Q; return p; })()],
  ['A.x + 1 (off the curve)', false, (() => { const p = clone(); p.a[0] = (p.a[0] + 1n) % Q; return p; })()],
  ['C.y + q (same value mod q)', false, (() => { const p = clone(); p.c[1] += Q; return p; })()],
  ['B.x as (c0, c1)', false, (() => { const p = clone(); p.b[0].reverse(); return p; })()],
];
let wrong = 0;
for (const [name, expected, p] of cases) {
  const { answer, gas, calldataGas } = await call(p);
  const ok = answer === expected;
  if (!ok) wrong += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${answer} (expected ${expected}), ${gas} gas`);
  if (name === 'the proof') {
    console.log(`verifyProof gas: ${gas} execution, ${21000n + calldataGas + gas} as a transaction`);
  }
}
if (wrong > 0) {
  console.log(`${wrong} of ${cases.length} calls gave the wrong answer`);
  process.exit(1);
}
console.log(`all ${cases.length} calls gave the expected answer`);
