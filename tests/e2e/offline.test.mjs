// Offline and installable (issue #15): after one visit the whole site is saved by its service worker, and with
// the server gone and the network cut every section opens, reloads and runs its lab; a new build is saved beside
// the old one and offered, never switched to by itself; the site works under a sub-path; an app whose own code
// cannot load says what failed instead of "Loading…" forever.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DIST, REPO, SECTIONS, LIVE_LABS, shutdown, openPage, assertClean, waitReady, waitRev, eventually } from './harness.mjs';
import { startServer } from './serve.mjs';

const TIMEOUT = { timeout: 600_000 };
const servers = [];
const temps = [];
after(async () => {
  for (const s of servers) await s.close();
  for (const d of temps) fs.rmSync(d, { recursive: true, force: true });
  await shutdown();
});

async function serve(dir, opts) {
  const s = await startServer(dir, opts);
  servers.push(s);
  return s;
}

/** A copy of the built site in a temporary folder, to change. */
function copyOfDist() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'glassbox-dist-'));
  temps.push(dir);
  fs.cpSync(DIST, dir, { recursive: true });
  return dir;
}

/** Rewrites the copy's service worker as `trunk build` does after a change (src/worker/post_build.mjs). */
function rebuildWorker(dir) {
  execFileSync(process.execPath, [path.join(REPO, 'src/worker/post_build.mjs')], {
    env: { ...process.env, TRUNK_STAGING_DIR: dir },
    stdio: 'pipe',
  });
}

const offline = (page) => page.locator('[data-testid=offline-status]');

async function waitSaved(page) {
  await eventually(async () => assert.equal(await offline(page).getAttribute('data-state'), 'ready'), {
    timeout: 120_000,
    interval: 200,
  });
}

/** The lab of `slug` shows its first result (9.5: a card's run revealed). */
async function labWorks(page, slug) {
  if (slug === '9.5') {
    const card = page.locator('[data-testid=critique-card][data-card=attention]');
    await page.check('[data-testid=predict-critique-attention-0]');
    await page.click('[data-testid=predict-critique-attention-commit]');
    await card.locator('[data-testid=critique-run]').click();
    await eventually(async () => assert.equal(await card.getAttribute('data-state'), 'revealed'), { timeout: 60_000 });
    return;
  }
  // The vision lab waits for a digit: ask for a test image.
  if (slug === '9.2.1') await page.click('[data-testid=sample-btn]');
  await waitRev(page, 1, 120_000);
}

test('after one visit, with the server gone and the network cut, every section opens, reloads and runs its lab', TIMEOUT, async (t) => {
  const server = await serve(DIST);
  const page = await openPage(`${server.url}/#/9.1`, { t, offlineCopy: true });
  await waitSaved(page);
  const label = await offline(page).textContent();
  assert.match(label, /Ready for offline use · \d+\.\d MB/);
  const total = fs.readdirSync(DIST, { recursive: true }).filter((f) => fs.statSync(path.join(DIST, f)).isFile())
    .reduce((n, f) => n + fs.statSync(path.join(DIST, f)).size, 0);
  console.log(`# saved for offline use: ${label.trim()} (dist/ holds ${(total / 1e6).toFixed(1)} MB)`);
  const scope = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).scope);
  assert.equal(scope, `${server.url}/`);

  await server.close();
  await page.context().setOffline(true);
  for (const slug of SECTIONS) {
    await page.goto(`${server.url}/#/${slug}`);
    await page.reload();
    await waitReady(page);
    if (LIVE_LABS.includes(slug)) await labWorks(page, slug);
    // The chapter's text is a file of the build like the models: saved, and read from the copy.
    assert.ok((await page.locator('[data-testid=chapter] h1').first().textContent()).trim().length > 0, `${slug}: its text`);
    assert.equal(await page.locator('[data-testid=fatal-error]').count(), 0, `${slug}: no panic`);
    await eventually(async () =>
      assert.equal(await offline(page).getAttribute('data-state'), 'ready', `${slug}: the copy is still reported saved`));
  }
  assertClean(page);
});

