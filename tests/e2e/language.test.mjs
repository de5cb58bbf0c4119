// The language-model lab (/#/9.2.2): the logit-lens grid on the Moby-Dick character model and on the
// induction model, a clicked cell's top-5, generation, and bad input (unknown characters, empty text).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, shutdown, openPage, assertClean, screenshot, eventually, waitRev, waitRevAfter, labRev } from './harness.mjs';

const TIMEOUT = { timeout: 180_000 };
before(launch);
after(shutdown);

async function grid(page) {
  return page.evaluate(() => {
    const g = document.querySelector('[data-testid=lens-grid]');
    return { which: g.dataset.which, layers: Number(g.dataset.layers), positions: Number(g.dataset.positions) };
  });
}

async function typeText(page, text) {
  const prev = await labRev(page);
  await page.fill('[data-testid=lens-text]', text);
  await waitRevAfter(page, prev);
}

test('9.2.2 opens directly; typing gives a layers x positions grid; a clicked cell shows its top 5', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.2.2', { t });
  await waitRev(page, 1);
  const g0 = await grid(page);
  assert.equal(g0.which, 'moby');
  assert.equal(g0.layers, 5, 'embed + 4 blocks');
  assert.ok(g0.positions > 20, 'the default prompt fills the grid');

  const prompt = 'Call me Ishmael. Some years ago, never mind how long precisely, I went to sea.';
  await typeText(page, prompt);
  const g = await grid(page);
  assert.equal(g.positions, prompt.length);
  assert.equal(await page.locator('[data-testid=lens-cell]').count(), 5 * prompt.length);
  assert.equal(await page.locator('[data-testid=lens-input]').count(), prompt.length);

  await page.click('[data-testid=lens-cell][data-layer="4"][data-pos="10"]');
  await eventually(async () => assert.equal(await page.locator('[data-testid=top5-item]').count(), 5));
  const top = await page.$$eval('[data-testid=top5-item]', (rs) => rs.map((r) => Number(r.dataset.p)));
  for (let i = 1; i < top.length; i++) assert.ok(top[i] <= top[i - 1], 'top 5 sorted');
  assert.equal(await page.locator('[data-testid=target-prob]').count(), 5, 'one bar per layer for the true next token');
  // The top-1 of the cell is the first of its top 5.
  const top1 = await page.getAttribute('[data-testid=lens-cell][data-layer="4"][data-pos="10"]', 'data-top1');
  assert.equal(await page.getAttribute('[data-testid=top5-item] >> nth=0', 'data-token'), top1);

  // The last layer should be right on most of an ordinary English sentence; the embedding far less often.
  const acc = await page.evaluate(() => {
    const rate = (l) => {
      const cs = [...document.querySelectorAll(`[data-testid=lens-cell][data-layer="${l}"]`)].filter((c) => c.dataset.correct !== '');
      return cs.filter((c) => c.dataset.correct === '1').length / cs.length;
    };
    return { embed: rate(0), last: rate(4) };
  });
  assert.ok(acc.last > acc.embed, `last layer ${acc.last} should beat the embedding ${acc.embed}`);
  assert.ok(acc.last >= 0.4, `last-layer top-1 accuracy ${acc.last}`);
  await screenshot(page, 'language-grid');

  // Over-long input keeps the last 128 characters with a note.
  await typeText(page, 'the whale '.repeat(20));
  assert.equal((await grid(page)).positions, 128);
  assert.match(await page.locator('[data-testid=input-note]').textContent(), /last 128/);
  assertClean(page);
});

test('unknown characters and empty text give messages and keep the last grid; replace fixes them', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.2.2', { t });
  await waitRev(page, 1);
  await typeText(page, 'The sea was calm.');
  const before = await grid(page);
  await page.fill('[data-testid=lens-text]', 'The sea was calm {today} "yes"');
  await eventually(async () => assert.match(await page.locator('[data-testid=input-error]').textContent(), /never seen/));
  assert.match(await page.locator('[data-testid=input-error]').textContent(), /\{/);
  assert.deepEqual(await grid(page), before, 'the last good grid stays');
  const prev = await labRev(page);
  await page.click('[data-testid=replace-btn]');
  await waitRevAfter(page, prev);
  assert.equal(await page.locator('[data-testid=input-error]').count(), 0);
  const fixed = await page.inputValue('[data-testid=lens-text]');
  assert.ok(!fixed.includes('{') && !fixed.includes('"'), `replaced: ${fixed}`);

  await page.fill('[data-testid=lens-text]', '');
  await eventually(async () => assert.match(await page.locator('[data-testid=input-error]').textContent(), /Type some text/));
  assert.ok((await grid(page)).positions > 0, 'the last good grid stays');
  assertClean(page);
});

