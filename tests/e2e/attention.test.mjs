// The first lab (/#/attention): a tiny attention-only transformer with induction heads.
// Words come from the model's own vocab.json in dist/; <bos> (id 0) is prepended by the app.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, shutdown, openPage, assertClean, screenshot, eventually, settle, inductionModel, randomWords, rng,
  labRev, waitRev, waitRevAfter,
} from './harness.mjs';

const TIMEOUT = { timeout: 180_000 };
let model;

before(async () => {
  await launch();
  model = inductionModel();
});
after(shutdown);

const INPUT = '[data-testid=seq-input]';
const TOKENS = '[data-testid=token-strip] [data-testid=token]';
const ERROR = '[data-testid=input-error]';

async function openLab(t, hash = '/#/attention') {
  const page = await openPage(hash, { t });
  await waitRev(page, 1);
  return page;
}

/** Replace the textarea's text (fires `input`) and wait for the lab to recompute. */
async function typeSeq(page, text) {
  const rev = await labRev(page);
  await page.fill(INPUT, text);
  return waitRevAfter(page, rev);
}

async function tokenTexts(page) {
  return page.$$eval(TOKENS, (ts) => ts.map((t) => t.textContent.trim()));
}

/** A random sequence of `n` distinct words, then the same words again: what induction heads predict. */
function repeated(n, seed) {
  const first = randomWords(model.words, n, rng(seed));
  return [...first, ...first];
}

/** Half of what fits in the context (with <bos>), at most 20 words. */
function halfLen() {
  return Math.max(3, Math.min(20, Math.floor((model.config.n_positions - 1) / 2)));
}

function numbersIn(s) {
  return (s.match(/-?\d*\.?\d+(?:e-?\d+)?/gi) ?? []).filter((x) => /[.e]/i.test(x)).map(Number);
}

test('the lab loads, tokenises typed text and re-runs on change', TIMEOUT, async (t) => {
  const page = await openLab(t);
  const words = randomWords(model.words, 9, rng(7));
  await typeSeq(page, words.join(' '));
  await eventually(async () => {
    assert.equal(await page.locator(TOKENS).count(), words.length + 1, 'tokens = words + <bos>');
  });
  const texts = await tokenTexts(page);
  assert.deepEqual(texts.slice(1), words, 'the token strip shows the typed words after <bos>');

  const before = await page.inputValue(INPUT);
  const rev = await labRev(page);
  await page.click('[data-testid=random-btn]');
  const rev2 = await waitRevAfter(page, rev);
  assert.ok(rev2 > rev);
  await eventually(async () => assert.notEqual(await page.inputValue(INPUT), before, 'random did not change the input'));
  assertClean(page);
});

test('typing n or p in the textarea does not navigate', TIMEOUT, async (t) => {
  const page = await openLab(t);
  const wordsNp = model.words.filter((w) => /[np]/.test(w)).slice(0, 3);
  await page.fill(INPUT, '');
  await page.locator(INPUT).pressSequentially(wordsNp.join(' '), { delay: 5 });
  await settle(page);
  assert.equal(new URL(page.url()).hash.split('?')[0], '#/attention');
  await eventually(async () => assert.equal(await page.locator(TOKENS).count(), wordsNp.length + 1));
  assertClean(page);
});

