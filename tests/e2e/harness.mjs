// Shared end-to-end harness: one static server for dist/, one headless Debian Chromium (driven by
// playwright-core), one fresh browser context per test, and a record of everything that should
// never happen (console errors/warnings, uncaught exceptions, requests to any other origin).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from './serve.mjs';

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(E2E_DIR, '../..');
export const DIST = path.resolve(process.env.GLASSBOX_DIST ?? path.join(REPO, 'dist'));
export const SCREENSHOTS = path.join(E2E_DIR, 'screenshots');
export const CHROMIUM = process.env.GLASSBOX_CHROMIUM ?? '/usr/bin/chromium';

// The registry (src/routes.rs SECTIONS), in reading order, as `tests/e2e/sections.json`, which a native test
// (`routes::tests::e2e_section_list_is_fresh`) regenerates whenever the registry changes; `references` is a
// route outside the list.
const REGISTRY = JSON.parse(fs.readFileSync(path.join(E2E_DIR, 'sections.json'), 'utf8'));
export const SECTIONS = REGISTRY.map((s) => s.slug);
// Sections whose lab is not built yet: the lab pane shows [data-testid=lab-planned].
export const PLANNED_LABS = REGISTRY.filter((s) => s.lab === 'planned').map((s) => s.slug);
// Sections with a live lab.
export const LIVE_LABS = REGISTRY.filter((s) => s.lab === 'live').map((s) => s.slug);
export const VIEWPORTS = [
  { width: 1280, height: 720 },
  { width: 1920, height: 1080 },
];

// Proven on this machine (shared/TOOLCHAIN.md): without the background-networking flags Chromium
// keeps trying to reach the closed network.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let browser = null;
let server = null;
const contexts = new Set();
// Once the app has failed to mount, later tests in the same file fail at once instead of each
// waiting out its own timeout (a broken build would otherwise take many minutes to report).
let neverReady = null;

/** Debian's Chromium, headless, as every browser test and benchmark here runs it (also `tests/peers/`). */
export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** Start the static server on dist/ and Chromium (once per test file). */
export async function launch() {
  if (!server) server = await startServer(DIST);
  if (!browser) browser = await launchChromium();
  return { browser, baseUrl: server.url, server };
}

/** Close every context, the browser and the server. */
export async function shutdown() {
  for (const c of contexts) await c.close().catch(() => {});
  contexts.clear();
  if (browser) await browser.close().catch(() => {});
  browser = null;
  if (server) await server.close();
  server = null;
}

export function baseUrl() {
  assert.ok(server, 'launch() first');
  return server.url;
}

/** `/#/9.1` -> `http://127.0.0.1:PORT/#/9.1`; absolute URLs pass through. */
export function appUrl(u) {
  return /^[a-z]+:/i.test(u) ? u : baseUrl() + (u.startsWith('/') ? u : '/' + u);
}

/**
 * A page in a fresh browser context, recording problems, opened at `url` and waited on until the
 * app has mounted (`document.body.dataset.ready === "1"`).
 * @param {string} url `/#/attention` or an absolute URL on the server
 * @param {object} [opts]
 * @param {import('node:test').TestContext} [opts.t] closes the context when the test ends
 * @param {{width:number,height:number}} [opts.viewport]
 * @param {boolean} [opts.wait=true] wait for ready
 * @param {boolean} [opts.offlineCopy=false] let the site register its service worker (blocked by default: it
 *   would save the whole build in every context, and `page.route` does not see requests a worker answers)
 * @param {import('playwright-core').BrowserContext} [opts.context] open the page in this context
 */