test('induction model: on a random repeated sequence the last layer predicts the repeated half', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.2.2', { t });
  await waitRev(page, 1);
  const prev = await labRev(page);
  await page.check('[data-testid=model-induction]');
  await waitRevAfter(page, prev);
  await eventually(async () => assert.equal((await grid(page)).which, 'induction'));
  for (let round = 0; round < 2; round++) {
    const g = await grid(page);
    assert.equal(g.layers, 3, 'embed + 2 blocks');
    const nWords = g.positions - 1;
    const half = nWords / 2;
    assert.ok(Number.isInteger(half) && half >= 8, `a repeated sequence: ${nWords} words`);
    const res = await page.evaluate(({ half, last }) => {
      const out = [];
      for (let p = half + 1; p <= 2 * half - 1; p++) {
        out.push(document.querySelector(`[data-testid=lens-cell][data-layer="${last}"][data-pos="${p}"]`).dataset.correct);
      }
      return out;
    }, { half, last: g.layers - 1 });
    const right = res.filter((c) => c === '1').length;
    assert.ok(right >= res.length - 1, `last layer right on ${right} of ${res.length} repeated positions`);
    const r = await labRev(page);
    await page.click('[data-testid=random-btn]');
    await waitRevAfter(page, r);
  }
  await screenshot(page, 'language-induction');
  assertClean(page);
});

test('generating 200 characters shows them with their probabilities; the same seed repeats', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.2.2', { t });
  await waitRev(page, 1);
  await page.click('[data-testid=gen-btn]');
  await eventually(async () => assert.equal(await page.locator('[data-testid=gen-char]').count(), 200), { timeout: 30_000 });
  const first = await page.locator('[data-testid=gen-text]').textContent();
  const ps = await page.$$eval('[data-testid=gen-char]', (rs) => rs.map((r) => Number(r.dataset.p)));
  assert.ok(ps.every((p) => p > 0 && p <= 1));
  assert.match(await page.getAttribute('[data-testid=gen-char] >> nth=0', 'title'), /%/);
  await page.click('[data-testid=gen-btn]');
  await eventually(async () => assert.equal(await page.locator('[data-testid=gen-btn]').textContent(), 'Generate 200 characters'));
  assert.equal(await page.locator('[data-testid=gen-text]').textContent(), first, 'same seed, same text');
  await page.fill('[data-testid=gen-seed]', '7');
  await page.press('[data-testid=gen-seed]', 'Tab');
  await page.click('[data-testid=gen-btn]');
  await eventually(async () => assert.notEqual(await page.locator('[data-testid=gen-text]').textContent(), first));
  await screenshot(page, 'language-generate');
  assertClean(page);
});

test('the text lives in the URL; a tampered link is explained and falls back to the default text', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.2.2?text=Call+me+Ishmael.', { t });
  await waitRev(page, 1);
  assert.equal(await page.inputValue('[data-testid=lens-text]'), 'Call me Ishmael.');
  assert.equal((await grid(page)).positions, 16);
  await typeText(page, 'The sea, the sea.');
  await eventually(async () => assert.match(page.url(), /#\/9\.2\.2\?text=The\+sea%2C\+the\+sea\./));

  const bad = await openPage(`/#/9.2.2?text=${encodeURIComponent('hello {world}')}`, { t });
  await waitRev(bad, 1);
  assert.match(await bad.locator('[data-testid=url-error]').textContent(), /never seen .*\{/);
  assert.ok((await grid(bad)).positions > 20, 'the default text');
  assert.notEqual(await bad.inputValue('[data-testid=lens-text]'), 'hello {world}');

  const long = await openPage(`/#/9.2.2?text=${'a'.repeat(1001)}`, { t });
  await waitRev(long, 1);
  assert.match(await long.locator('[data-testid=url-error]').textContent(), /1001 characters/);
  assertClean(page);
  assertClean(bad);
  assertClean(long);
});
