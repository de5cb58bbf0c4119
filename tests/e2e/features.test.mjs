// The feature browser of 9.2.5 (/#/9.2.5, below the toy SAE): the SAE shipped with the Moby-Dick model.
// Pick a latent and see its contexts, histogram, promoted characters and the spliced-in loss; the latent
// lives in the URL; a tampered URL or a failed download gives a clear message, never a blank page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, shutdown, openPage, assertClean, screenshot, eventually, readDistJson } from './harness.mjs';

const TIMEOUT = { timeout: 240_000 };
before(launch);
after(shutdown);

function index() {
  return readDistJson('models/moby/sae/features.json');
}

async function card(page, latent) {
  const c = page.locator(`[data-testid=feature-card][data-latent="${latent}"]`);
  await c.waitFor({ state: 'visible', timeout: 90_000 });
  return c;
}

test('9.2.5 feature browser: a latent from the URL shows contexts, histogram, logit effects and the loss; picking another updates the URL', TIMEOUT, async (t) => {
  const idx = index();
  const alive = idx.latents.map((l, j) => [j, l]).filter(([, l]) => l.count > 0);
  const [j, l] = alive[Math.floor(alive.length / 3)];
  const page = await openPage(`/#/9.2.5?latent=${j}`, { t });
  const c = await card(page, j);
  assert.equal(await page.locator('[data-testid=url-error]').count(), 0);
  // Contexts: as many as the index holds, each with one shaded span per character and the peak outlined.
  const ctx = c.locator('[data-testid=feature-contexts] > li');
  assert.equal(await ctx.count(), l.contexts.length);
  assert.equal(await ctx.first().locator('.ctx-char').count(), l.contexts[0].acts.length);
  assert.equal(await ctx.first().locator('.ctx-char.peak').count(), 1);
  assert.match(await c.locator('[data-testid=feature-density]').textContent(), /Fires on [\d,]+ characters/);
  assert.equal(await c.locator('[data-testid=feature-histogram] rect').count(), l.hist.length);
  assert.equal(await c.locator('[data-testid=promoted] li').count(), 8);
  assert.equal(await c.locator('[data-testid=suppressed] li').count(), 8);
  const shipped = page.locator('[data-testid=shipped-loss]');
  const clean = Number(await shipped.getAttribute('data-clean'));
  const spliced = Number(await shipped.getAttribute('data-spliced'));
  assert.ok(clean > 1 && clean < 2 && spliced > clean, `shipped ${clean} → ${spliced}`);
  await screenshot(page, 'features');

  // Pick another latent from the list: the card and the URL follow.
  const other = page.locator('[data-testid=latent-list] .latent-item:not(.selected)').nth(2);
  const k = Number(await other.getAttribute('data-latent'));
  await other.click();
  await card(page, k);
  await eventually(async () => assert.match(page.url(), new RegExp(`latent=${k}(&|$)`)));
  // Next / previous walk the list's order.
  await page.click('[data-testid=latent-next]');
  await eventually(async () => assert.notEqual(Number(await page.locator('[data-testid=feature-card]').getAttribute('data-latent')), k));
  await page.click('[data-testid=latent-prev]');
  await card(page, k);

  // The spliced-in loss, measured live with progress; Cancel stops it; a full run gives both numbers.
  // Cancel is pressed from inside the page on the first frame that shows it: the run takes about a second, less
  // than a round trip of clicks from the test may need.
  await page.evaluate(() => new Promise((resolve) => {
    document.querySelector('[data-testid=measure-loss]').click();
    const tick = () => {
      const cancel = document.querySelector('[data-testid=cancel-loss]');
      if (cancel) { cancel.click(); resolve(); } else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }));
  await eventually(async () => assert.equal(await page.locator('[data-testid=live-loss]').getAttribute('data-state'), 'cancelled'));
  await page.click('[data-testid=measure-loss]');
  const live = page.locator('[data-testid=live-loss]');
  await eventually(async () => assert.equal(await live.getAttribute('data-state'), 'done'), { timeout: 180_000 });
  const lc = Number(await live.getAttribute('data-clean'));
  const ls = Number(await live.getAttribute('data-spliced'));
  assert.ok(lc > 1 && lc < 2.2 && ls > lc && ls - lc < 0.4, `live ${lc} → ${ls}`);
  await screenshot(page, 'features-measured');
  // The toy tab and back: the browser keeps its latent.
  await page.click('[data-testid=tab-toy]');
  await page.locator('[data-testid=sae-lab]').waitFor({ state: 'visible' });
  assert.ok(!(await page.locator('[data-testid=feature-browser]').isVisible()));
  await page.click('[data-testid=tab-features]');
  await card(page, k);
  assertClean(page);
});

test('9.2.5 feature browser: a tampered latent in the URL says so and shows a real latent', TIMEOUT, async (t) => {
  for (const bad of ['99999', 'abc', '-3']) {
    const page = await openPage(`/#/9.2.5?latent=${bad}`, { t });
    const err = page.locator('[data-testid=url-error]');
    await err.waitFor({ state: 'visible', timeout: 90_000 });
    // Every lab's one message names the key; a number outside the dictionary also gives its size.
    assert.match(await err.textContent(), bad === '99999' ? /“latent=99999”.*latents 0 to 511/ : /“latent=.*” is not a whole number/);
    await page.locator('[data-testid=feature-card]').waitFor({ timeout: 90_000 });
    assert.equal(await page.locator('[data-testid=feature-card]').count(), 1);
    if (bad === 'abc') await screenshot(page, 'features-bad-url');
    // Typing a bad number into the box is caught too.
    await page.fill('[data-testid=latent-input]', '7000');
    await page.locator('[data-testid=latent-input]').press('Enter');
    await eventually(async () => assert.match(await page.locator('[data-testid=latent-error]').textContent(), /not a latent/));
    assertClean(page);
  }
});

test('9.2.5 feature browser: a failed or corrupt download names the file and leaves the toy lab working', TIMEOUT, async (t) => {
  const cases = [
    { file: 'features.json', fulfil: { status: 404, body: 'gone' }, says: /features\.json.*404/ },
    { file: 'sae_weights.safetensors', fulfil: { status: 200, body: 'not a safetensors file' }, says: /sae_weights\.safetensors/ },
    { file: 'features.json', fulfil: { status: 200, body: '{"positions": 5}' }, says: /features\.json/ },
  ];
  for (const c of cases) {
    const page = await openPage('/#/overview', { t });
    await page.route(`**/models/moby/sae/${c.file}`, (route) => route.fulfill(c.fulfil));
    await page.click('[data-testid=nav] a[data-section="9.2.5"]');
    await page.click('[data-testid=tab-features]');
    const err = page.locator('[data-testid=features-error]');
    await eventually(async () => {
      assert.ok(await err.isVisible(), `no error for a broken ${c.file}`);
      assert.match(await err.textContent(), c.says);
    }, { timeout: 60_000 });
    await page.click('[data-testid=tab-toy]');
    await page.locator('[data-testid=sae-lab]').waitFor({ state: 'visible' });
    if (c.file === 'sae_weights.safetensors') {
      await page.click('[data-testid=tab-features]');
      await screenshot(page, 'features-broken');
    }
    assertClean(page, { allow: [/404/, /Failed to load resource/] });
  }
});
