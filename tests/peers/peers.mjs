// The peer benchmark: the same weights in our engine (glassbox::lens as wasm32, src/bin/peer_bench.rs), in ONNX
// Runtime Web (wasm EP, 1 thread, and 2 where the page is cross-origin isolated) and in TensorFlow.js (wasm
// backend, 1 thread), in the headless Chromium the end-to-end tests use. For each workload the outputs are first
// checked equal (max abs difference, relative to the largest output, must stay within 1e-3), then each engine
// is timed, engines interleaved, several samples each; the table gives medians, minima, ratios peer/ours and,
// for the transformers, the share of the machine's matmul peak each forward reaches.
//
//     bash tests/peers/setup              # once: the peers from npm, the ONNX export, the GPT-2-small-shaped model
//     node tests/peers/peers.mjs [--quick]  # --quick: few samples, a smoke run
//
// Not part of the test command (.ci/test). Results: the table on stdout and .cache/peers/results-<date>.json.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const CACHE = path.join(REPO, '.cache/peers');
const QUICK = process.argv.includes('--quick');
/** Timed samples per engine and workload, and the length one sample aims at (calls are repeated to reach it). */
const SAMPLES = QUICK ? 3 : 10;
const SAMPLE_MS = QUICK ? 20 : 100;
/** Agreement every peer must reach before it is timed: max |peer - ours| / max |ours|. */
const TOLERANCE = 1e-3;

/** Where tests/peers/build-wasm puts our engine, relative to the checkout (it reads the same variable). */
const WASM_DIR = process.env.GLASSBOX_PEERS_WASM ?? '.cache/peers/wasm';
const ENGINES = [
  { id: 'ours', label: 'ours (wasm)', query: `engine=ours&wasm=${encodeURIComponent(WASM_DIR)}`, threads: 1 },
  // The build the app loads where the engine has relaxed SIMD (Chromium does): the matmul's fused multiply-add.
  { id: 'relaxed', label: 'ours, relaxed SIMD', query: `engine=ours&wasm=${encodeURIComponent(WASM_DIR + '-relaxed')}`, threads: 1 },
  { id: 'ort1', label: 'ORT Web, 1 thread', query: 'engine=ort&threads=1', threads: 1 },
  { id: 'ort2', label: 'ORT Web, 2 threads', query: 'engine=ort&threads=2', threads: 2 },
  { id: 'tfjs', label: 'TF.js wasm, 1 thread', query: 'engine=tfjs&threads=1', threads: 1 },
];

// ---- phases: every step is timed, and the times go into the results -------------------------------------------
const phases = [];
async function phase(name, f) {
  const t0 = performance.now();
  process.stderr.write(`[peers] ${name} ...\n`);
  const out = await f();
  const seconds = (performance.now() - t0) / 1000;
  phases.push({ name, seconds: +seconds.toFixed(2) });
  process.stderr.write(`[peers] ${name}: ${seconds.toFixed(1)} s\n`);
  return out;
}

// ---- the set-up: one clear message when anything is missing ---------------------------------------------------
const SETUP = 'bash tests/peers/setup';
function checkSetup(models) {
  const missing = [];
  const need = (rel, what) => fs.existsSync(path.join(REPO, rel)) || missing.push(`${rel} (${what})`);
  need('tests/e2e/node_modules/playwright-core', 'playwright-core');
  need('tests/peers/node_modules/onnxruntime-web/dist', 'onnxruntime-web');
  need('tests/peers/node_modules/@tensorflow/tfjs/dist', '@tensorflow/tfjs');
  need('tests/peers/node_modules/@tensorflow/tfjs-backend-wasm/dist', '@tensorflow/tfjs-backend-wasm');
  const chromium = process.env.GLASSBOX_CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(chromium)) missing.push(`${chromium} (Debian's chromium)`);
  for (const m of models) {
    if (m.dir) need(path.join(m.dir, 'model.safetensors'), `the ${m.id} model`);
    for (const onnx of [m.onnx, m.onnxCache].filter(Boolean)) {
      const file = path.join(REPO, onnx);
      if (!fs.existsSync(file)) missing.push(`${onnx} (ONNX export)`);
      else {
        // A graph older than its weights or its exporter may not be the function ours computes.
        const sources = [m.dir && path.join(m.dir, 'model.safetensors'), 'tests/peers/export_onnx.py'].filter(Boolean);
        for (const src of sources)
          if (fs.statSync(path.join(REPO, src)).mtimeMs > fs.statSync(file).mtimeMs)
            missing.push(`${onnx} is older than ${src} (to be exported again)`);
      }
    }
  }
  if (missing.length) {
    console.error(`The peer benchmark is not set up, or its files are out of date:\n  ${missing.join('\n  ')}\nRun once: ${SETUP}`);
    process.exit(2);
  }
}

