// The classroom server (issue #15): one native program with the built site embedded serves it on loopback;
// the site loads and runs a lab through it; files come with their MIME types; it is read-only and lists no
// folder. (Its `--lan` address and QR code are for a real room; tests stay on 127.0.0.1.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { REPO, shutdown, openPage, assertClean, waitRev } from './harness.mjs';

const TIMEOUT = { timeout: 600_000 };
let child = null;
after(async () => {
  if (child) child.kill('SIGTERM');
  await shutdown();
});

/** Builds the program against the current dist/ (quick when it is up to date), starts it on a free port. */
async function startClassroom() {
  execFileSync('cargo', ['build', '-p', 'classroom'], { cwd: REPO, stdio: 'inherit' });
  const bin = path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO, 'target'), 'debug', 'classroom');
  child = spawn(bin, ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no address printed in 30 s:\n${out}`)), 30_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/On this machine: (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`classroom exited with ${code}:\n${out}`)));
  });
  return { url, output: () => out };
}

test('the classroom program serves the site, read-only, with the right types, and a lab runs through it', TIMEOUT, async (t) => {
  const { url, output } = await startClassroom();
  assert.match(output(), /files embedded/);

  const get = (p, init) => fetch(url + p, init);
  const index = await get('/');
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  const html = await index.text();
  const wasm = html.match(/glassbox-[0-9a-f]{12,16}_bg\.wasm/)[0];
  const w = await get('/' + wasm);
  assert.equal(w.headers.get('content-type'), 'application/wasm');
  assert.match(w.headers.get('cache-control'), /immutable/);
  assert.match((await get('/sw.js')).headers.get('content-type'), /javascript/);
  assert.equal((await get('/models/')).status, 404, 'no folder listing');
  assert.equal((await get('/../Cargo.toml')).status, 404);
  assert.equal((await get('/nothing-here')).status, 404);
  assert.equal((await get('/index.html', { method: 'POST', body: 'x' })).status, 405, 'read-only');
  // The chapter's text: named by its bytes like the code, so kept as long as the code is.
  const chapter = html.match(/chapter-[0-9a-f]{16}\.json/)[0];
  const text = await get('/' + chapter);
  assert.equal(text.status, 200);
  assert.match(text.headers.get('content-type'), /^application\/json/);
  assert.match(text.headers.get('cache-control'), /immutable/);
  assert.ok(Object.keys((await text.json()).sections).length > 5);
  const head = await get('/' + wasm, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.ok(Number(head.headers.get('content-length')) > 100_000);

  const page = await openPage(`${url}/#/9.2.2`, { t });
  await waitRev(page, 1, 120_000);
  assert.match(await page.locator('[data-testid=chapter] h1').first().textContent(), /logit lens/i);
  assertClean(page);
});
