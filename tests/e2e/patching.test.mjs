// The activation-patching lab (/#/9.3.1): the chapter's sentence on the IOI model through every target, metric
// and direction; a cell's detail by pointer, click and keyboard; attribution patching beside it; the CSV; the
// induction model; bad inputs keep the last result; a tampered link.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { launch, shutdown, openPage, assertClean, screenshot, eventually, waitRev, waitRevAfter, labRev } from './harness.mjs';

const TIMEOUT = { timeout: 300_000 };
before(launch);
after(shutdown);

const SENTENCE = 'When John and Mary went to the store, John gave a bottle to';

/** The shown grid's size and values. */
async function grid(page, which = 'heat-real') {
  return page.evaluate((id) => {
    const t = document.querySelector(`[data-testid=${id}]`);
    const cells = [...t.querySelectorAll('td[data-cell]')].map((td) => [td.dataset.cell, Number(td.dataset.value)]);
    return { rows: Number(t.dataset.rows), cols: Number(t.dataset.cols), cells: Object.fromEntries(cells) };
  }, which);
}

/** Changes a control and waits for the result it gives. */
async function after_(page, change) {
  const prev = await labRev(page);
  await change();
  await waitRevAfter(page, prev, 60_000);
}

async function errorText(page) {
  return page.locator('[data-testid=input-error]').textContent();
}

