// The critiques lab (/#/9.5) and predict-then-reveal: on each card a prediction is committed before the run is
// offered, the run shows its finding and then the reveal; predictions survive a reload, show in the navigation's
// count, and go away with "Reset my progress". No console error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, shutdown, openPage, assertClean, screenshot, eventually, waitRev, labRev } from './harness.mjs';

const TIMEOUT = { timeout: 240_000 };
before(launch);
after(shutdown);

const card = (page, key) => page.locator(`[data-testid=critique-card][data-card="${key}"]`);

/** Commits choice `k` on a card (or a chapter exercise) whose prediction id is `id`. */
async function predict(page, id, k) {
  await page.check(`[data-testid=predict-${id}-${k}]`);
  await page.click(`[data-testid=predict-${id}-commit]`);
}

async function runCard(page, key, id, choice) {
  const c = card(page, key);
  assert.equal(await c.locator('[data-testid=critique-run]').count(), 0, `${key}: no run before a prediction`);
  assert.ok(await page.isDisabled(`[data-testid=predict-${id}-commit]`), 'commit waits for a choice');
  await predict(page, id, choice);
  assert.equal(await c.getAttribute('data-state'), 'committed');
  assert.equal(await c.locator('[data-testid=predict-reveal]').count(), 0, `${key}: no reveal before the run`);
  const prev = await labRev(page);
  await c.locator('[data-testid=critique-run]').click();
  await waitRev(page, prev + 1, 120_000);
  await eventually(async () => assert.equal(await c.getAttribute('data-state'), 'revealed'));
  assert.ok(await c.locator('[data-testid=predict-reveal]').isVisible());
  assert.ok(await c.locator('.predict-choice.mine').count() === 1);
  assert.ok(await c.locator('.predict-choice.right').count() === 1);
  return c;
}

