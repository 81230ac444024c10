// Veil's in-browser verifier: a thin wrapper around the C ABI of the WebAssembly build of
// `verifier-wasm/` (see verifier-wasm/src/lib.rs). No dependencies, no build step.
//
//   const verifier = await VeilVerifier.load(wasmBytes);
//   verifier.vkInfo(vkBytes)              -> {sha256, batch_size, depth} or {error}
//   verifier.verify(vkBytes, batchJson)   -> {code: 1 | 0 | -1, report: {verified, error?,
//                                            mismatches, public_inputs?, proof_valid?, vk?}}
//
// `batchJson` is the text of `GET /v1/batches/{n}`; code 1 means the proof verifies against
// public inputs recomputed from the batch's published data, 0 that it does not, -1 that the
// batch could not be checked (the report's `error` says why).
"use strict";
(function (global) {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  function wrap(exports) {
    const memory = () => new Uint8Array(exports.memory.buffer);
    // Copies `bytes` into the module's memory; returns [pointer, length] for veil_free.
    function put(bytes) {
      const ptr = exports.veil_alloc(bytes.length);
      memory().set(bytes, ptr);
      return [ptr, bytes.length];
    }
    function report() {
      const ptr = exports.veil_report_ptr();
      const len = exports.veil_report_len();
      return JSON.parse(decoder.decode(memory().slice(ptr, ptr + len)));
    }
    function call(fn, buffers) {
      const args = buffers.map(put);
      try {
        const code = fn(...args.flat());
        return { code, report: report() };
      } finally {
        for (const [ptr, len] of args) exports.veil_free(ptr, len);
      }
    }
    return {
      vkInfo(vk) {
        return call(exports.veil_vk_info, [vk]).report;
      },
      verify(vk, batchJson) {
        const batch = typeof batchJson === "string" ? encoder.encode(batchJson) : batchJson;
        return call(exports.veil_verify, [vk, batch]);
      },
    };
  }

  // Compiled synchronously: the module (about 2 MB) compiles in tens of milliseconds with
  // the baseline compiler, and a synchronous compile is one task, which a headless browser's
  // virtual time (the explorer's Chromium test) waits for, where it does not wait for
  // WebAssembly.instantiate's background compilation. Browsers that refuse a module this big on
  // the main thread get the asynchronous path.
  async function load(wasmBytes) {
    let instance;
    try {
      instance = new WebAssembly.Instance(new WebAssembly.Module(wasmBytes), {});
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      ({ instance } = await WebAssembly.instantiate(wasmBytes, {}));
    }
    return wrap(instance.exports);
  }

  global.VeilVerifier = { load };
})(typeof window !== "undefined" ? window : globalThis);
