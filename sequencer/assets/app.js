// Veil's batch explorer (served by `veil node` at `/`): state, recent batches, a batch's public
// data, transfer lookup, charts, and every shown proof verified in this browser with Veil's own
// verifier compiled to WebAssembly (verifier.js). Plain JavaScript, no dependencies.
//
// Stable hooks for tests and scripts: `body[data-explorer-state]` is "done" once the first
// page of batches is rendered and checked; each batch row is `tr.batch-row[data-batch=n]
// [data-status]` with its verdict in `td.verify[data-verified=true|false|pending|unavailable|
// none]`; the batch panel's verdict is `#batch-verdict[data-verified]`.
"use strict";
(function () {
  const REFRESH_MS = 10000;
  const PAGE = 20;
  const $ = (id) => document.getElementById(id);

  const app = {
    verifier: null,          // VeilVerifier instance, once loaded
    verifierProblem: null,   // why there is none
    vk: null,                // verifying-key file bytes (Uint8Array)
    verdicts: new Map(),     // batch number -> {proof, verified, text, report}
    batches: [],             // summaries shown, newest first
    nextBefore: null,
    listed: new Map(),       // number -> summary
  };

  // ---------- small helpers ----------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function short(s, head = 10, tail = 6) {
    s = String(s);
    return s.length <= head + tail + 1 ? s : s.slice(0, head) + "…" + s.slice(-tail);
  }

  // A truncated hash: full value in the title, copied on click.
  function hash(value, head, tail) {
    if (value === null || value === undefined) return el("span", { class: "muted", text: "–" });
    const full = String(value);
    return el("code", { class: "hash", title: full + " (click to copy)", "data-full": full,
      onclick: () => copy(full) }, short(full, head, tail));
  }

  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 1500);
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => toast("copied"), () => toast(text));
    } else {
      // Plain-HTTP pages have no clipboard API: select the value in a prompt-free way.
      const area = el("textarea", { readonly: "" }, text);
      document.body.append(area);
      area.select();
      try { document.execCommand("copy"); toast("copied"); } catch (_) { toast(text); }
      area.remove();
    }
  }

  function fmtInt(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }

  function fmtTime(ms) {
    if (!ms) return "–";
    const d = new Date(ms);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }

  async function getJson(url) {
    const r = await fetch(url, { cache: "no-store" });
    const body = await r.json().catch(() => null);
    if (!r.ok) {
      const msg = body && body.error ? body.error.code + ": " + body.error.message : "HTTP " + r.status;
      const err = new Error(msg);
      err.status = r.status;
      err.body = body;
      throw err;
    }
    return body;
  }

  function showError(text) {
    const b = $("error-banner");
    b.textContent = text;
    b.hidden = !text;
  }

  // ---------- state ----------

  async function loadState() {
    const s = await getJson("/v1/state");
    $("state-batch-height").textContent = fmtInt(s.batch_height);
    $("state-proven-height").textContent = fmtInt(s.proven_height);
    $("state-anchored-height").textContent = fmtInt(s.anchored_height);
    $("state-mempool").textContent = fmtInt(s.mempool_size);
    $("state-notes").textContent = fmtInt(s.note_count);
    $("state-shape").textContent = "B " + s.batch_size + " · D " + s.depth;
    $("state-root").replaceChildren(hash(s.state_root, 18, 8));
    $("state-note-root").replaceChildren(hash(s.note_root, 18, 8));
    $("state-nullifier-root").replaceChildren(hash(s.nullifier_root, 18, 8));
    return s;
  }

  // ---------- verifier ----------

  async function sha256Hex(bytes) {
    if (!(window.crypto && crypto.subtle)) return null;
    const d = await crypto.subtle.digest("SHA-256", bytes);
    return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function loadVerifier() {
    const status = $("verifier-status");
    // The key first: its hash is worth showing even without the wasm verifier.
    try {
      const r = await fetch("/v1/vk", { cache: "no-store" });
      if (!r.ok) {
        const body = await r.json().catch(() => null);
        throw new Error(body && body.error ? body.error.message : "HTTP " + r.status);
      }
      app.vk = new Uint8Array(await r.arrayBuffer());
    } catch (e) {
      app.verifierProblem = "no verifying key from this node (" + e.message + ")";
    }
    if (!app.verifierProblem) {
      try {
        const r = await fetch("/explorer/veil_verifier.wasm", { cache: "no-store" });
        if (!r.ok) {
          const body = await r.json().catch(() => null);
          throw new Error(body && body.error ? body.error.message : "HTTP " + r.status);
        }
        app.verifier = await VeilVerifier.load(await r.arrayBuffer());
      } catch (e) {
        app.verifierProblem = e.message.startsWith("in-browser verification unavailable")
          ? e.message.slice("in-browser verification unavailable: ".length)
          : "the WebAssembly verifier did not load (" + e.message + ")";
      }
    }
    if (app.vk) {
      let info = app.verifier ? app.verifier.vkInfo(app.vk) : null;
      if (info && info.error) {
        app.verifierProblem = "the node's verifying key is unusable: " + info.error;
        app.verifier = null;
      }
      const sha = info && info.sha256 ? info.sha256 : await sha256Hex(app.vk);
      $("vk-sha256").replaceChildren(sha ? el("code", { class: "mono", id: "vk-sha256-value",
        title: "click to copy", onclick: () => copy(sha) }, sha) : el("span", { class: "muted",
        text: "unavailable (this page is not a secure context and has no wasm verifier)" }));
      $("vk-shape").textContent = info && info.batch_size
        ? "B " + info.batch_size + " · D " + info.depth + " · " + app.vk.length + " bytes"
        : app.vk.length + " bytes";
      if (info && info.batch_size) {
        $("vk-file-hint").textContent = "sha256sum keys/vk-B" + info.batch_size + "-D" + info.depth + ".bin";
      }
    }
    if (app.verifier) {
      status.dataset.state = "ready";
      status.textContent = "Veil's verifier is running in your browser (WebAssembly): every proven batch below is checked here, not trusted from the node.";
    } else {
      status.dataset.state = "unavailable";
      status.textContent = "In-browser verification unavailable: " + app.verifierProblem + ".";
    }
  }

  // Verifies batch `n` (full JSON from /v1/batches/n) once per proof; returns the verdict.
  function verdictFor(n, batchText, batch) {
    const cached = app.verdicts.get(n);
    if (cached && cached.proof === batch.proof) return cached;
    let v;
    if (!batch.proof) {
      v = { proof: null, verified: "none", text: "not proven yet" };
    } else if (!app.verifier) {
      v = { proof: batch.proof, verified: "unavailable", text: "not checked: in-browser verification unavailable" };
    } else {
      const t0 = performance.now();
      const { code, report } = app.verifier.verify(app.vk, batchText);
      const ms = Math.round(performance.now() - t0);
      if (code === 1) {
        v = { proof: batch.proof, verified: "true", text: "✓ proof verified in your browser", ms, report };
      } else {
        const why = report.error || (report.mismatches && report.mismatches[0]) || "the proof does not verify against the recomputed public inputs";
        v = { proof: batch.proof, verified: "false", text: "✗ proof verification failed: " + why, ms, report };
      }
    }
    app.verdicts.set(n, v);
    return v;
  }

  async function fetchBatch(n) {
    const r = await fetch("/v1/batches/" + n, { cache: "no-store" });
    const text = await r.text();
    if (!r.ok) throw new Error(text);
    return { text, batch: JSON.parse(text) };
  }

  async function verifyListed() {
    for (const b of app.batches) {
      if (b.status === "sealed") continue;
      const cached = app.verdicts.get(b.number);
      if (cached && cached.verified !== "none") { applyVerdict(b.number, cached); continue; }
      try {
        const { text, batch } = await fetchBatch(b.number);
        applyVerdict(b.number, verdictFor(b.number, text, batch));
      } catch (e) {
        applyVerdict(b.number, { verified: "false", text: "✗ could not fetch the batch: " + e.message });
      }
      await new Promise((r) => setTimeout(r, 0)); // let the page paint between proofs
    }
    summarise();
  }

  function applyVerdict(n, v) {
    const cell = document.querySelector('tr.batch-row[data-batch="' + n + '"] td.verify');
    if (!cell) return;
    cell.dataset.verified = v.verified;
    cell.textContent = v.text;
    cell.title = v.ms !== undefined ? "checked in " + v.ms + " ms" : "";
  }

  function summarise() {
    const shown = app.batches.filter((b) => b.status !== "sealed");
    const ok = shown.filter((b) => (app.verdicts.get(b.number) || {}).verified === "true").length;
    const bad = shown.filter((b) => (app.verdicts.get(b.number) || {}).verified === "false").length;
    const s = $("verify-summary");
    s.dataset.verified = String(ok);
    s.dataset.failed = String(bad);
    if (!app.verifier) s.textContent = "";
    else if (shown.length === 0) s.textContent = "No proven batch to check yet.";
    else s.textContent = ok + " of " + shown.length + " shown proofs verified in your browser" + (bad ? ", " + bad + " FAILED" : "") + ".";
  }

  // ---------- batch list ----------

  function statusBadge(status) {
    return el("span", { class: "badge " + status, text: status });
  }

  function anchorCell(a) {
    if (!a) return el("span", { class: "muted", text: "–" });
    return el("span", {}, hash(a.txid, 8, 4), " ", el("span", { class: "muted",
      text: a.status + (a.confirmations ? " · " + a.confirmations + " conf" : "") }));
  }

  function renderRows() {
    const body = $("batch-rows");
    if (app.batches.length === 0) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "8", class: "muted",
        text: "No batches yet: submit a deposit (see the README) and one is sealed within max_wait_ms." })));
      return;
    }
    body.replaceChildren(...app.batches.map((b) => {
      const v = app.verdicts.get(b.number);
      const pending = b.status === "sealed" ? { verified: "none", text: "not proven yet" }
        : v || { verified: "pending", text: app.verifier ? "verifying…" : "not checked" };
      return el("tr", { class: "batch-row", "data-batch": b.number, "data-status": b.status },
        el("td", {}, el("a", { href: "#batch=" + b.number, text: "#" + b.number })),
        el("td", {}, statusBadge(b.status)),
        el("td", { class: "num", text: fmtInt(b.transfers) }),
        el("td", { class: "num", text: fmtInt(b.fees) }),
        el("td", { text: fmtTime(b.proven_at_ms) }),
        el("td", { class: "num", text: b.proving_seconds === null ? "–" : b.proving_seconds.toFixed(2) + " s" }),
        el("td", {}, anchorCell(b.anchor)),
        el("td", { class: "verify", "data-verified": pending.verified, text: pending.text }));
    }));
    $("load-more").hidden = app.nextBefore === null;
  }

  async function loadBatches() {
    const page = await getJson("/v1/batches?limit=" + PAGE);
    // Keep older pages the visitor loaded; replace the newest page.
    const older = app.batches.filter((b) => page.batches.length && b.number < page.batches[page.batches.length - 1].number);
    app.batches = page.batches.concat(older);
    if (older.length === 0) app.nextBefore = page.next_before;
    for (const b of page.batches) app.listed.set(b.number, b);
    renderRows();
    drawCharts();
  }

  async function loadMore() {
    if (app.nextBefore === null) return;
    const page = await getJson("/v1/batches?limit=" + PAGE + "&before=" + app.nextBefore);
    app.batches = app.batches.concat(page.batches);
    app.nextBefore = page.next_before;
    for (const b of page.batches) app.listed.set(b.number, b);
    renderRows();
    drawCharts();
    await verifyListed();
  }

  // ---------- charts (inline SVG) ----------

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  // Bars for `points` ([{label, value, title}]), y from 0 to the largest value.
  function barChart(points, opts) {
    const W = 560, H = 200, L = 40, B = 24, T = 10, R = 8;
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": opts.label });
    if (points.length === 0 || points.every((p) => !p.value)) {
      root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, opts.empty));
      return root;
    }
    const max = Math.max(...points.map((p) => p.value)) || 1;
    const top = niceCeil(max);
    const plotW = W - L - R, plotH = H - T - B;
    for (let i = 0; i <= 4; i++) {
      const y = T + plotH - (plotH * i) / 4;
      root.append(svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "axis" }));
      root.append(svg("text", { x: L - 6, y: y + 4, "text-anchor": "end" }, fmtAxis((top * i) / 4)));
    }
    const step = plotW / points.length;
    const bw = Math.max(1, Math.min(28, step * 0.7));
    const every = Math.ceil(points.length / 10);
    points.forEach((p, i) => {
      const h = (plotH * p.value) / top;
      const x = L + i * step + (step - bw) / 2;
      const bar = svg("rect", { x, y: T + plotH - h, width: bw, height: Math.max(h, p.value ? 1 : 0),
        class: "bar" + (opts.alt ? " alt" : "") });
      bar.append(svg("title", {}, p.title));
      root.append(bar);
      if ((points.length - 1 - i) % every === 0) { // counted from the newest: it is always labelled
        root.append(svg("text", { x: L + i * step + step / 2, y: H - 6, "text-anchor": "middle" }, p.label));
      }
    });
    return root;
  }

  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  function fmtAxis(v) { return v >= 10 || Number.isInteger(v) ? Math.round(v).toString() : v.toFixed(1); }

  const HHMM = { hour: "2-digit", minute: "2-digit", hour12: false };

  function drawCharts() {
    const now = Date.now();
    const minute = 60000;
    const start = Math.floor(now / minute) * minute - 29 * minute;
    const perMinute = Array.from({ length: 30 }, (_, i) => ({ t: start + i * minute, value: 0, batches: 0 }));
    for (const b of app.batches) {
      if (!b.proven_at_ms || b.proven_at_ms < start) continue;
      const slot = perMinute[Math.min(29, Math.floor((b.proven_at_ms - start) / minute))];
      slot.value += b.transfers;
      slot.batches += 1;
    }
    $("chart-tpm").replaceChildren(barChart(perMinute.map((m) => ({
      label: new Date(m.t).toLocaleTimeString([], HHMM),
      value: m.value,
      title: new Date(m.t).toLocaleTimeString([], HHMM) + ": " + m.value + " transfers in " + m.batches + " batches",
    })), { label: "transfers proven per minute", empty: "no batch proven by this node process in the last 30 minutes" }));
    const timed = app.batches.filter((b) => b.proving_seconds !== null).slice().reverse();
    $("chart-proving").replaceChildren(barChart(timed.map((b) => ({
      label: "#" + b.number,
      value: b.proving_seconds,
      title: "batch " + b.number + ": " + b.proving_seconds.toFixed(2) + " s, " + b.transfers + " transfers",
    })), { label: "proving seconds per batch", alt: true, empty: "no proving times yet (kept by the node process that proved the batch)" }));
  }

  // ---------- batch detail ----------

  function kv(pairs) {
    return el("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
  }

  async function showBatch(n) {
    const panel = $("batch-detail");
    panel.hidden = false;
    panel.replaceChildren(el("p", { class: "muted", text: "Loading batch " + n + "…" }));
    let text, batch;
    try {
      ({ text, batch } = await fetchBatch(n));
    } catch (e) {
      let msg = e.message;
      try { msg = JSON.parse(msg).error.message; } catch (_) { /* keep the text */ }
      panel.replaceChildren(el("h2", { text: "Batch " + n }), el("p", { class: "banner error", id: "batch-error", text: msg }));
      return;
    }
    const v = verdictFor(n, text, batch);
    const listed = app.listed.get(n);
    const anchored = batch.anchor && batch.anchor.status === "anchored";
    const status = anchored ? "anchored" : batch.status;
    const pi = batch.public_inputs;
    const recomputed = v.report && v.report.public_inputs;
    const a = batch.anchor;
    panel.replaceChildren(
      el("div", { class: "detail-head" },
        el("h2", { id: "batch-title" }, "Batch #" + batch.number + " ", statusBadge(status)),
        el("a", { href: "#", text: "close ✕" })),
      el("div", { class: "detail-verdict", id: "batch-verdict", "data-verified": v.verified },
        v.text + (v.ms !== undefined ? " (" + v.ms + " ms)" : "")),
      v.report && v.report.mismatches && v.report.mismatches.length
        ? el("ul", { id: "batch-mismatches" }, v.report.mismatches.map((m) => el("li", { class: "mono", text: m }))) : null,
      el("div", { class: "detail-grid" },
        el("div", {},
          el("h3", { text: "Public inputs" }),
          kv([
            ["old_state_root", hash(pi.old_state_root, 18, 8)],
            ["new_state_root", hash(pi.new_state_root, 18, 8)],
            ["batch_hash", hash(pi.batch_hash, 18, 8)],
            ["recomputed here", recomputed ? el("span", {}, "batch_hash ", hash(recomputed.batch_hash, 10, 6))
              : el("span", { class: "muted", text: "–" })],
          ]),
          el("h3", { text: "State" }),
          kv([
            ["notes", count(batch.old_state, "note_count") + " → " + count(batch.new_state, "note_count")],
            ["nullifiers", count(batch.old_state, "nullifier_count") + " → " + count(batch.new_state, "nullifier_count")],
            ["first note", fmtInt(batch.note_start)],
            ["proving", listed && listed.proving_seconds !== null ? listed.proving_seconds.toFixed(2) + " s" : "–"],
          ])),
        el("div", {},
          el("h3", { text: "Anchor on Bitcoin" }),
          a ? kv([
            ["txid", hash(a.txid, 16, 8)],
            ["status", a.status],
            ["confirmations", fmtInt(a.confirmations)],
            ["fee", a.fee_sat === null ? "–" : fmtInt(a.fee_sat) + " sat" + (a.vsize ? " (" + fmtInt(a.vsize) + " vB)" : "")],
            ["batches", a.first_batch + "–" + a.last_batch],
            ["block", a.block_height === null ? "–" : fmtInt(a.block_height)],
          ]) : el("p", { class: "muted", text: "Not anchored (anchoring off on this node, or not yet)." }),
          el("h3", { text: "Proof" }),
          batch.proof ? el("div", { class: "proof-hex", title: "click to copy", onclick: () => copy(batch.proof) }, batch.proof)
            : el("p", { class: "muted", text: "Not proven yet." }))),
      el("h3", { text: "Transfers (" + batch.public_data.length + ")" }),
      el("div", { class: "table-wrap" }, el("table", { id: "batch-transfers" },
        el("thead", {}, el("tr", {}, ["#", "id", "nullifiers", "commitments", "in", "out", "fee", "dest", "deposit_ref"]
          .map((h) => el("th", { class: ["in", "out", "fee"].includes(h) ? "num" : null, text: h })))),
        el("tbody", {}, batch.public_data.map((p, i) => el("tr", {},
          el("td", { text: i }),
          el("td", {}, el("a", { href: "#transfer=" + batch.transfers[i], title: batch.transfers[i] }, short(batch.transfers[i], 8, 4))),
          el("td", {}, hash(p.nullifiers[0], 8, 4), el("br"), hash(p.nullifiers[1], 8, 4)),
          el("td", {}, hash(p.commitments[0], 8, 4), el("br"), hash(p.commitments[1], 8, 4)),
          el("td", { class: "num", text: fmtInt(p.public_in) }),
          el("td", { class: "num", text: fmtInt(p.public_out) }),
          el("td", { class: "num", text: fmtInt(p.fee) }),
          el("td", {}, isZero(p.dest) ? "–" : hash(p.dest, 8, 4)),
          el("td", {}, isZero(p.deposit_ref) ? "–" : hash(p.deposit_ref, 8, 4))))))));
    applyVerdict(n, v);
    summarise();
    panel.scrollIntoView({ block: "start" });
  }

  function isZero(hex) { return /^0x0*$/.test(hex); }
  function count(summary, key) { return summary ? fmtInt(summary[key]) : "–"; }

  // ---------- transfer lookup ----------

  async function lookupTransfer(id) {
    const out = $("transfer-result");
    $("transfer-id").value = id;
    if (!id) { out.replaceChildren(); return; }
    out.replaceChildren(el("p", { class: "muted", text: "Looking up…" }));
    try {
      const t = await getJson("/v1/transfers/" + encodeURIComponent(id));
      const rows = [["id", hash(t.id, 16, 8)], ["status", el("span", { id: "transfer-status" }, statusBadge(t.status === "batched" ? "sealed" : t.status), " ", t.status)]];
      if (t.batch !== undefined) rows.push(["batch", el("a", { href: "#batch=" + t.batch, text: "#" + t.batch })]);
      if (t.txid) rows.push(["Bitcoin txid", hash(t.txid, 16, 8)]);
      if (t.reason) rows.push(["reason", t.reason]);
      out.replaceChildren(kv(rows));
    } catch (e) {
      out.replaceChildren(el("p", { class: "banner error", id: "transfer-error", text: e.message }));
    }
    $("transfer").scrollIntoView({ block: "start" });
  }

  // ---------- routing and refresh ----------

  async function route() {
    const h = decodeURIComponent(location.hash.slice(1));
    const batch = /^batch=(\d+)$/.exec(h);
    const transfer = /^transfer=(.+)$/.exec(h);
    if (batch) {
      await showBatch(Number(batch[1]));
    } else {
      $("batch-detail").hidden = true;
      if (transfer) await lookupTransfer(transfer[1].trim());
    }
  }

  async function refresh() {
    try {
      await loadState();
      await loadBatches();
      showError("");
      await verifyListed();
    } catch (e) {
      showError("Could not reach the node: " + e.message);
    }
  }

  async function main() {
    $("transfer-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const id = $("transfer-id").value.trim();
      if (id) location.hash = "transfer=" + encodeURIComponent(id);
    });
    $("load-more").addEventListener("click", () => loadMore().catch((e) => showError(e.message)));
    window.addEventListener("hashchange", () => route().catch((e) => showError(e.message)));
    await loadVerifier();
    await refresh();
    await route().catch((e) => showError("Could not show " + location.hash + ": " + e.message));
    document.body.dataset.explorerState = "done";
    setInterval(refresh, REFRESH_MS);
  }

  main().catch((e) => {
    showError("The explorer failed: " + e.message);
    document.body.dataset.explorerState = "error";
  });
})();
