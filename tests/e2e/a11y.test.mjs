// Accessibility (issue #15 item 5): axe-core on every section, the references page, in the light and the dark
// theme and in presenter mode, once the lab has shown its first result. The test fails on any serious or
// critical violation of WCAG 2.0/2.1 A and AA, listing each (rule, element, axe's summary), and prints the
// totals per page so a change can be measured.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { shutdown, launch, openPage, assertClean, settle, waitRev, LIVE_LABS, SECTIONS, VIEWPORTS } from './harness.mjs';

after(shutdown);
const TIMEOUT = { timeout: 600_000 };
const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(path.join(path.dirname(require.resolve('axe-core')), 'axe.min.js'), 'utf8');
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const SERIOUS = new Set(['serious', 'critical']);

// The page's Content-Security-Policy admits only the build's own scripts (by hash), so an injected <script>
// with axe's source is refused. Only this test's contexts bypass it, to inject axe; every other e2e test keeps
// the policy and fails on a violation.
async function context(colorScheme) {
  const { browser } = await launch();
  return browser.newContext({
    viewport: VIEWPORTS[0],
    deviceScaleFactor: 1,
    serviceWorkers: 'block',
    bypassCSP: true,
    colorScheme,
  });
}

/** Open `url`, wait for the lab's first result (sections with a live lab), and return axe's serious/critical
 *  violations as { id, impact, help, nodes: [{ target, summary }] }. */
async function audit(t, url, { colorScheme = 'light', live = true } = {}) {
  const ctx = await context(colorScheme);
  t.after(() => ctx.close().catch(() => {}));
  const page = await openPage(url, { context: ctx });
  // The vision lab computes once it has an image: load one from the keyboard, its path without a pointer.
  if (url.startsWith('/#/9.2.1')) {
    await page.locator('[data-testid=sample-btn]').waitFor({ state: 'visible', timeout: 60_000 });
    await page.focus('[data-testid=sample-btn]');
    await page.keyboard.press('Enter');
  }
  // The critiques lab (9.5) runs nothing until asked: its cards are its first result.
  if (url.startsWith('/#/9.5')) await page.locator('[data-testid=critiques-lab]').waitFor({ timeout: 60_000 });
  else if (live) await waitRev(page, 1, 120_000);
  await settle(page);
  await page.addScriptTag({ content: AXE });
  const results = await page.evaluate(async (tags) => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), impact: n.impact, summary: n.failureSummary })),
    }));
  }, TAGS);
  assertClean(page);
  return results
    .map((v) => ({ ...v, nodes: v.nodes.filter((n) => SERIOUS.has(n.impact ?? v.impact)) }))
    .filter((v) => v.nodes.length > 0);
}

const totals = [];
function report(name, violations) {
  const byRule = Object.fromEntries(violations.map((v) => [v.id, v.nodes.length]));
  const n = violations.reduce((s, v) => s + v.nodes.length, 0);
  totals.push({ name, n, byRule });
  return n;
}
function explain(name, violations) {
  return `${name}: serious/critical axe violations:\n` + violations
    .map((v) => `  ${v.id} (${v.impact}): ${v.help}\n` + v.nodes
      .map((n) => `    ${n.target}\n      ${(n.summary ?? '').replace(/\n/g, '\n      ')}`)
      .join('\n'))
    .join('\n');
}

after(() => {
  const all = totals.reduce((s, r) => s + r.n, 0);
  console.log(`\naxe serious/critical nodes: ${all} in total`);
  for (const r of totals) console.log(`  ${r.name.padEnd(28)} ${String(r.n).padStart(4)}  ${JSON.stringify(r.byRule)}`);
});

const PAGES = [...SECTIONS.map((s) => ({ name: s, url: `/#/${s}`, live: LIVE_LABS.includes(s) })),
  { name: 'references', url: '/#/references', live: false }];

for (const scheme of ['light', 'dark']) {
  for (const p of PAGES) {
    test(`axe, ${scheme}: ${p.name} has no serious or critical violation`, TIMEOUT, async (t) => {
      const v = await audit(t, p.url, { colorScheme: scheme, live: p.live });
      report(`${p.name} (${scheme})`, v);
      assert.equal(v.length, 0, explain(`${p.name} (${scheme})`, v));
    });
  }
}

test('axe, presenter mode: the attention lab has no serious or critical violation', TIMEOUT, async (t) => {
  const v = await audit(t, '/#/attention?present=1&step=2');
  report('attention (presenter)', v);
  assert.equal(v.length, 0, explain('attention (presenter)', v));
});