test('head grid, selected head, pattern tooltip, attended tokens, head scores', TIMEOUT, async (t) => {
  const page = await openLab(t);
  const { n_layer, n_head } = model.config;
  await typeSeq(page, repeated(halfLen(), 11).join(' '));

  const cells = page.locator('[data-testid=head-grid] [data-testid=head-cell]');
  assert.equal(await cells.count(), n_layer * n_head, 'head cells = n_layer * n_head');

  assert.ok(n_layer >= 2, 'the induction model needs at least 2 layers');
  const h = n_head - 1;
  const cell = page.locator(`[data-testid=head-grid] [data-testid=head-cell][data-layer="1"][data-head="${h}"]`);
  assert.equal(await cell.count(), 1, `no head cell with data-layer="1" data-head="${h}"`);
  await cell.click();
  await eventually(async () => {
    assert.equal(await cell.getAttribute('aria-pressed'), 'true');
    assert.match(await page.locator('[data-testid=pattern-title]').textContent(), new RegExp(`L1H${h}\\b`));
  });
  assert.equal(await page.locator('[data-testid=head-grid] [data-testid=head-cell][aria-pressed="true"]').count(), 1,
    'exactly one head is selected');

  // Hover a below-diagonal cell (q=5 attends to k=2) of the large pattern.
  // The pattern is a canvas with one cell per (q, k): hover the centre of cell (5, 2).
  const large = page.locator('[data-testid=pattern-large]');
  const n = Number(await large.getAttribute('data-n'));
  assert.ok(n > 5, `pattern-large data-n=${n}: expected more than 5 positions`);
  const box = await large.boundingBox();
  await large.hover({ position: { x: ((2 + 0.5) / n) * box.width, y: ((5 + 0.5) / n) * box.height } });
  const tip = page.locator('[data-testid=pattern-tooltip]');
  await eventually(async () => {
    assert.ok(await tip.isVisible(), 'pattern tooltip not visible on hover');
    const hl = page.locator('[data-testid=pattern-large] .pattern-hl');
    assert.equal(await hl.getAttribute('data-q'), '5', 'hovered cell is not in row q=5');
    assert.equal(await hl.getAttribute('data-k'), '2', 'hovered cell is not in column k=2');
    const nums = numbersIn(await tip.textContent());
    assert.ok(nums.some((x) => x >= 0 && x <= 1), `tooltip "${await tip.textContent()}" shows no weight in [0, 1]`);
  });
  // Above the diagonal (q=2, k=5) a query cannot look: no cell, no tooltip.
  await large.hover({ position: { x: ((5 + 0.5) / n) * box.width, y: ((2 + 0.5) / n) * box.height } });
  await eventually(async () => assert.ok(!(await tip.isVisible()), 'tooltip shown above the diagonal'));

  // Hover token 5: the tokens it attends to are marked, and (causal) none lies after it.
  await page.locator('[data-testid=token][data-pos="5"]').hover();
  await eventually(async () => {
    const attended = await page.$$eval(`${TOKENS}.attended`, (ts) => ts.map((t) => Number(t.dataset.pos)));
    assert.ok(attended.some((p) => p !== 5), `hovering token 5 marks no other token as attended (${attended})`);
    assert.ok(attended.every((p) => p <= 5), `token 5 attends to a later position: ${attended}`);
  });

  assert.ok(await page.locator('[data-testid=head-scores] svg').count() >= 1, 'no svg in head-scores');
  await screenshot(page, 'attention-head-selected');
  assertClean(page);
});

test('on a random repeated sequence the repeat half is predicted far better', TIMEOUT, async (t) => {
  const page = await openLab(t);
  await typeSeq(page, repeated(halfLen(), 23).join(' '));
  const ls = page.locator('[data-testid=loss-summary]');
  const first = Number(await ls.getAttribute('data-first-half'));
  const rep = Number(await ls.getAttribute('data-repeat-half'));
  assert.ok(Number.isFinite(first) && Number.isFinite(rep), `loss-summary: first=${first}, repeat=${rep}`);
  assert.ok(first > 0, `first-half loss ${first} should be > 0`);
  assert.ok(rep < 0.3 * first, `repeat-half loss ${rep} is not < 0.3 * first-half loss ${first}`);
  assertClean(page);
});

test('bad input: empty, unknown word, too long; the last good tokens stay', TIMEOUT, async (t) => {
  const page = await openLab(t);
  const good = randomWords(model.words, 6, rng(3));
  await typeSeq(page, good.join(' '));
  const goodTokens = await tokenTexts(page);
  assert.equal(goodTokens.length, good.length + 1);

  const expectError = async (text, mustName) => {
    await page.fill(INPUT, text);
    await eventually(async () => {
      const err = page.locator(ERROR);
      assert.ok(await err.isVisible(), `no visible input-error for ${JSON.stringify(text.slice(0, 40))}`);
      if (mustName) assert.match(await err.textContent(), new RegExp(mustName), `input-error does not name "${mustName}"`);
    });
    assert.deepEqual(await tokenTexts(page), goodTokens, 'the token strip lost its last good tokens');
  };

  await expectError('', null);
  await expectError(`${good[0]} zzzqx ${good[1]}`, 'zzzqx');
  const tooLong = randomWords(model.words, model.config.n_positions + 1, rng(5));
  await expectError(tooLong.join(' '), null);

  // And a good sequence clears the error.
  await typeSeq(page, good.slice(0, 4).join(' '));
  await eventually(async () => assert.equal(await page.locator(ERROR).isVisible(), false, 'input-error still visible'));
  assert.equal(await page.locator(TOKENS).count(), 5);
  await screenshot(page, 'attention-good-after-errors');
  assertClean(page);
});

