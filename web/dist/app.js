// gaussdiv demo page (ES module, no build step): read a CSV/NPY file of
// Gaussian pairs with parseTable, evaluate the chosen measures in slices of
// SLICE pairs (so the progress bar moves), then show the adapter, timing,
// verify() summary, a histogram per measure, the first rows, and a download
// link to the results as the tool's CSV (toCsv). Every failure ends up in
// #error; #status reads "done" (data-state="done") when results are ready.
import init, { evaluate, verify, adapterInfo, parseTable, toCsv } from "./pkg/gaussdiv.js";

const METRICS = ["cross_entropy", "kl", "entropy", "entropy_q", "reverse_kl", "jeffreys",
  "bhattacharyya", "bhattacharyya_coefficient", "hellinger", "wasserstein2"];
const DEFAULT_METRICS = ["cross_entropy", "kl"];
const SCALE = { std: "sigma", var: "var", logstd: "logstd", logvar: "logvar", precision: "precision" };
const SLICE = 256 * 1024; // pairs per evaluate() call
const SHOWN_ROWS = 20;
const BINS = 40;

const $ = (id) => document.getElementById(id);
let file = null;      // { name, bytes }
let adapter = null;   // adapterInfo() result
let downloadUrl = null;

function setStatus(state, text = state) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

function showError(e) {
  const msg = e && e.message ? e.message : String(e);
  $("error").textContent = msg;
  $("error").hidden = false;
  setStatus("error", "failed");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

const yieldToBrowser = () => new Promise((r) => setTimeout(r, 0));

function fmt(v) {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  const r = Number(v.toPrecision(7)), a = Math.abs(r);
  return a !== 0 && (a < 1e-3 || a >= 1e7) ? r.toExponential() : String(r);
}

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function tableRow(cells, tag = "td") {
  const tr = el("tr");
  for (const c of cells) tr.append(el(tag, c));
  return tr;
}

// ---- inputs ---------------------------------------------------------------

function buildMetricBoxes() {
  for (const m of METRICS) {
    const box = el("input", undefined, { type: "checkbox", name: "metric", value: m });
    box.checked = DEFAULT_METRICS.includes(m);
    const label = el("label");
    label.append(box, " " + m);
    $("metrics").append(label);
  }
}

function options() {
  const metrics = [...document.querySelectorAll('input[name="metric"]:checked')].map((b) => b.value);
  if (metrics.length === 0) throw new Error("choose at least one measure");
  return { metrics, param: $("param").value, backend: $("backend").value, onInvalid: $("onInvalid").value };
}

async function takeFile(f) {
  if (!f) return;
  file = { name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) };
  $("file").textContent = `${f.name} (${f.size.toLocaleString()} bytes)`;
  $("evaluate").disabled = !adapter;
  clearError();
}

function wireInputs() {
  $("input").addEventListener("change", (e) => takeFile(e.target.files[0]).catch(showError));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    takeFile(e.dataTransfer.files[0]).catch(showError);
  });
  $("evaluate").addEventListener("click", () => run().catch(showError));
}

// ---- adapter --------------------------------------------------------------

function showAdapter(info) {
  $("adapter").dataset.available = String(!!info.available);
  const p = $("adapter-text");
  if (!info.available) {
    p.textContent = `No WebGPU adapter (${info.reason}); "auto" and "cpu" run the CPU path in wasm.`;
    return;
  }
  const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" · ");
  const l = info.limits || {};
  p.textContent = `${info.backend}: ${name || "(adapter gives no name)"}` +
    `${info.fallback ? " — software/fallback adapter" : ""}; f64: ${info.f64 ? "yes" : "no"}` +
    `; flushes subnormals: ${info.flushesSubnormals ? "yes" : "no"}` +
    `; chunk ${Number(info.chunkPairs).toLocaleString()} pairs` +
    `; max storage binding ${Number(l.maxStorageBufferBindingSize).toLocaleString()} B`;
}

// ---- run ------------------------------------------------------------------

async function run() {
  if (!file) throw new Error("choose a CSV or NPY file first");
  const opts = options();
  clearError();
  $("results").hidden = true;
  $("download").removeAttribute("href");
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = null;
  $("evaluate").disabled = true;
  const progress = $("progress");
  progress.hidden = false;
  progress.removeAttribute("value"); // indeterminate while parsing
  try {
    setStatus("parsing", `parsing ${file.name}…`);
    await yieldToBrowser();
    const t0 = performance.now();
    const pairs = await parseTable(file.bytes, file.name, { param: opts.param, onInvalid: opts.onInvalid });
    const parseMs = performance.now() - t0;
    const n = pairs.length / 4;
    if (n === 0) throw new Error(`${file.name} holds no rows`);

    const k = opts.metrics.length;
    const results = new Float32Array(n * k);
    progress.value = 0;
    const t1 = performance.now();
    for (let start = 0; start < n; start += SLICE) {
      const end = Math.min(n, start + SLICE);
      setStatus("evaluating", `evaluating ${end.toLocaleString()} / ${n.toLocaleString()} pairs…`);
      let part;
      try {
        part = await evaluate(pairs.subarray(4 * start, 4 * end), opts);
      } catch (e) {
        // Row numbers from evaluate() are relative to the slice: make them absolute.
        const msg = String(e && e.message ? e.message : e)
          .replace(/at row (\d+)/, (_, r) => `at row ${Number(r) + start}`);
        throw new Error(msg);
      }
      results.set(part, start * k);
      progress.value = end / n;
      await yieldToBrowser();
    }
    const evalMs = performance.now() - t1;

    const used = opts.backend === "auto" ? (adapter && adapter.available ? "gpu" : "cpu") : opts.backend;
    setStatus("verifying", "verifying against the CPU f64 reference…");
    await yieldToBrowser();
    const report = await verify(pairs, results, { ...opts, backend: used });

    showResults({ pairs, results, opts, n, parseMs, evalMs, used, report });
    const csv = toCsv(results, { metrics: opts.metrics });
    downloadUrl = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
    $("download").href = downloadUrl;
    $("results").hidden = false;
    setStatus("done", "done");
  } finally {
    progress.hidden = true;
    $("evaluate").disabled = false;
  }
}