test('9.5: each card takes a prediction, runs, and reveals a finding that shows the failure', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.5', { t });
  await page.locator('[data-testid=critiques-lab]').waitFor();
  const N = await page.locator('[data-testid=critique-card]').count();
  assert.ok(N >= 11, `${N} cards`);
  assert.equal(await page.textContent('[data-testid=nav] a[data-section="9.5"] [data-testid=predict-count]'), `0/${N}`);

  // Attention against patching on the glassbox model: the decoy L1H1 looks busy and loses nothing.
  let c = await runCard(page, 'attention', 'critique-attention', 0);
  const decoy = c.locator('[data-testid=finding-row][data-head="1.1"]');
  assert.equal(await decoy.locator('td').nth(0).textContent(), 'duplicate-token 1.00');
  assert.equal(await decoy.locator('td').nth(1).textContent(), '0%');
  assert.ok(await c.locator('.predict-choice.wrong').count() === 1, 'choice 0 was wrong and is marked so');
  assert.equal(await c.locator('[data-testid=finding-row].matters').count(), 2);

  // Two metrics and two directions on the IOI model.
  c = await runCard(page, 'metric', 'critique-metric', 1);
  assert.equal(await c.locator('[data-testid=finding-row]').count(), 12);
  assert.match(await c.locator('[data-testid=finding-summary]').textContent(), /Most important head: L\dH\d/);

  // ACDC with two metrics: a dozen edges each, and heads only one of them keeps.
  c = await runCard(page, 'acdc-metric', 'critique-acdc-metric', 1);
  const acdc = c.locator('[data-testid=finding-summary]');
  assert.equal(await acdc.getAttribute('data-only-kl'), 'L1H1');
  assert.equal(await acdc.getAttribute('data-only-ld'), 'L2H0,L2H2');
  // ... and three thresholds per metric: the circuit shrinks as τ rises, by the edges each step names.
  const edges = await c.locator('[data-testid=finding-row]').evaluateAll((rs) => rs.map((r) => Number(r.dataset.edges)));
  assert.deepEqual(edges, [16, 14, 9, 35, 12, 8]);
  const dropped = await c.locator('[data-testid=tau-step]').evaluateAll((rs) => rs.map((r) => Number(r.dataset.dropped)));
  assert.deepEqual(dropped, [2, 5, 23, 4]);
  await screenshot(page, 'critiques-acdc-tau', c.locator('[data-testid=finding-tau]'));

  // A probe on a random network beats the majority baseline by at least 10 points.
  c = await runCard(page, 'random-probe', 'critique-random-probe', 1);
  const margin = Number(await c.locator('[data-testid=finding-summary]').getAttribute('data-margin'));
  assert.ok(margin >= 10, `random network's margin ${margin}`);
  assert.equal(await c.locator('[data-testid=finding-row]').count(), 5);
  // ... and its control task: the random network's probe is no more selective than memorising characters.
  const probeSummary = c.locator('[data-testid=finding-summary]');
  const [selRandom, selTrained] = [Number(await probeSummary.getAttribute('data-sel-random')), Number(await probeSummary.getAttribute('data-sel-trained'))];
  assert.ok(selRandom <= 0.5 && selTrained >= selRandom + 5, `selectivity: random ${selRandom}, trained ${selTrained} points`);
  await screenshot(page, 'critiques-probe-selectivity', c.locator('[data-testid=finding]'));

  // The saliency sanity check: gradient x input survives randomisation, the plain gradient much less.
  c = await runCard(page, 'saliency', 'critique-saliency', 1);
  const sal = c.locator('[data-testid=finding-summary]');
  const [grad, gxi] = [Number(await sal.getAttribute('data-gradient')), Number(await sal.getAttribute('data-gxi'))];
  assert.ok(gxi > 0.9 && grad < gxi - 0.25, `gradient ${grad}, gradient x input ${gxi}`);

  // The tuned lens, trained in the page, reads the embedding far better than the logit lens.
  c = await runCard(page, 'tuned-lens', 'critique-tuned-lens', 1);
  const lens = c.locator('[data-testid=finding-summary]');
  const [logit, tuned] = [Number(await lens.getAttribute('data-logit')), Number(await lens.getAttribute('data-tuned'))];
  assert.ok(logit < 0.15 && tuned > logit + 0.25, `top-1 agreement at the embedding: logit ${logit}, tuned ${tuned}`);
  assert.equal(await c.locator('[data-testid=finding-row]').count(), 5);

  // Steering swept: capitals rise with the coefficient, and the loss of the text more than doubles.
  c = await runCard(page, 'steering', 'critique-steering', 1);
  const pts = await c.locator('[data-testid=finding-row]').evaluateAll((rs) => rs.map((r) => ({ rate: Number(r.dataset.rate), loss: Number(r.dataset.loss) })));
  assert.equal(pts.length, 6);
  assert.ok(pts[0].rate < 0.05 && pts[5].rate > 0.9, JSON.stringify(pts));
  assert.ok(pts[5].loss > 2 * pts[0].loss, JSON.stringify(pts));

  // Every method on the glassbox model, scored against its known mechanism.
  c = await runCard(page, 'scorecard', 'critique-scorecard', 1);
  assert.equal(await c.locator('[data-testid=finding-row]').count(), 7);
  assert.equal(await c.locator('[data-testid=finding-summary]').getAttribute('data-verdicts'),
    'attention:gets-wrong,noising:recovers,denoising:misses,acdc:recovers,logit-lens:recovers,probe:recovers,sae:gets-wrong');
  assert.match(await c.locator('[data-testid=finding-row][data-method=sae]').textContent(), /69 of 69 codes found/);
  await screenshot(page, 'critiques-scorecard', c.locator('[data-testid=finding]'));
  // Cancel stops a run again: the bar goes, the last finding stays, and nothing is reported as an error.
  await c.locator('[data-testid=critique-run]').click();
  await c.locator('[data-testid=critique-cancel]').click({ timeout: 5_000 });
  await c.locator('[data-testid=critique-progress]').waitFor({ state: 'detached' });
  assert.equal(await c.locator('[data-testid=critique-error]').count(), 0);
  assert.equal(await c.getAttribute('data-state'), 'revealed');
  assert.equal(await c.locator('[data-testid=finding-row]').count(), 7);
  await screenshot(page, 'critiques');

  // The feature cards (SAE and polysemantic channel) have a test of their own below.
  assert.equal(await page.textContent('[data-testid=nav] a[data-section="9.5"] [data-testid=predict-count]'), `8/${N}`);
  // The predictions survive a reload (the runs do not: a card shows its committed prediction and Run again).
  await page.reload();
  await page.locator('[data-testid=critiques-lab]').waitFor();
  assert.equal(await card(page, 'attention').getAttribute('data-state'), 'committed');
  assert.ok(await page.isChecked('[data-testid=predict-critique-attention-0]'));
  assert.ok(await page.isDisabled('[data-testid=predict-critique-attention-1]'), 'a committed prediction is final');
  assertClean(page);
});