test('the URL carries the sequence and restores it', TIMEOUT, async (t) => {
  const page = await openLab(t);
  const words = randomWords(model.words, 7, rng(42));
  await typeSeq(page, words.join(' '));
  let url;
  await eventually(async () => {
    url = new URL(page.url());
    assert.match(url.hash, /^#\/attention\?(.*&)?seq=/, `hash ${url.hash} carries no seq`);
    const seq = new URLSearchParams(url.hash.split('?')[1]).get('seq');
    assert.deepEqual(seq.trim().split(/\s+/), words, 'seq in the URL');
  });

  const page2 = await openLab(t, url.href);
  await eventually(async () => {
    assert.deepEqual((await page2.inputValue(INPUT)).trim().split(/\s+/), words, 'the textarea was not restored');
    assert.deepEqual((await tokenTexts(page2)).slice(1), words, 'the token strip was not restored');
  });
  assertClean(page);
  assertClean(page2);
});

test('the IOI model: the chapter sentence, 3 x 4 heads, the link carries the model; switching back', TIMEOUT, async (t) => {
  const page = await openLab(t);
  const rev = await labRev(page);
  await page.check('[data-testid=attention-model-ioi]');
  await waitRevAfter(page, rev, 60_000);
  await eventually(async () => {
    assert.equal(await page.inputValue(INPUT), 'When John and Mary went to the store, John gave a bottle to');
    assert.deepEqual((await tokenTexts(page)).slice(1, 9), ['when', 'john', 'and', 'mary', 'went', 'to', 'the', 'store']);
    assert.equal(await page.locator('[data-testid=head-cell]').count(), 12, 'three layers of four heads');
  });
  const cell = page.locator('[data-testid=head-cell][data-layer="2"][data-head="1"]');
  await cell.click();
  await eventually(async () => {
    assert.equal(await cell.getAttribute('aria-pressed'), 'true');
    assert.match(page.url(), /#\/attention\?model=ioi&seq=When\+John.*&layer=2&head=1$/);
  });
  await eventually(async () => assert.match(await page.locator('[data-testid=training-curve]').innerHTML(), /<svg/));
  await screenshot(page, 'attention-ioi');

  // The link opens on the same model, sentence and head.
  const page2 = await openLab(t, page.url());
  await eventually(async () => {
    assert.ok(await page2.isChecked('[data-testid=attention-model-ioi]'));
    assert.equal(await page2.locator('[data-testid=head-cell][data-layer="2"][data-head="1"]').getAttribute('aria-pressed'), 'true');
  });

  // Back to the induction model: its own default (a random repeat) and 2 x 4 heads; the link drops the model.
  await page.check('[data-testid=attention-model-induction]');
  await eventually(async () => {
    assert.equal(await page.locator('[data-testid=head-cell]').count(), 8);
    const words = (await tokenTexts(page)).slice(1);
    assert.ok(words.length > 4 && words.every((w) => model.words.includes(w)), 'an induction sequence');
    assert.doesNotMatch(page.url(), /model=/);
  });
  assertClean(page);
  assertClean(page2);
});

test('a tampered URL shows an inline error, not a blank page', TIMEOUT, async (t) => {
  const page = await openPage('/#/attention?seq=%ZZ%%', { t });
  await eventually(async () => {
    assert.ok(await page.locator(ERROR).isVisible(), 'no inline input-error for a tampered seq');
  }, { timeout: 60_000 });
  const h1 = (await page.locator('[data-testid=chapter] h1').first().textContent())?.trim();
  assert.ok(h1, 'the chapter heading is gone');
  assert.ok(await page.locator(INPUT).isVisible(), 'the textarea is gone');
  await screenshot(page, 'attention-tampered-url');
  assertClean(page);
});

test('screenshots of the lab', TIMEOUT, async (t) => {
  const page = await openLab(t);
  await typeSeq(page, repeated(halfLen(), 99).join(' '));
  await screenshot(page, 'attention-lab');
  assertClean(page);
});

test('a corrupt or missing model file gives a visible error naming the file, not a blank page', TIMEOUT, async (t) => {
  // Start on a page that does not load the model, then break the files before the lab asks for them.
  const cases = [
    { file: 'model.safetensors', fulfil: { status: 200, body: 'this is not a safetensors file' }, says: /model\.safetensors/ },
    { file: 'config.json', fulfil: { status: 404, body: 'gone' }, says: /config\.json.*404/ },
    { file: 'config.json', fulfil: { status: 200, body: '{"model_type": "gpt2", "n_embd": 0}' }, says: /config\.json/ },
  ];
  for (const c of cases) {
    const page = await openPage('/#/overview', { t });
    await page.route(`**/models/induction/${c.file}`, (route) => route.fulfill(c.fulfil));
    await page.click('[data-testid=nav] a[data-section="attention"]');
    const err = page.locator('[data-testid=load-error]');
    await eventually(async () => {
      assert.ok(await err.isVisible(), `no load-error for a broken ${c.file}`);
      assert.match(await err.textContent(), c.says);
    }, { timeout: 30_000 });
    if (c.file === 'model.safetensors') await screenshot(page, 'attention-broken-model');
    // The rest of the page still works: the chapter is there and navigation still responds.
    assert.ok((await page.locator('[data-testid=chapter] h1').textContent()).trim().length > 0);
    await page.click('[data-testid=nav] a[data-section="9.1"]');
    await eventually(async () => assert.match(await page.locator('[data-testid=chapter] h1').textContent(), /interpretability/i));
    assertClean(page, { allow: [/404/, /Failed to load resource/] });
  }
});
