// End-to-end test of the demo page (web/dist/index.html) in headless Chromium.
//
//   cd web && npm install && node tests/page.mjs      (after scripts/build-web.sh)
//
// Serves web/dist on an ephemeral port, opens the page, uploads
// gaussdiv/examples/pairs.csv via #input, evaluates cross_entropy+kl on the
// GPU (when the browser has a WebGPU adapter) and on the CPU (wasm), downloads
// #download and compares every value with the native tool's output
// (`gaussdiv eval pairs.csv --metrics cross_entropy,kl --backend cpu`).
// Error per value, as the tolerance model (docs/ARCHITECTURE.md §3) with the
// native f32 result as the reference t:
//   kl:            |y - t| / max(|t|, 1e-30)                 (relative; absolute floor 1e-30)
//   cross_entropy: |y - t| / (½(1 + ln 2π) + |ln σ1| + KL_t)  (scaled: the magnitude of the summed terms)
//   NaN matches NaN only; ±inf must match exactly. Bound: 2e-6.
// Then a CSV with a negative sigma must show the tool's message (row, column,
// value) in #error. With GAUSSDIV_REQUIRE_GPU=1 a missing WebGPU adapter fails.
//
// Environment: GAUSSDIV_BIN (default target/release/gaussdiv, built with
// `cargo build --release -p gaussdiv-cli`), CHROMIUM (default /usr/bin/chromium),
// GAUSSDIV_REQUIRE_GPU=1. Exit status 1 on any failure.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join, extname, normalize, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DIST = join(ROOT, "web", "dist");
const PAIRS = join(ROOT, "gaussdiv", "examples", "pairs.csv");
const BIN = process.env.GAUSSDIV_BIN || join(ROOT, "target", "release", "gaussdiv");
const REQUIRE_GPU = process.env.GAUSSDIV_REQUIRE_GPU === "1";
const BOUND = 2e-6;
const H0 = 0.5 * (1 + Math.log(2 * Math.PI));
const TIMEOUT = 180_000; // lavapipe compiles the kernels slowly

const MIME = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript",
  ".css": "text/css", ".wasm": "application/wasm", ".json": "application/json", ".csv": "text/csv" };