test('9.3.1: the chapter sentence through every target, metric and direction, a cell, attribution and the CSV', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.3.1', { t });
  await waitRev(page, 1, 120_000);
  assert.equal(await page.inputValue('[data-testid=patch-clean]'), SENTENCE);
  // Typing the sentence (after an empty box, which is refused) gives the same result as opening the lab.
  await page.fill('[data-testid=patch-clean]', '');
  await eventually(async () => assert.match(await errorText(page), /clean prompt is empty/));
  await after_(page, () => page.fill('[data-testid=patch-clean]', SENTENCE));
  const summary = await page.locator('[data-testid=patch-summary]');
  assert.ok(Number(await summary.getAttribute('data-clean')) > Number(await summary.getAttribute('data-corrupted')) + 1);
  assert.equal(await page.getAttribute('[data-testid=patch-answer]', 'placeholder'), 'mary');
  assert.equal(await page.getAttribute('[data-testid=patch-wrong]', 'placeholder'), 'john');

  // resid_pre, denoising, the normalised logit difference: 3 layers × 15 tokens. A position the corruption left
  // alone patches in the same embedding (exactly 0); the indirect object's restores most of the answer.
  const g = await grid(page);
  assert.deepEqual([g.rows, g.cols], [3, 15]);
  assert.ok(Math.abs(g.cells['0.1']) < 1e-4, `resid_pre L0 'when': ${g.cells['0.1']}`);
  assert.ok(Math.max(...Object.values(g.cells)) > 0.5, 'some cell restores the answer');
  assert.match(await page.locator('[data-testid=heat-real] thead').textContent(), /mary/);
  await screenshot(page, 'patching-default');

  // The MLP is offered but disabled: the model is attention-only.
  assert.ok(await page.locator('[data-testid=patch-target] option[value=mlp_out]').isDisabled());
  const shapes = { attn_out: [3, 15], head_out: [3, 4], head_out_pos: [12, 15], pattern: [3, 4], q: [3, 4], k: [3, 4], v: [3, 4], resid_pre: [3, 15] };
  for (const [target, shape] of Object.entries(shapes)) {
    await after_(page, () => page.selectOption('[data-testid=patch-target]', target));
    const s = await grid(page);
    assert.deepEqual([s.rows, s.cols], shape, target);
    const ms = Number(await page.getAttribute('[data-testid=lab-status]', 'data-ms'));
    assert.ok(ms < 10_000, `${target} took ${ms} ms`);
  }

  // Hover, click (kept, and in the link), keyboard.
  await page.hover('[data-testid=heat-real] td[data-cell="0.4"]');
  const detail = page.locator('[data-testid=cell-detail]');
  await eventually(async () => assert.match(await detail.textContent(), /Patched clean resid_pre at layer 0, pos 4 \(“mary”\) into the corrupted run/));
  await page.click('[data-testid=heat-real] td[data-cell="1.2"]');
  await page.mouse.move(0, 0);
  await eventually(async () => assert.equal(await detail.getAttribute('data-cell'), '1.2'));
  assert.match(await detail.textContent(), /Kept/);
  await eventually(async () => assert.match(page.url(), /cell=1\.2/));
  await page.focus('[data-testid=heat-real] td[data-cell="1.2"]');
  await page.keyboard.press('ArrowRight');
  await eventually(async () => assert.equal(await detail.getAttribute('data-cell'), '1.3'));
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  await eventually(async () => assert.equal(await detail.getAttribute('data-cell'), '1.3'));

  // Metrics: the probability lies in [0, 1]; the KL is never negative. Switching the metric reruns nothing.
  await after_(page, () => page.selectOption('[data-testid=patch-metric]', 'answer_prob'));
  assert.ok(Object.values((await grid(page)).cells).every((v) => v >= 0 && v <= 1));
  await after_(page, () => page.selectOption('[data-testid=patch-metric]', 'kl'));
  assert.ok(Object.values((await grid(page)).cells).every((v) => v >= 0));
  await after_(page, () => page.selectOption('[data-testid=patch-metric]', 'logit_diff'));
  // Noising: the clean run with one corrupted activation. Position 1 is the same in both prompts: exactly 1.
  await after_(page, () => page.check('[data-testid=dir-noising]'));
  const n = await grid(page);
  assert.ok(Math.abs(n.cells['0.1'] - 1) < 1e-4, `noising resid_pre L0 'when': ${n.cells['0.1']}`);
  await page.hover('[data-testid=heat-real] td[data-cell="2.4"]');
  await eventually(async () => assert.match(await detail.textContent(), /Patched corrupted resid_pre at layer 2, pos 4 \(“mary”\) into the clean run/));
  await after_(page, () => page.check('[data-testid=dir-denoising]'));

  // The CSV: the metadata as `#` lines (read_csv's comment="#" skips them), then a header with TransformerLens's
  // columns and one row per cell.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download-real]')]);
  assert.equal(dl.suggestedFilename(), 'activation-patching-resid_pre-denoising-logit_diff.csv');
  const all = fs.readFileSync(await dl.path(), 'utf8').trim().split('\n');
  assert.ok(all.includes('# model: ioi') && all.some((l) => /^# source: Glassbox \d/.test(l)), all.slice(0, 8).join('\n'));
  const text = all.filter((l) => !l.startsWith('#'));
  assert.equal(text[0], 'layer,pos,head,value,metric,target,direction,method');
  assert.equal(text.length, 1 + 3 * 15);
  assert.match(text[5], /^0,4,,-?[0-9.e-]+,logit_diff,resid_pre,denoising,activation$/);

  // Attribution patching beside real patching: the correlation and the three largest disagreements.
  await after_(page, () => page.check('[data-testid=patch-attribution]'));
  const a = await grid(page, 'heat-attr');
  assert.deepEqual([a.rows, a.cols], [3, 15]);
  const agreement = page.locator('[data-testid=agreement]');
  assert.ok(Math.abs(Number(await agreement.getAttribute('data-corr'))) <= 1);
  assert.equal(await page.locator('[data-testid=disagreement]').count(), 3);
  const attrMs = Number(await page.getAttribute('[data-testid=lab-status]', 'data-attr-ms'));
  assert.ok(attrMs < 2000, `attribution patching took ${attrMs} ms`);
  const [dl2] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download-attr]')]);
  const attrText = fs.readFileSync(await dl2.path(), 'utf8').trim().split('\n').filter((l) => !l.startsWith('#'));
  assert.equal(attrText.length, 1 + 3 * 15);
  assert.match(attrText[1], /,attribution$/);
  await screenshot(page, 'patching-attribution');
  assertClean(page);
});