test('a new build is saved beside the old one, offered with Reload, and then replaces it', TIMEOUT, async (t) => {
  const dir = copyOfDist();
  const server = await serve(dir);
  const page = await openPage(`${server.url}/#/9.1`, { t, offlineCopy: true });
  await waitSaved(page);
  const before = await page.evaluate(() => caches.keys());
  assert.equal(before.length, 1);

  // The next build: index.html changes, and so does sw.js's list.
  const index = path.join(dir, 'index.html');
  fs.writeFileSync(index, fs.readFileSync(index, 'utf8').replace('<head>', '<head><meta name="glassbox-test-build" content="2">'));
  rebuildWorker(dir);

  await page.reload();
  await waitReady(page);
  await eventually(async () => assert.equal(await offline(page).getAttribute('data-state'), 'update'), { timeout: 120_000, interval: 200 });
  assert.match(await offline(page).textContent(), /A new version is ready/);
  // Until the student agrees, the page runs the build it opened with.
  assert.equal(await page.locator('meta[name=glassbox-test-build]').count(), 0);
  await Promise.all([page.waitForEvent('load'), page.click('[data-testid=offline-reload]')]);
  await waitReady(page);
  assert.equal(await page.locator('meta[name=glassbox-test-build]').count(), 1, 'the reload opened the new build');
  await waitSaved(page);
  await eventually(async () => {
    const after = await page.evaluate(() => caches.keys());
    assert.equal(after.length, 1, `one cache left: ${after}`);
    assert.notEqual(after[0], before[0]);
  });
  assertClean(page);
});

test('served under a sub-path, the site loads, runs a lab and saves itself there', TIMEOUT, async (t) => {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'glassbox-parent-'));
  temps.push(parent);
  fs.symlinkSync(DIST, path.join(parent, 'glassbox'));
  const server = await serve(parent, { requireIndex: false });
  const page = await openPage(`${server.url}/glassbox/#/9.2.2`, { t, offlineCopy: true });
  await labWorks(page, '9.2.2');
  await waitSaved(page);
  const scope = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).scope);
  assert.equal(scope, `${server.url}/glassbox/`);
  assert.ok(server.requests.every((r) => r.startsWith('GET /glassbox/')), `every request under /glassbox/: ${server.requests.filter((r) => !r.startsWith('GET /glassbox/'))}`);
  assertClean(page);
});

test('when the app\u2019s own code cannot load, the page says what failed and offers Reload', TIMEOUT, async (t) => {
  // Both builds' files are broken (index.html: the page runs one of them, relaxed SIMD's in Chromium); the .js
  // removed is the one Chromium's loader imports, so the message must name it.
  const wasms = fs.readdirSync(DIST).filter((f) => /^glassbox(_relaxed)?-.*_bg\.wasm$/.test(f));
  assert.equal(wasms.length, 2, `two builds: ${wasms}`);
  const js = fs.readdirSync(DIST).find((f) => /^glassbox_relaxed-.*\.js$/.test(f));
  const cases = [
    { name: 'truncated .wasm', change: (d) => wasms.forEach((w) => fs.truncateSync(path.join(d, w), 1000)), expect: /could not start/ },
    { name: '.wasm served as a web page', change: (d) => wasms.forEach((w) => fs.writeFileSync(path.join(d, w), '<!doctype html><p>not found</p>')), expect: /could not start/ },
    { name: 'missing .js', change: (d) => fs.rmSync(path.join(d, js)), expect: new RegExp(`could not load one of its files[\\s\\S]*${js.replace('.', '\\.')}`) },
  ];
  for (const c of cases) {
    const dir = copyOfDist();
    c.change(dir);
    const server = await serve(dir);
    const page = await openPage(`${server.url}/#/9.2.2`, { t, wait: false });
    const box = page.locator('[data-testid=boot-failed]');
    await box.waitFor({ timeout: 30_000 });
    const text = await box.textContent();
    assert.match(text, c.expect, `${c.name}: ${text}`);
    assert.match(text, /copy every file of the built dist\/ folder/);
    assert.ok(await box.locator('button', { hasText: 'Reload' }).isVisible(), `${c.name}: Reload offered`);
    await page.context().close();
  }
});