// ---- workloads ------------------------------------------------------------------------------------------------
/** Deterministic token ids: the bos token first where the model has one, then ids drawn from the rest. */
function tokensFor(cfg, pos, seed) {
  const bos = cfg.bos_token_id ?? null;
  let s = seed >>> 0;
  const out = [];
  while (out.length < pos) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const t = s % cfg.vocab_size;
    if (out.length === 0 && bos !== null) out.push(bos);
    else if (t !== bos) out.push(t);
  }
  return out;
}

/** Multiply-adds x 2 of one forward over `pos` tokens (every matmul, attention over all pos x pos scores). */
function gpt2Flops(cfg, pos) {
  const d = cfg.n_embd;
  const dMlp = cfg.n_inner ?? 4 * d;
  const attn = 2 * pos * d * 3 * d + 2 * 2 * pos * pos * d + 2 * pos * d * d;
  const mlp = cfg.attn_only ? 0 : 2 * 2 * pos * d * dMlp;
  return cfg.n_layer * (attn + mlp) + 2 * pos * d * cfg.vocab_size;
}

function workloads() {
  const gpt2 = (id, dir, { cache = true, lengths = null } = {}) => {
    const cfg = JSON.parse(fs.readFileSync(path.join(REPO, dir, 'config.json'), 'utf8'));
    const rows = [];
    for (const pos of lengths ?? [cfg.n_positions]) {
      const input = { tokens: tokensFor(cfg, pos, pos) };
      const flops = gpt2Flops(cfg, pos);
      rows.push({ variant: 'logits', label: `${id} forward, ${pos} tokens, logits`, input, flops });
      if (cache) rows.push({ variant: 'cache', label: `${id} forward, ${pos} tokens, every activation`, input, flops });
    }
    const onnx = `.cache/peers/onnx/${id}.onnx`;
    return { id, kind: 'gpt2', dir, onnx, onnxCache: cache ? `.cache/peers/onnx/${id}.cache.onnx` : null, rows };
  };
  const cnnDir = 'public/models/mnist-cnn';
  const cnnCfg = JSON.parse(fs.readFileSync(path.join(REPO, cnnDir, 'config.json'), 'utf8'));
  // A pseudo-random image in [0, 1): no two pooled values tie, so every engine's max-pool gradient is the same.
  const side = cnnCfg.image_size;
  const pixels = Array.from({ length: side * side }, (_, i) => ((Math.imul(i + 1, 2654435761) >>> 8) % 10007) / 10007);
  const n = 1024;
  return [
    {
      id: 'matmul',
      kind: 'matmul',
      n,
      seed: 7,
      onnx: `.cache/peers/onnx/matmul-${n}.onnx`,
      rows: [{ variant: 'product', label: `matmul ${n}x${n}x${n} (roofline)`, input: null, flops: 2 * n ** 3 }],
    },
    gpt2('moby', 'public/models/moby'),
    gpt2('induction', 'public/models/induction'),
    gpt2('ioi', 'public/models/ioi'),
    {
      id: 'mnist-cnn',
      kind: 'cnn',
      dir: cnnDir,
      onnx: '.cache/peers/onnx/mnist-cnn.onnx',
      rows: [
        { variant: 'logits', label: 'MNIST CNN forward', input: { pixels, side } },
        { variant: 'grad', label: 'MNIST CNN forward + input gradient', input: { pixels, side, class: 3 } },
      ],
    },
    gpt2('gpt2-small', '.cache/peers/gpt2-small', { cache: false, lengths: [32, 128] }),
  ];
}

