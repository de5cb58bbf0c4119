// The Content-Security-Policy (issue #15): written into index.html by the build, in force, and never in the
// way of the app. Every other e2e test fails on a violation too (Chromium reports each as a console error).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shutdown, openPage, assertClean } from './harness.mjs';

after(shutdown);

test('the policy allows only the build\u2019s own scripts: injected inline and blob: scripts are refused', { timeout: 120_000 }, async (t) => {
  const page = await openPage('/#/9.1', { t });
  const csp = await page.locator('meta[http-equiv=Content-Security-Policy]').getAttribute('content');
  const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src'));
  assert.match(scriptSrc, /^script-src 'self' 'wasm-unsafe-eval'( 'sha256-[A-Za-z0-9+/=]+')+$/, scriptSrc);
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /object-src 'none'/);

  // An injected inline script, and a script from a blob: URL, are both refused.
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__injected = 1';
    document.head.append(s);
    const b = document.createElement('script');
    b.src = URL.createObjectURL(new Blob(['window.__blob = 1'], { type: 'text/javascript' }));
    document.head.append(b);
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await page.evaluate(() => window.__injected), undefined);
  assert.equal(await page.evaluate(() => window.__blob), undefined);
  // The app itself still ran and mounted: only the two refusals above were reported.
  assert.equal(await page.evaluate(() => document.body.dataset.ready), '1');
  assertClean(page, { allow: [/Content Security Policy/] });
  const refusals = page.problems.filter((p) => /Content Security Policy/.test(p));
  assert.equal(refusals.length, 2, refusals.join('\n'));
});