/** A static file server for `dir` on 127.0.0.1 and an ephemeral port. */
export function serve(dir) {
  const server = createServer(async (req, res) => {
    try {
      let path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
      if (path.includes("..")) throw new Error("bad path");
      let file = join(dir, path);
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      const body = await readFile(file);
      res.writeHead(200, { "content-type": MIME[extname(file)] || "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

/** CSV text -> { header, rows } with the tool's spellings of non-finite values. */
function parseCsv(text) {
  const num = (s) => (s === "inf" ? Infinity : s === "-inf" ? -Infinity : s === "NaN" ? NaN : Number(s));
  const lines = text.trim().split(/\r?\n/);
  return { header: lines[0].split(","), rows: lines.slice(1).map((l) => l.split(",").map(num)) };
}

function valueError(metric, y, t, sigma1, klT) {
  if (Number.isNaN(t) || Number.isNaN(y)) return Number.isNaN(t) && Number.isNaN(y) ? 0 : Infinity;
  if (!Number.isFinite(t) || !Number.isFinite(y)) return y === t ? 0 : Infinity;
  if (metric === "kl") return Math.abs(y - t) / Math.max(Math.abs(t), 1e-30);
  const scale = H0 + Math.abs(Math.log(sigma1)) + (Number.isFinite(klT) ? Math.abs(klT) : 0);
  return Math.abs(y - t) / Math.max(scale, 1e-30);
}

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); return ok; };

async function waitSettled(page) {
  await page.waitForFunction(() => ["done", "error"].includes(document.getElementById("status").dataset.state),
    null, { timeout: TIMEOUT });
  return page.$eval("#status", (s) => s.dataset.state);
}

async function main() {
  if (!existsSync(BIN)) {
    throw new Error(`no native tool at ${BIN}: build it (cargo build --release -p gaussdiv-cli) or set GAUSSDIV_BIN`);
  }
  const expected = parseCsv(execFileSync(BIN, ["eval", PAIRS, "--metrics", "cross_entropy,kl", "--backend", "cpu"],
    { encoding: "utf8" }));
  const input = parseCsv(readFileSync(PAIRS, "utf8"));
  const sigma1 = input.rows.map((r) => r[input.header.indexOf("sigma1")]);

  const server = await serve(DIST);
  const url = `http://127.0.0.1:${server.address().port}/`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--enable-unsafe-webgpu", "--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage({ acceptDownloads: true });
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(url);
    await page.waitForFunction(() => ["ready", "error"].includes(document.getElementById("status").dataset.state),
      null, { timeout: TIMEOUT });
    if ((await page.$eval("#status", (s) => s.dataset.state)) !== "ready") {
      throw new Error(`page did not start: ${await page.textContent("#error")}`);
    }
    const gpu = (await page.$eval("#adapter", (a) => a.dataset.available)) === "true";
    const adapterText = await page.textContent("#adapter-text");
    console.log(`adapter: ${adapterText}`);
    if (REQUIRE_GPU) check(gpu, "GAUSSDIV_REQUIRE_GPU=1 but the browser has no WebGPU adapter");

    for (const backend of gpu ? ["gpu", "cpu"] : ["cpu"]) {
      await page.selectOption("#backend", backend);
      await page.setInputFiles("#input", PAIRS);
      await page.click("#evaluate");
      const state = await waitSettled(page);
      if (!check(state === "done", `${backend}: status ${state}: ${await page.textContent("#error")}`)) continue;
      check((await page.$eval("#used", (u) => u.dataset.backend)) === backend, `${backend}: #used is not ${backend}`);
      check((await page.$eval("#verify", (v) => v.dataset.passed)) === "true", `${backend}: verify() reported failures`);
      const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
      check(download.suggestedFilename() === "results.csv", `${backend}: download is named ${download.suggestedFilename()}`);
      const got = parseCsv(await readFile(await download.path(), "utf8"));
      check(got.header.join() === expected.header.join(), `${backend}: header ${got.header} != ${expected.header}`);
      check(got.rows.length === expected.rows.length, `${backend}: ${got.rows.length} rows, want ${expected.rows.length}`);
      const worst = {};
      expected.rows.forEach((want, i) => {
        const klT = want[expected.header.indexOf("kl")];
        expected.header.forEach((m, j) => {
          const y = got.rows[i]?.[j];
          const e = y === undefined ? Infinity : valueError(m, y, want[j], sigma1[i], klT);
          if (!worst[m] || e > worst[m].e) worst[m] = { e, i, y, t: want[j] };
          check(e <= BOUND, `${backend}: row ${i} ${m} = ${y}, native ${want[j]} (error ${e.toExponential(2)})`);
        });
      });
      const summary = Object.entries(worst).map(([m, w]) => `${m} worst ${w.e.toExponential(2)} (row ${w.i})`).join(", ");
      console.log(`${backend}: ${got.rows.length} rows vs native: ${summary}; ${await page.textContent("#summary")}`);
    }

    // A negative sigma on data row 3 must show the tool's message.
    await page.selectOption("#backend", "auto");
    await page.setInputFiles("#input", { name: "bad.csv", mimeType: "text/csv",
      buffer: Buffer.from("mu1,sigma1,mu2,sigma2\n0,1,1,2\n0,1,1,2\n0,-0.5,1,2\n") });
    await page.click("#evaluate");
    const state = await waitSettled(page);
    const msg = (await page.textContent("#error")) || "";
    const visible = await page.isVisible("#error");
    check(state === "error" && visible && /row 3/.test(msg) && /sigma1/.test(msg) && /-0\.5/.test(msg),
      `bad CSV: state ${state}, #error visible ${visible}: ${JSON.stringify(msg)}`);
    check(!(await page.getAttribute("#download", "href")), "bad CSV: #download still has an href");
    console.log(`bad CSV: ${msg}`);
    check(pageErrors.length === 0, `uncaught page errors: ${pageErrors.join("; ")}`);
  } finally {
    await browser.close();
    server.close();
  }
}

try {
  await main();
} catch (e) {
  failures.push(e.stack || String(e));
}
if (failures.length) {
  console.error(`FAIL (${failures.length}):\n  ` + failures.slice(0, 30).join("\n  "));
  process.exit(1);
}
console.log("PASS");