test('9.5 feature cards: the SAE\'s gap, a misleading latent, the L1 sweep and a polysemantic channel', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.5?card=sae-gap', { t });
  await page.locator('[data-testid=critiques-lab]').waitFor();

  // The reconstruction gap: FVU about 0.07, and still the loss rises by 5-15%; 97% "recovered"; silent latents.
  let c = await runCard(page, 'sae-gap', 'critique-sae-gap', 0);
  let s = c.locator('[data-testid=finding-summary]');
  const num = async (loc, k) => Number(await loc.getAttribute(`data-${k}`));
  const [fvu, rise, recovered, dead] = [await num(s, 'fvu'), await num(s, 'rise'), await num(s, 'recovered'), await num(s, 'dead')];
  assert.ok(fvu > 0.06 && fvu < 0.08, `fvu ${fvu}`);
  assert.ok(rise > 0.05 && rise < 0.15, `rise ${rise}`);
  assert.ok(recovered > 0.95 && recovered < 0.99, `recovered ${recovered}`);
  assert.ok(dead >= 14 && dead <= 22, `dead ${dead}`);
  assert.equal(await num(s, 'positions'), 1500);
  const losses = await c.locator('[data-testid=finding-row]').evaluateAll((rs) => rs.map((r) => Number(r.dataset.loss)));
  assert.ok(losses.length === 3 && losses[0] < losses[1] && losses[1] < losses[2], JSON.stringify(losses));
  assert.ok(await c.locator('.predict-choice.wrong').count() === 1, 'choice 0 was wrong and is marked so');

  // The misleading latent: latent 270's contexts all come before an "e", which its direct effect ranks 68th of 83.
  c = await runCard(page, 'sae-latent', 'critique-sae-latent', 2);
  s = c.locator('[data-testid=finding-summary]');
  assert.equal(await s.getAttribute('data-latent'), '270');
  assert.equal(await s.getAttribute('data-next'), 'e');
  assert.equal(await num(s, 'rank'), 68);
  assert.ok((await num(s, 'effect')) < 0);
  assert.equal(await c.locator('[data-testid=finding-row]').count(), 8);
  assert.equal(await c.locator('[data-testid=finding-row] mark').first().textContent(), 's');

  // The L1 sweep, trained in the page: L0 falls and FVU rises with every larger coefficient.
  c = await runCard(page, 'sae-l1', 'critique-sae-l1', 1);
  const pts = await c.locator('[data-testid=finding-row]').evaluateAll((rs) => rs.map((r) => ({ l1: Number(r.dataset.l1), l0: Number(r.dataset.l0), fvu: Number(r.dataset.fvu), dead: Number(r.dataset.dead) })));
  assert.deepEqual(pts.map((p) => p.l1), [0.3, 1, 3, 10]);
  for (let i = 1; i < pts.length; i++) assert.ok(pts[i].l0 < pts[i - 1].l0 && pts[i].fvu > pts[i - 1].fvu, JSON.stringify(pts));
  assert.ok(pts[0].l0 > 70 && pts[3].l0 < 10 && pts[3].dead > 256 / 4, JSON.stringify(pts));
  assert.equal(await c.locator('[data-testid=finding-summary]').getAttribute('data-holds'), 'true');
  assert.equal(await c.locator('[data-testid=l1-chart]').count(), 1);

  // A polysemantic channel: its picture reads as a 7, and none of its top 20 digits is a 7.
  c = await runCard(page, 'polysemantic', 'critique-polysemantic', 2);
  s = c.locator('[data-testid=finding-summary]');
  assert.equal(await s.getAttribute('data-channel'), '11');
  assert.equal(await s.getAttribute('data-read-as'), '7');
  assert.ok((await num(s, 'prob')) > 0.99);
  assert.equal(await s.getAttribute('data-of-read-class'), '0');
  const classes = await c.locator('[data-testid=finding-row]').evaluateAll((rs) => rs.map((r) => r.dataset.class));
  assert.equal(classes.length, 20);
  assert.deepEqual([...new Set(classes)].sort(), ['0', '2', '6']);
  await c.scrollIntoViewIfNeeded();
  await screenshot(page, 'critiques-features');

  // A run can be cancelled: the card keeps its committed prediction and shows no error.
  const again = card(page, 'sae-l1');
  await again.locator('[data-testid=critique-run]').click();
  await again.locator('[data-testid=critique-cancel]').click();
  await again.locator('[data-testid=critique-progress]').waitFor({ state: 'detached' });
  assert.equal(await again.locator('[data-testid=critique-error]').count(), 0);
  assertClean(page);
});

