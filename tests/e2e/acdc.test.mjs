// The ACDC lab (/#/9.4): it opens on a run on the IOI model and draws the graph with the circuit; moving τ
// re-runs and changes the number of kept edges; a bad prompt gives a message and keeps the graph; the
// induction model's circuit links its heads to the attention lab; Cancel stops a run; no console error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, shutdown, openPage, assertClean, screenshot, eventually, waitRev, labRev } from './harness.mjs';

const TIMEOUT = { timeout: 240_000 };
before(launch);
after(shutdown);

const summary = (page) => page.evaluate(() => {
  const s = document.querySelector('[data-testid=acdc-summary]');
  return { kept: Number(s.dataset.kept), kl: Number(s.dataset.kl), faith: s.dataset.faith, tau: Number(s.dataset.tau) };
});
const looks = (page) => page.evaluate(() => [...document.querySelectorAll('[data-testid=acdc-edge]')].map((e) => e.dataset.look));

async function setTau(page, log10) {
  const prev = await labRev(page);
  await page.evaluate((v) => {
    const s = document.querySelector('[data-testid=acdc-tau]');
    s.value = String(v);
    s.dispatchEvent(new Event('input', { bubbles: true }));
    s.dispatchEvent(new Event('change', { bubbles: true }));
  }, log10);
  await waitRev(page, prev + 1, 120_000);
}

test('9.4 opens on ACDC on the IOI model, draws the circuit, and τ changes how many edges stay', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.4', { t });
  await waitRev(page, 1, 120_000);
  const s = await summary(page);
  const all = await looks(page);
  assert.equal(all.length, 193, 'every edge of the 3 x 4 attention-only graph is drawn');
  assert.equal(all.filter((l) => l === 'circuit').length, s.kept);
  assert.ok(s.kept > 0 && s.kept < 40, `${s.kept} edges kept`);
  assert.ok(Number(s.faith) > 0.5, `faithfulness ${s.faith}`);
  assert.ok(await page.locator('[data-testid=acdc-head-link]').count() > 0);
  assert.ok(await page.locator('[data-testid=acdc-log-item]').count() > 0);
  await screenshot(page, 'acdc-ioi');

  await setTau(page, -4);
  const small = await summary(page);
  await setTau(page, 0);
  const large = await summary(page);
  assert.ok(small.kept > s.kept && large.kept < s.kept, `kept at τ 1e-4 ${small.kept}, default ${s.kept}, 1 ${large.kept}`);
  await eventually(async () => assert.match(page.url(), /tau=1(&|$)/));

  // A bad prompt: a message, and the last graph stays.
  await page.fill('[data-testid=acdc-corrupt]', 'When Alice and Bob went to the store');
  await page.click('[data-testid=acdc-run]');
  await eventually(async () => assert.match(await page.locator('[data-testid=input-error]').textContent(), /same number of words/));
  assert.equal((await summary(page)).kept, large.kept);
  assertClean(page);
});

test('an IOI head of the circuit links to its cell of the patching lab and to its pattern, on the same prompts', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.4', { t });
  await waitRev(page, 1, 120_000);
  // The chapter's text quotes the default run: 14 of 193 edges (tests/acdc.rs checks the same natively).
  assert.equal((await summary(page)).kept, 14);
  const head = page.locator('[data-testid=acdc-head][data-head="1.3"]');
  const pattern = await head.locator('[data-testid=acdc-pattern-link]').getAttribute('href');
  assert.match(pattern, /^#\/attention\?model=ioi&seq=When\+John\+and\+Mary.*&layer=1&head=3$/);
  const link = head.locator('[data-testid=acdc-head-link]');
  await head.scrollIntoViewIfNeeded();
  await screenshot(page, 'acdc-ioi-heads');
  assert.match(await link.getAttribute('href'), /^#\/9\.3\.1\?corr=typed&corrupted=When\+Alice\+and\+Bob.*&target=head_out&cell=1\.3$/);
  await link.click();
  await eventually(async () => assert.equal(await page.locator('[data-testid=patch-target]').inputValue(), 'head_out'));
  const detail = page.locator('[data-testid=cell-detail]');
  await eventually(async () => assert.equal(await detail.getAttribute('data-cell'), '1.3'), { timeout: 120_000 });
  assert.equal(await page.locator('[data-testid=patch-corruption]').inputValue(), 'typed');
  assert.match(await page.locator('[data-testid=patch-corrupted]').inputValue(), /^When Alice and Bob went to the store, Alice gave/);

  // The pattern link: the attention lab on the IOI model, the clean prompt, the head selected.
  await page.evaluate((h) => { location.hash = h; }, pattern);
  await eventually(async () => {
    assert.ok(await page.isChecked('[data-testid=attention-model-ioi]'));
    assert.equal(await page.inputValue('[data-testid=seq-input]'), 'When John and Mary went to the store, John gave a bottle to');
    assert.equal(await page.locator('[data-testid=head-cell][data-layer="1"][data-head="3"]').getAttribute('aria-pressed'), 'true');
  }, { timeout: 60_000 });
  assertClean(page);
});

test('the induction model: its circuit links each head to its pattern and its patching map; Cancel stops a run', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.4?model=induction', { t });
  await waitRev(page, 1, 120_000);
  const s = await summary(page);
  assert.equal((await looks(page)).length, 81);
  assert.ok(s.kept > 0 && s.kept < 40, `${s.kept} edges kept`);
  const pattern = await page.getAttribute('[data-testid=acdc-pattern-link] >> nth=0', 'href');
  assert.match(pattern, /^#\/attention\?seq=.+&layer=\d&head=\d$/);
  const patching = await page.getAttribute('[data-testid=acdc-head-link] >> nth=0', 'href');
  assert.match(patching, /^#\/9\.3\.1\?model=induction&clean=.+&corr=typed&corrupted=.+&target=head_out&cell=\d\.\d$/);
  await screenshot(page, 'acdc-induction');

  // Cancel as soon as a run starts: the progress goes away and nothing breaks.
  const prev = await labRev(page);
  await page.click('[data-testid=acdc-new-seq]');
  await page.locator('[data-testid=acdc-cancel]').click({ timeout: 5_000 }).catch(() => {});
  await eventually(async () => assert.equal(await page.locator('[data-testid=acdc-progress]').count(), 0));
  await new Promise((r) => setTimeout(r, 300));
  assert.ok((await labRev(page)) <= prev + 1);
  assertClean(page);
});

test('a tampered link gets the one message and the defaults', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.4?model=gpt&tau=7', { t });
  const msg = await page.locator('[data-testid=url-error]').textContent();
  assert.match(msg, /“model=gpt”/);
  assert.match(msg, /“tau=7”/);
  await waitRev(page, 1, 120_000);
  assert.equal((await summary(page)).tau, 0.01);
  assertClean(page);
});
