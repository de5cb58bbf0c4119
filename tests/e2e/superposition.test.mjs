// The superposition lab (/#/9.2.4) and the toy SAE lab (/#/9.2.5): training runs in a Web Worker
// (toy_worker_loader.js); the page streams chunks of steps. Opens both pages directly, trains, reads the
// geometry from data attributes, stops, diverges on purpose and resets, and trains the SAE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, shutdown, openPage, assertClean, screenshot, eventually } from './harness.mjs';

const TIMEOUT = { timeout: 240_000 };
before(launch);
after(shutdown);

async function status(page) {
  return page.locator('[data-testid=lab-status]').evaluate((e) => ({
    step: Number(e.dataset.step),
    training: e.dataset.training === '1',
    rate: Number(e.dataset.stepsPerS),
    text: e.textContent,
  }));
}

/** Sets a range input's value as a drag would (input, then change). */
async function setRange(page, testid, value) {
  await page.locator(`[data-testid=${testid}]`).evaluate((el, v) => {
    el.value = String(v);
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

/** Presses Stop if training is on (a disabled button would make click() wait). */
async function stopIfTraining(page) {
  await page.locator('[data-testid=stop]').evaluate((b) => { if (!b.disabled) b.click(); });
}

async function arrows(page) {
  return page.$$eval('[data-testid=feature-arrow]', (as) => as.map((a) => ({ norm: Number(a.dataset.norm), angle: Number(a.dataset.angle) })));
}

test('9.2.4: sparsity 0.9 with five features in two dimensions gives a pentagon', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.2.4', { t });
  await page.locator('[data-testid=toy-lab]').waitFor({ state: 'visible' });
  // The lab trains from the start; set the sparsity explicitly (this restarts from the seed).
  await eventually(async () => assert.ok((await status(page)).step > 0, 'training starts on its own'), { timeout: 60_000 });
  await setRange(page, 'sparsity', 0.9);
  await eventually(async () => {
    const s = await status(page);
    assert.ok(!s.training && s.step >= 5000, `training should pause after its budget: ${JSON.stringify(s)}`);
  }, { timeout: 90_000 });
  const a = await arrows(page);
  assert.equal(a.length, 5, 'five arrows');
  for (const x of a) assert.ok(x.norm > 0.5, `every feature is represented: ${JSON.stringify(a)}`);
  const gaps = (await page.locator('[data-testid=represented]').getAttribute('data-gaps')).split(',').map(Number);
  assert.equal(gaps.length, 5, `five gaps: ${gaps}`);
  for (const g of gaps) assert.ok(Math.abs(g - 72) <= 10, `gaps should be 72±10°: ${gaps}`);
  assert.equal(await page.locator('[data-testid=represented]').getAttribute('data-count'), '5');
  // The default sparsity (0.9) is left out of the URL; platform.test.mjs checks that other values travel.
  assert.doesNotMatch(new URL(page.url()).hash, /[?&]s=/, 'the default sparsity is not written');
  await screenshot(page, 'superposition-pentagon');
  assertClean(page);
});

test('9.2.4: Stop is immediate; a huge learning rate diverges and Reset recovers', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.2.4', { t });
  await page.locator('[data-testid=toy-lab]').waitFor({ state: 'visible' });
  await eventually(async () => assert.ok((await status(page)).step > 0));
  // Dense features: two of five kept. Restart and stop mid-run.
  await setRange(page, 'sparsity', 0);
  await eventually(async () => assert.ok((await status(page)).training && (await status(page)).step > 200));
  const t0 = Date.now();
  await page.click('[data-testid=stop]');
  await eventually(async () => assert.ok(!(await status(page)).training), { timeout: 2000 });
  assert.ok(Date.now() - t0 < 1000, `stop took ${Date.now() - t0} ms`);
  // At most the chunks already in flight (about 50 ms of work) arrive after Stop; then nothing.
  await page.waitForTimeout(200);
  const stoppedAt = (await status(page)).step;
  await page.waitForTimeout(400);
  const later = (await status(page)).step;
  assert.equal(later, stoppedAt, 'no steps after Stop');
  assert.ok(stoppedAt < 10_000, 'stopped before the budget');

  // A learning rate of 1e7 blows the weights up at once.
  await page.fill('[data-testid=lr]', '10000000');
  await page.locator('[data-testid=lr]').dispatchEvent('change');
  await page.locator('[data-testid=diverged]').waitFor({ state: 'visible', timeout: 30_000 });
  assert.match(await page.locator('[data-testid=diverged]').textContent(), /diverged/i);
  assert.ok(await page.locator('[data-testid=train]').isDisabled(), 'Train is disabled on a diverged run');
  assert.ok((await arrows(page)).every((x) => Number.isFinite(x.norm)), 'the last good weights stay on screen');
  await screenshot(page, 'superposition-diverged');

  // Nonsense is explained inline, not sent.
  await page.fill('[data-testid=lr]', 'fast');
  await page.locator('[data-testid=lr]').dispatchEvent('change');
  await eventually(async () => assert.match(await page.locator('[data-testid=toy-error]').textContent(), /learning rate must be a number/));

  // Back to a sane rate: Reset starts again from the seed, and training works.
  await page.fill('[data-testid=lr]', '0.01');
  await page.locator('[data-testid=lr]').dispatchEvent('change');
  await stopIfTraining(page);
  await page.click('[data-testid=reset]');
  await eventually(async () => {
    assert.equal(await page.locator('[data-testid=diverged]').count(), 0);
    assert.equal(await page.locator('[data-testid=toy-error]').count(), 0);
    assert.equal((await status(page)).step, 0);
  });
  await page.click('[data-testid=train]');
  await eventually(async () => assert.ok((await status(page)).step > 500));
  assert.equal(await page.locator('[data-testid=diverged]').count(), 0);
  await stopIfTraining(page);
  assertClean(page);
});

test('9.2.4: the 20-in-5 preset and the phase-diagram sweep', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.2.4', { t });
  await page.locator('[data-testid=toy-lab]').waitFor({ state: 'visible' });
  await page.selectOption('[data-testid=preset]', '20-5');
  await eventually(async () => assert.equal(await page.locator('[data-testid=norm-row]').count(), 20));
  assert.equal(await page.locator('[data-testid=feature-arrow]').count(), 0, 'no 2-D arrows for m = 5');
  await page.click('[data-testid=sweep]');
  await eventually(async () => {
    const done = Number(await page.locator('[data-testid=phase-grid]').getAttribute('data-done'));
    assert.ok(done >= 144, `sweep at ${done} / 144`);
  }, { timeout: 120_000, interval: 250 });
  const secs = Number(await page.locator('[data-testid=phase-grid]').getAttribute('data-seconds'));
  assert.ok(secs > 0 && secs <= 60, `sweep took ${secs} s`);
  // All three phases appear.
  const fills = await page.$$eval('[data-testid=phase-grid] rect', (rs) => new Set(rs.map((r) => r.getAttribute('fill'))).size);
  assert.ok(fills >= 3, `only ${fills} phase colours`);
  await screenshot(page, 'superposition-phase');
  // Cancel stops a second sweep part-way.
  await page.click('[data-testid=sweep]');
  await eventually(async () => assert.ok(Number(await page.locator('[data-testid=phase-grid]').getAttribute('data-done')) >= 2));
  await page.click('[data-testid=sweep-cancel]');
  const at = Number(await page.locator('[data-testid=phase-grid]').getAttribute('data-done'));
  await page.waitForTimeout(500);
  assert.equal(Number(await page.locator('[data-testid=phase-grid]').getAttribute('data-done')), at, 'no cells after Cancel');
  assert.match(await page.locator('[data-testid=sweep-summary]').textContent(), /cancelled/);
  assertClean(page);
});

test('9.2.5: the SAE recovers the toy model\'s features', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.2.5', { t });
  await page.locator('[data-testid=sae-lab]').waitFor({ state: 'visible' });
  assert.match(await page.locator('[data-testid=sae-lm-note]').textContent(), /character-level language model/);
  // The toy model trains first, then the SAE is built (untrained).
  await eventually(async () => assert.ok(await page.locator('[data-testid=recovery]').count() > 0), { timeout: 90_000 });
  await page.click('[data-testid=train]');
  await eventually(async () => {
    const s = await status(page);
    assert.ok(!s.training && s.step >= 3000, JSON.stringify(s));
  }, { timeout: 90_000 });
  const rec = Number(await page.locator('[data-testid=recovery]').getAttribute('data-recovery'));
  assert.ok(rec >= 0.9, `recovery ${rec}`);
  assert.match(await page.locator('[data-testid=recovery]').textContent(), /(9\d|100)%/);
  assert.equal(await page.locator('[data-testid=cosine-heatmap] rect').count() >= 50, true);
  await screenshot(page, 'sae-trained');
  assertClean(page);
});