test('a chapter exercise reveals once committed, counts in the navigation, and resets', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.5', { t });
  await page.locator('[data-testid=critiques-lab]').waitFor();
  const N = await page.locator('[data-testid=critique-card]').count();
  await predict(page, 'critique-metric', 0);
  assert.equal(await page.textContent('[data-testid=nav] a[data-section="9.5"] [data-testid=predict-count]'), `1/${N}`);
  // The chapter's own exercises (`:::predict`): the first one found in any section.
  const withExercise = await page.evaluate(async () => {
    for (const a of document.querySelectorAll('[data-testid=nav] a[data-section]')) {
      const count = a.querySelector('[data-testid=predict-count]');
      if (count && a.dataset.section !== '9.5') return a.dataset.section;
    }
    return null;
  });
  if (withExercise) {
    await page.evaluate((s) => { location.hash = `#/${s}`; }, withExercise);
    const ex = page.locator('[data-testid=predict]').first();
    await ex.waitFor();
    const id = await ex.getAttribute('data-predict');
    assert.equal(await ex.getAttribute('data-state'), 'open');
    assert.equal(await ex.locator('[data-testid=predict-reveal]').count(), 0);
    await predict(page, id, 0);
    assert.equal(await ex.getAttribute('data-state'), 'revealed');
    assert.ok(await ex.locator('[data-testid=predict-reveal]').isVisible());
    await screenshot(page, 'predict-revealed');
    await page.reload();
    await page.locator(`[data-testid=predict][data-predict="${id}"][data-state=revealed]`).waitFor();
  }
  // Reset asks once more, then forgets everything, here and after a reload.
  await page.click('[data-testid=reset-progress]');
  await page.click('[data-testid=reset-progress-confirm]');
  assert.equal(await page.locator('[data-testid=reset-progress]').count(), 0);
  await page.evaluate(() => { location.hash = '#/9.5'; });
  await page.locator('[data-testid=critiques-lab]').waitFor();
  assert.equal(await page.textContent('[data-testid=nav] a[data-section="9.5"] [data-testid=predict-count]'), `0/${N}`);
  await page.reload();
  await page.locator('[data-testid=critiques-lab]').waitFor();
  assert.equal(await card(page, 'metric').getAttribute('data-state'), 'open');
  assert.equal(await page.evaluate(() => localStorage.getItem('glassbox.predictions')), null);
  assertClean(page);
});

test('a corrupt stored progress is ignored, and a bad card in a link is reported', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.5?card=nope', { t });
  await page.locator('[data-testid=critiques-lab]').waitFor();
  assert.match(await page.textContent('[data-testid=url-error]'), /card=nope/);
  await page.evaluate(() => localStorage.setItem('glassbox.predictions', '{"critique-attention": 99, "x": '));
  await page.reload();
  await page.locator('[data-testid=critiques-lab]').waitFor();
  assert.equal(await card(page, 'attention').getAttribute('data-state'), 'open');
  const focused = await openPage('/#/9.5?card=metric', { t });
  await focused.locator('[data-testid=critique-card].focused[data-card=metric]').waitFor();
  assertClean(page);
  assertClean(focused);
});
