// The steering lab (/#/9.3.2): the default pair against the same seed unsteered, coefficient 0 and a large
// coefficient, typed contrast sets (and bad ones), a probe's direction, and a tampered link.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, shutdown, openPage, assertClean, screenshot, eventually, waitRev, waitRevAfter, labRev } from './harness.mjs';

const TIMEOUT = { timeout: 240_000 };
before(launch);
after(shutdown);

async function sides(page) {
  return page.evaluate(() => {
    const get = (side) => {
      const e = document.querySelector(`[data-testid=steer-out][data-side=${side}]`);
      return { rate: Number(e.dataset.rate), text: e.querySelector('.steer-gen').textContent, done: e.dataset.done === 'true' };
    };
    return { plain: get('plain'), steered: get('steered'), note: document.querySelector('[data-testid=steer-note]')?.textContent ?? '' };
  });
}

async function setCoef(page, c) {
  const prev = await labRev(page);
  await page.evaluate((v) => {
    const s = document.querySelector('[data-testid=steer-coef]');
    s.value = String(v);
    s.dispatchEvent(new Event('input', { bubbles: true }));
    s.dispatchEvent(new Event('change', { bubbles: true }));
  }, c);
  await waitRevAfter(page, prev, 120_000);
}

test('9.3.2: the default pair at least doubles the rate of capitals against the same seed unsteered', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.3.2', { t });
  await waitRev(page, 1, 180_000);
  const s = await sides(page);
  assert.ok(s.plain.done && s.steered.done);
  assert.equal(s.plain.text.length, 400);
  assert.ok(s.steered.rate >= 2 * Math.max(s.plain.rate, 0.005), `capitals ${s.plain.rate} unsteered, ${s.steered.rate} steered`);
  assert.match(s.note, /SHOUTING minus quiet/);
  await screenshot(page, 'steer-default');

  // Coefficient 0: the two sides are the same text, so the seed is shared and only the vector differs.
  await setCoef(page, 0);
  const z = await sides(page);
  assert.equal(z.steered.text, z.plain.text);
  assert.equal(z.plain.text, s.plain.text, 'the unsteered side does not change with the coefficient');
  await eventually(async () => assert.match(page.url(), /c=0(&|$)/));

  // A large coefficient breaks the text: almost only capitals, unlike anything in the book.
  await setCoef(page, 2);
  const big = await sides(page);
  assert.ok(big.steered.rate >= 0.5, `capitals at coefficient 2: ${big.steered.rate}`);
  assert.equal(big.plain.text, s.plain.text);
  await screenshot(page, 'steer-large');
  assertClean(page);
});

test('typed contrast sets steer; an empty set or unknown characters give a message and keep the last result', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.3.2', { t });
  await waitRev(page, 1, 180_000);
  const before = await sides(page);
  await page.selectOption('[data-testid=steer-source]', 'custom');
  await page.fill('[data-testid=set-pos]', '');
  await page.click('[data-testid=steer-run]');
  await eventually(async () => assert.match(await page.locator('[data-testid=input-error]').textContent(), /first set .*empty/));
  assert.equal((await sides(page)).steered.text, before.steered.text, 'the last result stays');
  await screenshot(page, 'steer-empty-set');

  await page.fill('[data-testid=set-pos]', 'THE WHALE {BIG}\nCALL ME ISHMAEL');
  await page.click('[data-testid=steer-run]');
  await eventually(async () => assert.match(await page.locator('[data-testid=input-error]').textContent(), /never seen .*\{/));

  await page.fill('[data-testid=set-pos]', 'THE WHITE WHALE! LOWER AWAY, MEN!\nCALL ME ISHMAEL.');
  await page.fill('[data-testid=set-neg]', '   \n');
  await page.click('[data-testid=steer-run]');
  await eventually(async () => assert.match(await page.locator('[data-testid=input-error]').textContent(), /second set .*empty/));

  await page.fill('[data-testid=set-neg]', 'The white whale! Lower away, men!\nCall me Ishmael.');
  const prev = await labRev(page);
  await page.click('[data-testid=steer-run]');
  await waitRevAfter(page, prev, 120_000);
  assert.equal(await page.locator('[data-testid=input-error]').count(), 0);
  const mine = await sides(page);
  assert.match(mine.note, /your first set minus your second” \(2 and 2 contexts\)/);
  assert.ok(mine.steered.rate > mine.plain.rate, `capitals ${mine.plain.rate} -> ${mine.steered.rate}`);

  await page.fill('[data-testid=steer-prompt]', '');
  await page.click('[data-testid=steer-run]');
  await eventually(async () => assert.match(await page.locator('[data-testid=input-error]').textContent(), /Type a prompt/));
  assertClean(page);
});

test('a probe direction steers; a tampered link is explained and falls back', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.3.2?src=probe&concept=capital-next&layer=2&c=1.5', { t });
  await waitRev(page, 1, 180_000);
  const s = await sides(page);
  assert.match(s.note, /probe for “capital next” at layer 2 · after block 1/);
  assert.notEqual(s.steered.text, s.plain.text);
  await screenshot(page, 'steer-probe');

  const bad = await openPage('/#/9.3.2?src=pair&pair=7&layer=9&c=abc&seed=-1', { t });
  const msg = await bad.locator('[data-testid=url-error]').textContent();
  for (const part of [/“pair=7” is outside/, /“layer=9” is outside/, /“c=abc” is not a number/, /“seed=-1” is not a whole number/]) assert.match(msg, part);
  await waitRev(bad, 1, 180_000);
  assert.match((await sides(bad)).note, /SHOUTING minus quiet/);
  assertClean(page);
  assertClean(bad);
});