test('bad inputs each give a clear message and the last result stays', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.3.1', { t });
  await waitRev(page, 1, 120_000);
  await page.selectOption('[data-testid=patch-corruption]', 'typed');
  // The typed box starts from what the corruption made.
  assert.match(await page.inputValue('[data-testid=patch-corrupted]'), /went to the store , \w+ gave a bottle to/);

  await page.fill('[data-testid=patch-corrupted]', 'When John and Mary went to the store, John gave the bottle back to');
  await eventually(async () => assert.match(await errorText(page), /15 tokens and the corrupted prompt 16/));
  assert.equal(await page.locator('[data-testid=patch-tokenizations] .tok').count(), 31);
  await screenshot(page, 'patching-lengths');

  await page.fill('[data-testid=patch-corrupted]', 'When Zorro and Mary went to the shop, Zorro gave a bottle to');
  await eventually(async () => assert.match(await errorText(page), /does not know “Zorro” and “shop” in the corrupted prompt/));

  await page.fill('[data-testid=patch-corrupted]', SENTENCE);
  await eventually(async () => assert.match(await errorText(page), /are the same/));

  // The two names swapped: a new result, which the next bad inputs keep.
  await after_(page, () => page.fill('[data-testid=patch-corrupted]', 'When John and Mary went to the store, Mary gave a bottle to'));
  await page.fill('[data-testid=patch-answer]', 'Mary Jane');
  await eventually(async () => assert.match(await errorText(page), /is 2 tokens/));
  // Back to a good input: the result comes back from the cache.
  await after_(page, () => page.fill('[data-testid=patch-answer]', ''));
  const rev = await labRev(page);
  const before = await grid(page);

  // A corruption that leaves the answer as it was: the normalised logit difference is undefined, the other
  // metrics are offered.
  await page.fill('[data-testid=patch-corrupted]', 'When John and Mary went to the park, John gave a bottle to');
  await eventually(async () => assert.match(await errorText(page), /does not change the answer/));
  assert.deepEqual(await grid(page), before, 'the last result stays');
  assert.equal(await labRev(page), rev);
  await after_(page, () => page.click('[data-testid=offer-kl]'));
  assert.equal(await page.inputValue('[data-testid=patch-metric]'), 'kl');

  await page.fill('[data-testid=patch-clean]', 'mary '.repeat(70));
  await eventually(async () => assert.match(await errorText(page), /more than the 64 the model reads/));
  assertClean(page);
});

test('the induction model: a repeated sequence against its second half drawn again', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.3.1?model=induction&target=head_out&dir=noising', { t });
  await waitRev(page, 1, 120_000);
  const clean = (await page.inputValue('[data-testid=patch-clean]')).split(' ');
  assert.equal(clean.length, 20);
  assert.deepEqual(clean.slice(0, 10), clean.slice(10));
  assert.equal(await page.getAttribute('[data-testid=patch-answer]', 'placeholder'), clean[0]);
  const g = await grid(page);
  assert.deepEqual([g.rows, g.cols], [2, 4]);
  // Noising: losing a layer-1 head (an induction head) breaks most of the answer; no layer-0 head matters as much.
  const l1 = Math.min(g.cells['1.0'], g.cells['1.1'], g.cells['1.2'], g.cells['1.3']);
  assert.ok(l1 < 0.5, JSON.stringify(g.cells));
  await screenshot(page, 'patching-induction');
  await after_(page, () => page.click('[data-testid=patch-again]'));
  assert.notDeepEqual((await page.inputValue('[data-testid=patch-clean]')).split(' '), clean);
  assertClean(page);
});

test('a tampered link is explained and falls back to the defaults', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.3.1?target=zz&metric=acc&dir=up&cell=9.9', { t });
  const msg = await page.locator('[data-testid=url-error]').textContent();
  for (const part of [/“target=zz” is not one of/, /“metric=acc” is not one of/, /“dir=up” is not one of/]) assert.match(msg, part);
  await waitRev(page, 1, 120_000);
  await eventually(async () => assert.match(await page.locator('[data-testid=url-error]').textContent(), /cell 9\.9 lies outside this grid/));
  assert.equal((await grid(page)).rows, 3);
  assertClean(page);
});
