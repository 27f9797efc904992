// Browser vs native throughput of cross_entropy+kl on 1e6 pairs.
//
//   cd web && npm install && node benches/bench.mjs [--pairs N] [--rounds R]
//
// Headless Chromium (WebGPU enabled) loads web/benches/bench.html, which
// builds the same batch as `gaussdiv bench` and times evaluate() of the whole
// batch with backend "gpu" and "cpu" (the CPU path in wasm: one thread, simd128).
// Each round times, in turn: browser GPU, browser CPU, native CPU and native GPU
// (`gaussdiv bench --pairs N --backend cpu|gpu --json --runs 3`, its median
// end-to-end time). After one warm-up per path; the table gives the median over
// the rounds. Native GPU runs only where the tool finds an adapter (lavapipe
// needs XDG_RUNTIME_DIR; set here to a private temp dir when unset).
// Also prints the size of gaussdiv_bg.wasm, raw and gzip -9.
// Environment: GAUSSDIV_BIN (default target/release/gaussdiv), CHROMIUM.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join, extname, normalize, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WEB = join(ROOT, "web");
const BIN = process.env.GAUSSDIV_BIN || join(ROOT, "target", "release", "gaussdiv");
const arg = (name, def) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : def; };
const PAIRS = arg("--pairs", 1_000_000);
const ROUNDS = arg("--rounds", 5);
const MIME = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".css": "text/css" };

function serve(dir) {
  const server = createServer(async (req, res) => {
    try {
      const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
      if (path.includes("..")) throw new Error("bad path");
      const file = join(dir, path);
      if (!(await stat(file)).isFile()) throw new Error("not a file");
      res.writeHead(200, { "content-type": MIME[extname(file)] || "application/octet-stream" });
      res.end(await readFile(file));
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), "xdg-"));
function native(backend) {
  const out = execFileSync(BIN, ["bench", "--pairs", String(PAIRS), "--backend", backend, "--json", "--runs", "3"],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return JSON.parse(out)[0];
}

const paths = {}; // name -> { device, secs: [], note }
const record = (name, device, s, note = "") => { (paths[name] ||= { device, secs: [], note }).secs.push(s); };

const server = await serve(WEB);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--enable-unsafe-webgpu", "--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(`http://127.0.0.1:${server.address().port}/benches/bench.html`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 120_000 });
  const info = await page.evaluate((n) => window.bench.setup(n), PAIRS);
  const gpu = info.available;
  const gpuName = gpu ? [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "WebGPU" : null;
  console.error(`browser adapter: ${gpu ? gpuName + (info.fallback ? " (fallback)" : "") : "none: " + info.reason}`);

  const hasBin = existsSync(BIN);
  let nativeGpu = false;
  if (hasBin) {
    try { execFileSync(BIN, ["bench", "--pairs", "1000", "--backend", "gpu", "--json", "--runs", "1"], { stdio: "ignore" }); nativeGpu = true; }
    catch { console.error("native GPU: no adapter (skipped)"); }
  } else console.error(`no native tool at ${BIN} (skipped; set GAUSSDIV_BIN)`);

  // Warm-up (kernel compilation, buffer allocation) and a correctness check.
  const checks = {};
  for (const b of gpu ? ["gpu", "cpu"] : ["cpu"]) checks[b] = await page.evaluate((b) => window.bench.check(b), b);
  for (let r = 0; r < ROUNDS; r++) {
    if (gpu) record("browser GPU (WebGPU)", gpuName, (await page.evaluate(() => window.bench.time("gpu"))) / 1e3,
      `verify ${checks.gpu.passed ? "passed" : "FAILED"}, worst ${checks.gpu.worst.toExponential(1)}`);
    record("browser CPU (wasm, 1 thread)", "wasm32 simd128", (await page.evaluate(() => window.bench.time("cpu"))) / 1e3,
      `verify ${checks.cpu.passed ? "passed" : "FAILED"}, worst ${checks.cpu.worst.toExponential(1)}`);
    if (hasBin) { const n = native("cpu"); record("native CPU", n.device, n.median_s); }
    if (nativeGpu) { const n = native("gpu"); record("native GPU", n.device, n.median_s, `kernel only ${n.kernel_mpairs_per_s.toFixed(1)} M pairs/s`); }
    console.error(`round ${r + 1}/${ROUNDS} done`);
  }
} finally {
  await browser.close();
  server.close();
}

const wasm = readFileSync(join(WEB, "dist", "pkg", "gaussdiv_bg.wasm"));
console.log(`\n${PAIRS.toLocaleString("en")} pairs, cross_entropy+kl, median of ${ROUNDS} interleaved rounds (end to end: copy in, compute, copy out)\n`);
console.log("| path | device | median | M pairs/s | note |\n|---|---|---:|---:|---|");
for (const [name, p] of Object.entries(paths)) {
  const s = median(p.secs);
  console.log(`| ${name} | ${p.device} | ${(s * 1e3).toFixed(1)} ms | ${(PAIRS / s / 1e6).toFixed(1)} | ${p.note} |`);
}
console.log(`\ngaussdiv_bg.wasm: ${wasm.length.toLocaleString("en")} bytes raw, ${gzipSync(wasm, { level: 9 }).length.toLocaleString("en")} bytes gzip -9`);
