// The app's two builds (index.html, src/worker/post_build.mjs): Chromium has relaxed SIMD, so it runs the build
// whose matrix products use the fused multiply-add; a browser without relaxed SIMD must run the plain simd128 build.
// Chromium's V8 can no longer turn relaxed SIMD off, so the plain side is checked twice: in Chromium with the
// loader's probe answered "no" (the whole app then runs on the plain build, with the same numbers), and in Node's
// V8, which has relaxed SIMD off by default or by flag (a real engine without it: the relaxed .wasm is refused,
// and the loader and the service worker both pick the plain build).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { launch, shutdown, openPage, assertClean, eventually, waitRev, DIST } from './harness.mjs';

const TIMEOUT = { timeout: 180_000 };
let browser;
before(async () => {
  ({ browser } = await launch());
});
after(shutdown);

/** The page's build, the app files it requested, and the top 5 of one logit-lens cell of 9.2.2. */
async function lensOn(page) {
  await waitRev(page, 1);
  await page.click('[data-testid=lens-cell][data-layer="4"][data-pos="10"]');
  await eventually(async () => assert.equal(await page.locator('[data-testid=top5-item]').count(), 5));
  const top5 = await page.$$eval('[data-testid=top5-item]', (rs) => rs.map((r) => ({ token: r.dataset.token, p: Number(r.dataset.p) })));
  const build = await page.evaluate(() => document.documentElement.dataset.wasmBuild);
  return { build, top5 };
}

function codeRequests(requests) {
  return requests.filter((u) => /\/glassbox(_relaxed)?-[0-9a-f]+(_bg\.wasm|\.js)$/.test(u)).map((u) => u.split('/').pop());
}

test('Chromium runs the relaxed-SIMD build, and the plain one where the probe fails, with the same numbers', TIMEOUT, async (t) => {
  const requests = { relaxed: [], plain: [] };
  const relaxedPage = await openPage('/#/9.2.2', { t, wait: false });
  relaxedPage.on('request', (r) => requests.relaxed.push(r.url()));
  await relaxedPage.reload();
  // As a browser without relaxed SIMD answers the loader's probe (the only 37-byte module it validates).
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, serviceWorkers: 'block' });
  await context.addInitScript(() => {
    const validate = WebAssembly.validate;
    WebAssembly.validate = (bytes) => (bytes.byteLength === 37 ? false : validate(bytes));
  });
  const plainPage = await openPage('/#/9.2.2', { t, context, wait: false });
  plainPage.on('request', (r) => requests.plain.push(r.url()));
  await plainPage.reload();

  const relaxed = await lensOn(relaxedPage);
  const plain = await lensOn(plainPage);
  assert.equal(relaxed.build, 'relaxed-simd');
  assert.equal(plain.build, 'simd128');
  // Each fetched its own build's two files and nothing of the other's.
  const fetched = { relaxed: codeRequests(requests.relaxed), plain: codeRequests(requests.plain) };
  assert.equal(fetched.relaxed.length, 2, `relaxed: ${fetched.relaxed}`);
  assert.ok(fetched.relaxed.every((f) => f.startsWith('glassbox_relaxed-')), `relaxed: ${fetched.relaxed}`);
  assert.equal(fetched.plain.length, 2, `plain: ${fetched.plain}`);
  assert.ok(fetched.plain.every((f) => /^glassbox-/.test(f)), `plain: ${fetched.plain}`);
  // The same predictions; probabilities within float rounding (a fused multiply-add rounds once, not twice).
  assert.deepEqual(plain.top5.map((x) => x.token), relaxed.top5.map((x) => x.token));
  for (let i = 0; i < 5; i++) {
    assert.ok(Math.abs(plain.top5[i].p - relaxed.top5[i].p) <= 1e-5, `top ${i}: ${plain.top5[i].p} against ${relaxed.top5[i].p}`);
  }
  assertClean(relaxedPage);
  assertClean(plainPage);
});