export async function openPage(url, opts = {}) {
  const { t, viewport = VIEWPORTS[0], wait = true, offlineCopy = false } = opts;
  if (!browser) await launch();
  const context =
    opts.context ??
    (await browser.newContext({ viewport, deviceScaleFactor: 1, serviceWorkers: offlineCopy ? 'allow' : 'block' }));
  contexts.add(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.setDefaultNavigationTimeout(60_000);
  const origin = new URL(appUrl(url)).origin;
  const problems = [];
  page.problems = problems;
  page.on('console', (msg) => {
    const type = msg.type();
    // Playwright's own notice that it blocked the site's service worker (`offlineCopy: false`), not the app's.
    if (type === 'warning' && msg.text() === 'Service Worker registration blocked by Playwright') return;
    if (type === 'error' || type === 'warning') {
      const loc = msg.location();
      const where = loc?.url ? ` (${loc.url}:${loc.lineNumber})` : '';
      problems.push(`console.${type}: ${msg.text()}${where}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.stack ?? err.message ?? err}`));
  page.on('crash', () => problems.push('page crashed'));
  page.on('request', (req) => {
    const u = req.url();
    if (/^(data|blob|about):/i.test(u)) return;
    let o;
    try {
      o = new URL(u).origin;
    } catch {
      o = u;
    }
    if (o !== origin) problems.push(`request to another origin: ${req.method()} ${u}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  if (t) t.after(() => closePage(page));
  await page.goto(appUrl(url));
  if (wait) await waitReady(page);
  return page;
}

export async function closePage(page) {
  const c = page.context();
  contexts.delete(c);
  await c.close().catch(() => {});
}

/** Wait for the app to mount (it sets `document.body.dataset.ready = "1"`). */
export async function waitReady(page, timeout = 60_000) {
  if (neverReady) throw new Error(`skipped waiting: the app already failed to become ready earlier in this file\n${neverReady}`);
  try {
    await page.waitForFunction(() => document.body?.dataset.ready === '1', null, { timeout });
  } catch (e) {
    neverReady = `app never became ready (body[data-ready="1"]) at ${page.url()}\n` +
      `problems so far:\n  ${page.problems?.join('\n  ') || '(none)'}\n${e.message}`;
    throw new Error(neverReady);
  }
}

/** Fail listing every console error/warning, uncaught exception and foreign request seen so far. */
export function assertClean(page, { allow = [] } = {}) {
  const left = (page.problems ?? []).filter((p) => !allow.some((re) => re.test(p)));
  assert.deepEqual(left, [], `the page was not clean:\n  ${left.join('\n  ')}`);
}

/** Save tests/e2e/screenshots/{name}-{w}x{h}.png at 1280x720 and 1920x1080, then restore the viewport. With
 *  `focus` (a locator), it is scrolled into view at each size, so the shot shows it. */
export async function screenshot(page, name, focus = null) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const before = page.viewportSize();
  const files = [];
  for (const vp of VIEWPORTS) {
    await page.setViewportSize(vp);
    await settle(page);
    if (focus) await focus.scrollIntoViewIfNeeded();
    const file = path.join(SCREENSHOTS, `${name}-${vp.width}x${vp.height}.png`);
    await page.screenshot({ path: file });
    files.push(file);
  }
  if (before) {
    await page.setViewportSize(before);
    await settle(page);
  }
  return files;
}

/** Two animation frames: layout and paint have caught up. */
export async function settle(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/** Retry `fn` (which throws, e.g. with assert) until it passes or `timeout` ms have gone. */
export async function eventually(fn, options = {}) {
  // Many callers pass the timeout alone as a number; destructuring a number would silently give the default.
  const { timeout = 15_000, interval = 50 } = typeof options === 'number' ? { timeout: options } : options;
  const end = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, interval));
    }
  }
}

/** The first file under dist/ whose path ends with `suffix` (e.g. `models/induction/vocab.json`). */
export function findInDist(suffix) {
  const want = suffix.split('/').join(path.sep);
  const stack = [DIST];
  while (stack.length) {
    const dir = stack.pop();
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (p.endsWith(path.sep + want)) return p;
    }
  }
  throw new Error(`no file ending in ${suffix} under ${DIST}`);
}

export function readDistJson(suffix) {
  return JSON.parse(fs.readFileSync(findInDist(suffix), 'utf8'));
}

/** The induction model's vocabulary and config, as shipped in dist/. */
export function inductionModel() {
  const vocab = readDistJson('models/induction/vocab.json');
  const config = readDistJson('models/induction/config.json');
  const words = Object.entries(vocab)
    .filter(([, id]) => id !== 0)
    .map(([w]) => w)
    .filter((w) => /^[a-z]+$/.test(w));
  assert.ok(words.length >= 10, `vocab.json has too few plain words (${words.length})`);
  return { vocab, config, words };
}

/** A small seeded PRNG (mulberry32), so a failing sequence can be reproduced. */
export function rng(seed = 1) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` words drawn from `words` (distinct while possible). */
export function randomWords(words, n, rand = Math.random) {
  const pool = [...words];
  const out = [];
  for (let i = 0; i < n; i++) {
    if (pool.length === 0) pool.push(...words);
    out.push(pool.splice(Math.floor(rand() * pool.length), 1)[0]);
  }
  return out;
}

/** The lab's computation counter (`[data-testid=lab-status]`'s data-rev), or NaN. */
export async function labRev(page) {
  return page.evaluate(() => Number(document.querySelector('[data-testid=lab-status]')?.dataset.rev));
}

/** Wait until the lab's data-rev is at least `min`. */
let labNeverComputed = null;
export async function waitRev(page, min = 1, timeout = 60_000) {
  if (min <= 1 && labNeverComputed) throw new Error(`skipped waiting: the lab already failed to compute earlier in this file\n${labNeverComputed}`);
  try {
    await page.waitForFunction(
      (m) => Number(document.querySelector('[data-testid=lab-status][data-rev]')?.dataset.rev) >= m,
      min,
      { timeout },
    );
  } catch (e) {
    const status = await page.evaluate(() => document.querySelector('[data-testid=lab-status]')?.outerHTML ?? '(no [data-testid=lab-status])')
      .catch(() => '?');
    const msg = `lab-status data-rev never reached ${min} at ${page.url()}\nlab-status: ${status}\n` +
      `problems so far:\n  ${page.problems?.join('\n  ') || '(none)'}\n${e.message}`;
    if (min <= 1) labNeverComputed = msg;
    throw new Error(msg);
  }
  return labRev(page);
}

/** Wait until the lab's data-rev is greater than `prev`. */
export async function waitRevAfter(page, prev, timeout = 30_000) {
  return waitRev(page, prev + 1, timeout);
}