// ---- statistics and agreement ---------------------------------------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function floats(b64) {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

function agreement(ours, peer) {
  if (ours.length !== peer.length) return { maxAbs: Infinity, rel: Infinity, note: `${peer.length} values, ours ${ours.length}` };
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs(ours[i] - peer[i]);
    maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
    scale = Math.max(scale, Math.abs(ours[i]));
  }
  return { maxAbs, rel: maxAbs / Math.max(scale, 1e-30) };
}

// ---- the run --------------------------------------------------------------------------------------------------
async function main() {
  const t0 = performance.now();
  const models = workloads();
  checkSetup(models);
  await phase('build the engine (tests/peers/build-wasm)', () => {
    const r = spawnSync('bash', [path.join(HERE, 'build-wasm')], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`tests/peers/build-wasm failed (exit ${r.status}); a tool missing? ${SETUP}`);
  });
  // Imported only now: a missing tests/e2e/node_modules is reported by checkSetup, not as an import error.
  const { launchChromium } = await import('../e2e/harness.mjs');
  const { startServer } = await import('../e2e/serve.mjs');

  // Cross-origin isolation (COOP + COEP) gives the pages SharedArrayBuffer, which ONNX Runtime's threads need, and
  // a 5 µs performance.now() instead of 100 µs.
  const server = await startServer(REPO, {
    requireIndex: false,
    headers: { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' },
  });
  const browser = await phase('start Chromium', () => launchChromium());
  const problems = [];
  const pages = {};
  const infos = {};
  await phase('open one page per engine', async () => {
    for (const e of ENGINES) {
      const context = await browser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(600_000);
      page.on('pageerror', (err) => problems.push(`${e.id}: ${err.message}`));
      page.on('console', (m) => m.type() === 'error' && problems.push(`${e.id}: console: ${m.text()}`));
      await page.goto(`${server.url}/tests/peers/page.html?${e.query}`);
      await page.waitForFunction(() => window.peerReady === true, null, { timeout: 120_000 }).catch((err) => {
        throw new Error(`the ${e.id} page did not start: ${problems.join('; ') || err.message}`);
      });
      infos[e.id] = await page.evaluate(() => window.peer.info());
      pages[e.id] = page;
    }
  });
  const engines = ENGINES.filter((e) => e.threads === 1 || infos[e.id].crossOriginIsolated);
  const chromium = browser.version();
  const results = [];

  for (const model of models) {
    const loadMs = await phase(`load ${model.id}`, async () => {
      const ms = {};
      const args = [model.id, specOf(model)];
      for (const e of engines) ms[e.id] = await pages[e.id].evaluate(([id, s]) => window.peer.load(id, s), args);
      return ms;
    });
    for (const row of model.rows) {
      const entry = { workload: row.label, model: model.id, variant: row.variant, flops: row.flops ?? null, engines: {} };
      results.push(entry);
      await phase(`check and time: ${row.label}`, async () => {
        const rowId = `${model.id}/${row.variant}/${row.label}`;
        const agreeing = await check(pages, engines, model, row, rowId, entry, problems);
        for (const e of engines) if (entry.engines[e.id]) entry.engines[e.id].load_ms = +loadMs[e.id].toFixed(1);
        await time(pages, agreeing, rowId, entry);
      });
    }
    await phase(`unload ${model.id}`, async () => {
      for (const e of engines) await pages[e.id].evaluate((id) => window.peer.unload(id), model.id);
    });
  }
  await browser.close();
  await server.close();

  // Roofline: the best single-thread matmul rate any engine reached (from its fastest sample).
  const mm = results.find((r) => r.model === 'matmul');
  let peak = { gflops: null, engine: null };
  for (const e of engines.filter((x) => x.threads === 1)) {
    const r = mm.engines[e.id];
    if (r?.min_ms) {
      const gflops = mm.flops / (r.min_ms * 1e6);
      if (!(peak.gflops >= gflops)) peak = { gflops, engine: e.id };
    }
  }
  for (const row of results) {
    const ours = row.engines.ours?.median_ms;
    for (const [id, r] of Object.entries(row.engines)) {
      if (!r.median_ms) continue;
      r.ratio = ours ? r.median_ms / ours : null;
      if (row.flops) {
        r.gflops = row.flops / (r.median_ms * 1e6);
        if (row.model !== 'matmul' && peak.gflops) r.roofline_share = r.gflops / peak.gflops;
      }
    }
  }

  const table = render(results, engines, peak) + '\n\n' + renderLoads(models, results, engines);
  console.log(table);
  const meta = {
    date: new Date().toISOString(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    quick: QUICK,
    samples: SAMPLES,
    sample_ms: SAMPLE_MS,
    tolerance: TOLERANCE,
    chromium,
    engines: Object.fromEntries(engines.map((e) => [e.id, { label: e.label, ...infos[e.id] }])),
    roofline: peak,
    phases,
    total_seconds: +((performance.now() - t0) / 1000).toFixed(1),
  };
  fs.mkdirSync(CACHE, { recursive: true });
  const file = path.join(CACHE, `results-${meta.date.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify({ meta, table, results }, null, 2) + '\n');
  console.log(`\nresults: ${path.relative(REPO, file)}; ${meta.total_seconds} s in all (phases in the file)`);
  if (problems.length) console.error(`[peers] FAILED: problems on the pages:\n  ${problems.join('\n  ')}`);
  const disagreements = results.flatMap((r) => Object.values(r.engines)).filter((r) => r.disagrees).length;
  if (disagreements) console.error(`[peers] FAILED: ${disagreements} peer output(s) disagree with ours beyond ${TOLERANCE}`);
  if (problems.length || disagreements) process.exit(1);
}

/** What a page's `peer.load` is given: the files by their URL on the benchmark's server. */
function specOf(model) {
  const url = (rel) => rel && `/${rel}`;
  const { kind, n, seed } = model;
  return { kind, dir: url(model.dir), onnx: url(model.onnx), onnxCache: url(model.onnxCache), n, seed };
}

/**
 * Readies `row` on every engine and compares each peer's first output with ours (ours goes first). Fills
 * `entry.engines`; returns the engines that can run the row and agree with ours.
 */
async function check(pages, engines, model, row, rowId, entry, problems) {
  let ours = null;
  const agreeing = [];
  for (const e of engines) {
    const page = pages[e.id];
    const args = [rowId, model.id, row.variant, row.input];
    const supported = await page.evaluate(([r, id, v, input]) => window.peer.prepare(r, id, v, input), args);
    const result = { supported };
    entry.engines[e.id] = result;
    if (!supported) continue;
    const out = await page.evaluate((r) => window.peer.output(r), rowId);
    const values = floats(out.b64);
    result.first_call_ms = +out.ms.toFixed(3);
    if (out.extra?.activations !== undefined) result.activations = out.extra.activations;
    if (e.id === 'ours') {
      ours = values;
      entry.activations = result.activations;
      agreeing.push(e);
      continue;
    }
    if (row.variant === 'cache' && result.activations !== entry.activations) {
      problems.push(`${e.id}: "${row.label}" kept ${result.activations} activations, ours ${entry.activations}`);
    }
    Object.assign(result, agreement(ours, values));
    if (result.rel <= TOLERANCE) {
      agreeing.push(e);
    } else {
      result.disagrees = true;
      console.error(
        `[peers] DISAGREEMENT: ${e.label} on "${row.label}": max |Δ| ${result.maxAbs.toExponential(2)}, ` +
          `${result.rel.toExponential(2)} of the largest output (allowed ${TOLERANCE})`,
      );
    }
  }
  return agreeing;
}

/** Times `rowId` on `engines`: calls per sample calibrated per engine, then SAMPLES rounds, engines interleaved. */
async function time(pages, engines, rowId, entry) {
  const perSample = {};
  for (const e of engines) {
    await pages[e.id].evaluate((r) => window.peer.time(r, 1), rowId); // warm-up
    const once = await pages[e.id].evaluate((r) => window.peer.time(r, 1), rowId);
    perSample[e.id] = Math.max(1, Math.round(SAMPLE_MS / Math.max(once, 1e-3)));
  }
  const samples = Object.fromEntries(engines.map((e) => [e.id, []]));
  for (let i = 0; i < SAMPLES; i++) {
    // A different engine goes first in each round, so none always runs right after the same other one.
    for (let j = 0; j < engines.length; j++) {
      const e = engines[(i + j) % engines.length];
      samples[e.id].push(await pages[e.id].evaluate(([r, k]) => window.peer.time(r, k), [rowId, perSample[e.id]]));
    }
  }
  for (const e of engines) {
    const r = entry.engines[e.id];
    r.calls_per_sample = perSample[e.id];
    r.samples_ms = samples[e.id].map((x) => +x.toFixed(4));
    r.median_ms = median(samples[e.id]);
    r.min_ms = Math.min(...samples[e.id]);
  }
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: REPO, encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

// ---- the table ------------------------------------------------------------------------------------------------
function render(results, engines, peak) {
  const fmt = (x, digits = 3) => (x == null ? '' : x >= 100 ? x.toFixed(1) : x >= 10 ? x.toFixed(2) : x.toFixed(digits));
  const head = ['workload', 'engine', 'median ms', 'min ms', 'peer/ours', 'GFLOP/s', 'roofline', 'max |Δ| (rel)', 'acts'];
  const lines = [];
  for (const row of results) {
    engines.forEach((e, i) => {
      const r = row.engines[e.id];
      const name = i === 0 ? row.workload : '';
      if (!r || !r.supported) return lines.push([name, e.label, '—', '—', '', '', '', '', '']);
      if (r.disagrees)
        return lines.push([name, e.label, 'DISAGREES', '', '', '', '', `${r.maxAbs.toExponential(1)} (${r.rel.toExponential(1)})`, '']);
      lines.push([
        name,
        e.label,
        fmt(r.median_ms),
        fmt(r.min_ms),
        e.id === 'ours' ? '1.00' : r.ratio?.toFixed(2) ?? '',
        r.gflops ? r.gflops.toFixed(1) : '',
        r.roofline_share != null ? `${(100 * r.roofline_share).toFixed(0)}%` : '',
        e.id === 'ours' ? 'reference' : `${r.maxAbs.toExponential(1)} (${r.rel.toExponential(1)})`,
        r.activations != null ? String(r.activations) : '',
      ]);
    });
  }
  const widths = head.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c].length)));
  const show = (cells) => cells.map((x, c) => (c < 2 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ');
  const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  const out = [show(head), rule];
  let last = null;
  for (const l of lines) {
    if (l[0] && last !== null) out.push('');
    out.push(show(l));
    last = l;
  }
  out.push(rule);
  const peakText = peak.gflops
    ? `${peak.gflops.toFixed(1)} GFLOP/s, the fastest single-thread 1024³ matmul sample (${peak.engine})`
    : 'none';
  out.push(`roofline: ${peakText}; "roofline" = a forward's FLOPs / its median time / that peak`);
  out.push(`(a single-thread peak, so two threads can pass 100%).`);
  out.push(`peer/ours: median over median (below 1: the peer is faster). max |Δ|: the output (logits, gradient or`);
  out.push(`product) against ours, absolute and relative to ours' largest value. acts: activations the run kept`);
  out.push(`(TransformerLens's hooks; ORT hands each back to JS as a copy, ours and TF.js keep them in wasm memory).`);
  out.push(`${SAMPLES} samples per engine and workload, each ${SAMPLE_MS} ms or more of back-to-back calls, engines`);
  out.push(`interleaved; ms per call. One headless Chromium; the machine may be shared, so compare within one run.`);
  return out.join('\n');
}

/** Each model's load per engine: fetching the files, parsing them, building the model or session. */
function renderLoads(models, results, engines) {
  const head = ['load (ms)', ...engines.map((e) => e.label)];
  const lines = models.map((m) => {
    const row = results.find((r) => r.model === m.id);
    return [m.id, ...engines.map((e) => row.engines[e.id]?.load_ms?.toFixed(1) ?? '')];
  });
  const widths = head.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c].length)));
  const show = (cells) => cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ');
  return [show(head), ...lines.map(show)].join('\n');
}

main().catch((err) => {
  console.error(`[peers] ${err.stack ?? err}`);
  process.exit(1);
});