test('an engine without relaxed SIMD refuses the relaxed build, and the loader and the offline copy pick the plain one', TIMEOUT, () => {
  const html = fs.readFileSync(path.join(DIST, 'index.html'), 'utf8');
  const picker = html.match(/<script data-glassbox-loader="pick">([\s\S]*?)<\/script>/)[1];
  const code = fs.readdirSync(DIST).filter((f) => /^glassbox(_relaxed)?-[0-9a-f]+_bg\.wasm$/.test(f));
  assert.equal(code.length, 2, `two builds in dist/: ${code}`);
  // Run in a child Node whose V8 has relaxed SIMD off: the loader's script with a stand-in document, and the
  // built service worker with stand-ins for its globals (only its list of files is read).
  const child = `
    const fs = require('node:fs'), vm = require('node:vm'), path = require('node:path');
    const dist = ${JSON.stringify(DIST)};
    const out = { validates: {} };
    for (const f of ${JSON.stringify(code)}) out.validates[f] = WebAssembly.validate(fs.readFileSync(path.join(dist, f)));
    const links = [];
    out.fetched = [];
    // The loader compiles the .wasm it picked as it downloads: a stand-in fetch records the file and never answers.
    const fetch = (url) => { out.fetched.push(url); return new Promise(() => {}); };
    const page = { WebAssembly, Uint8Array, fetch, location: { hash: '' }, window: {}, document: {
      documentElement: { setAttribute: (k, v) => (out.attribute = [k, v]) },
      createElement: () => ({}),
      head: { appendChild: (l) => links.push(l) },
    } };
    page.window = page;
    vm.runInNewContext(${JSON.stringify(picker)}, page);
    out.build = page.glassboxBuild;
    out.preloads = links.map((l) => [l.rel, l.href]);
    const worker = vm.createContext({ WebAssembly, Uint8Array, URL, self: { registration: { scope: 'http://x/' }, addEventListener() {} } });
    vm.runInContext(fs.readFileSync(path.join(dist, 'sw.js'), 'utf8'), worker);
    out.saved = vm.runInContext('FILES.map(([f]) => f)', worker);
    console.log(JSON.stringify(out));`;
  const run = (flags) => JSON.parse(execFileSync(process.execPath, [...flags, '-e', child], { encoding: 'utf8' }));
  const without = run(['--no-experimental-wasm-relaxed-simd']);
  const relaxedFile = code.find((f) => f.startsWith('glassbox_relaxed-'));
  const plainFile = code.find((f) => f.startsWith('glassbox-'));
  assert.deepEqual(without.validates, { [relaxedFile]: false, [plainFile]: true }, 'only the plain build runs there');
  assert.equal(without.build.name, 'simd128');
  assert.deepEqual(without.attribute, ['data-wasm-build', 'simd128']);
  assert.deepEqual(without.preloads, [['modulepreload', `./${plainFile.replace('_bg.wasm', '.js')}`]]);
  assert.deepEqual(without.fetched, [`./${plainFile}`], 'the plain .wasm is fetched (and compiled as it comes)');
  assert.ok(without.saved.includes(plainFile) && !without.saved.includes(relaxedFile), `saved: ${without.saved.filter((f) => f.startsWith('glassbox'))}`);
  assert.ok(without.saved.includes('index.html'), 'the rest of the site is saved too');
  // The same engine with relaxed SIMD on: the other way round.
  const withIt = run(['--experimental-wasm-relaxed-simd']);
  assert.equal(withIt.validates[relaxedFile], true);
  assert.equal(withIt.build.name, 'relaxed-simd');
  assert.deepEqual(withIt.fetched, [`./${relaxedFile}`]);
  assert.ok(withIt.saved.includes(relaxedFile) && !withIt.saved.includes(plainFile));
});

test('a section opened alone has its lab\u2019s first model preloaded, each file fetched once and used', TIMEOUT, async (t) => {
  const { server } = await launch();
  const first = JSON.parse(fs.readFileSync(new URL('../../src/worker/first_files.json', import.meta.url), 'utf8'));
  assert.ok(first.attention?.includes('models/induction/model.safetensors'), JSON.stringify(first));
  const preloads = (page) => page.$$eval('link[rel=preload][href^="models/"]', (ls) => ls.map((l) => l.getAttribute('href')));
  for (const [slug, files] of Object.entries(first)) {
    const from = server.requests.length;
    const page = await openPage(`/#/${slug}`, { t });
    assert.deepEqual(await preloads(page), files, `${slug}: the loader's preloads`);
    // Chromium warns of a preload left unused a few seconds after the load event: wait that out.
    await page.waitForTimeout(3500);
    const fetched = server.requests.slice(from);
    for (const f of files) assert.equal(fetched.filter((r) => r === `GET /${f}`).length, 1, `${slug}: ${f} fetched once`);
    assertClean(page);
    await page.context().close();
  }
  // With lab state in the address the lab may open on another model: nothing is preloaded, and the IOI model loads.
  const page = await openPage('/#/attention?model=ioi', { t });
  await waitRev(page, 1);
  assert.deepEqual(await preloads(page), []);
  assertClean(page);
});

test('the offline copy holds the build the browser runs, not the other', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.1', { t, offlineCopy: true });
  // The page's offline status says when the worker has saved every file it keeps.
  await page.locator('[data-testid=offline-status][data-state=ready]').waitFor({ state: 'attached', timeout: 120_000 });
  const saved = await page.evaluate(async () => {
    const names = await caches.keys();
    const keys = await (await caches.open(names[0])).keys();
    return keys.map((r) => r.url.split('/').pop()).filter((f) => /^glassbox(_relaxed)?-/.test(f));
  });
  assert.equal(saved.length, 2, `saved: ${saved}`);
  assert.ok(saved.every((f) => f.startsWith('glassbox_relaxed-')), `Chromium saved ${saved}`);
  assertClean(page);
});