// ---- results --------------------------------------------------------------

function showResults({ pairs, results, opts, n, parseMs, evalMs, used, report }) {
  const rate = n / (evalMs / 1000);
  const rateText = rate >= 1e6 ? `${(rate / 1e6).toFixed(2)} M` : rate >= 1e3 ? `${(rate / 1e3).toFixed(1)} k` : rate.toFixed(0);
  $("summary").textContent = `${n.toLocaleString()} pairs evaluated in ${evalMs.toFixed(1)} ms ` +
    `(${rateText} pairs/s; parsing took ${parseMs.toFixed(1)} ms)`;
  $("used").dataset.backend = used;
  $("used").textContent = used === "gpu" ? "on WebGPU." : "on the CPU (wasm).";

  const v = $("verify");
  v.replaceChildren(tableRow(["measure", "bound", "failures", "worst row", "got", "want", "error", "verdict"], "th"));
  for (const m of report.metrics) {
    const w = m.worst;
    const tr = tableRow([m.metric, m.bound.toExponential(0), String(m.failures),
      w ? String(w.row) : "—", w ? fmt(w.got) : "—", w ? fmt(w.want) : "—",
      w ? w.error.toExponential(2) : "—", m.failures === 0 ? "pass" : "FAIL"]);
    tr.className = m.failures === 0 ? "pass" : "fail";
    v.append(tr);
  }
  v.dataset.passed = String(report.passed);

  const k = opts.metrics.length;
  const h = $("histograms");
  h.replaceChildren();
  opts.metrics.forEach((m, j) => h.append(histogram(m, results, j, k)));

  const s = SCALE[opts.param];
  const rows = $("rows");
  rows.replaceChildren(tableRow(["row", "mu1", s + "1", "mu2", s + "2", ...opts.metrics], "th"));
  for (let i = 0; i < Math.min(n, SHOWN_ROWS); i++) {
    const cells = [String(i)];
    for (let c = 0; c < 4; c++) cells.push(fmt(pairs[4 * i + c]));
    for (let j = 0; j < k; j++) cells.push(fmt(results[i * k + j]));
    rows.append(tableRow(cells));
  }
}

// A histogram of column j as inline SVG; log10 x when at least 99% of the
// finite values are > 0 and those span more than three decades. Non-finite values (and values <= 0 on a log
// axis) are counted in the caption, not drawn.
function histogram(name, results, j, k) {
  const vals = [];
  let skipped = 0;
  for (let i = j; i < results.length; i += k) {
    if (Number.isFinite(results[i])) vals.push(results[i]); else skipped++;
  }
  let lo = Infinity, hi = -Infinity;
  for (const x of vals) { if (x < lo) lo = x; if (x > hi) hi = x; }
  const positive = vals.filter((x) => x > 0);
  let pmin = Infinity;
  for (const x of positive) if (x < pmin) pmin = x;
  const log = positive.length > 0 && positive.length >= 0.99 * vals.length && hi / pmin > 1e3;
  const data = log ? positive.map(Math.log10) : vals;
  skipped += vals.length - data.length;
  const a = log ? Math.log10(pmin) : lo, b = log ? Math.log10(hi) : hi;
  const counts = new Array(BINS).fill(0);
  const width = b > a ? b - a : 1;
  for (const x of data) counts[Math.min(BINS - 1, Math.floor(((x - a) / width) * BINS))]++;
  const max = Math.max(1, ...counts);

  const W = 320, H = 120, NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H + 16}`);
  svg.setAttribute("class", "hist");
  counts.forEach((c, i) => {
    if (c === 0) return;
    const r = document.createElementNS(NS, "rect");
    const bh = (c / max) * H;
    r.setAttribute("x", (i * W) / BINS);
    r.setAttribute("y", H - bh);
    r.setAttribute("width", W / BINS - 1);
    r.setAttribute("height", bh);
    r.append(Object.assign(document.createElementNS(NS, "title"), { textContent: `${c}` }));
    svg.append(r);
  });
  const label = (x, anchor, text) => {
    const t = document.createElementNS(NS, "text");
    t.setAttribute("x", x); t.setAttribute("y", H + 13); t.setAttribute("text-anchor", anchor);
    t.textContent = text;
    svg.append(t);
  };
  if (data.length) {
    label(0, "start", fmt(log ? 10 ** a : a));
    label(W, "end", fmt(log ? 10 ** b : b));
  }
  const fig = el("figure");
  fig.append(svg, el("figcaption", `${name}${log ? " (log x)" : ""}: ${data.length.toLocaleString()} values` +
    (skipped ? `, ${skipped.toLocaleString()} not shown (non-finite${log ? " or ≤ 0" : ""})` : "")));
  return fig;
}

// ---- start ----------------------------------------------------------------

async function start() {
  buildMetricBoxes();
  wireInputs();
  await init();
  setStatus("loading", "starting WebGPU…");
  try {
    adapter = await adapterInfo();
  } catch (e) {
    adapter = { available: false, reason: e && e.message ? e.message : String(e) };
  }
  showAdapter(adapter);
  $("evaluate").disabled = !file;
  setStatus("ready", file ? "ready" : "ready: choose a file");
}

start().catch(showError);
