// The vision lab (/#/9.2.1): an MNIST CNN. Draw with real mouse events, pick a test image, study a channel,
// run a feature visualization, check integrated gradients' completeness on the page, and bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, shutdown, openPage, assertClean, screenshot, eventually } from './harness.mjs';

const TIMEOUT = { timeout: 180_000 };
before(launch);
after(shutdown);

async function openLab(t, hash = '/#/9.2.1') {
  const page = await openPage(hash, { t });
  // The model is loaded when the drawing pad is visible.
  await page.locator('[data-testid=draw-pad]').waitFor({ state: 'visible', timeout: 60_000 });
  return page;
}

/** Draws a polyline on the pad, given in pad fractions (0..1), with real mouse events. */
async function stroke(page, points) {
  const box = await page.locator('[data-testid=draw-pad]').boundingBox();
  const at = ([fx, fy]) => [box.x + fx * box.width, box.y + fy * box.height];
  const [x0, y0] = at(points[0]);
  await page.mouse.move(x0, y0);
  await page.mouse.down();
  for (const p of points.slice(1)) {
    const [x, y] = at(p);
    await page.mouse.move(x, y, { steps: 6 });
  }
  await page.mouse.up();
}

async function prediction(page) {
  return Number(await page.locator('[data-testid=prediction]').getAttribute('data-class'));
}

test('drawing a 1, a 7 and a 0 gives those predictions; undo and clear empty the pad', TIMEOUT, async (t) => {
  const page = await openLab(t);
  assert.ok(await page.locator('[data-testid=empty-hint]').isVisible(), 'an empty pad asks for a digit');
  assert.equal(await page.locator('[data-testid=prediction]').count(), 0, 'an empty pad predicts nothing');

  await stroke(page, [[0.5, 0.15], [0.5, 0.85]]);
  await eventually(async () => assert.equal(await prediction(page), 1, 'a vertical stroke should read as 1'));
  const probs = await page.$$eval('[data-testid=prob]', (rs) => rs.map((r) => Number(r.dataset.p)));
  assert.equal(probs.length, 10);
  assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-3, `probabilities sum to ${probs.reduce((a, b) => a + b, 0)}`);

  await page.click('[data-testid=draw-clear]');
  await eventually(async () => assert.equal(await page.locator('[data-testid=prediction]').count(), 0, 'clear removes the prediction'));
  await eventually(async () => assert.match(await page.locator('[data-testid=input-note]').textContent(), /draw a digit/i));

  // A 7: a top bar, then a long diagonal down to the left.
  await stroke(page, [[0.25, 0.2], [0.75, 0.2], [0.45, 0.85]]);
  await eventually(async () => assert.equal(await prediction(page), 7, 'a bar and a diagonal should read as 7'));

  // Undo removes the 7 entirely (one stroke); then draw a 0 as an ellipse.
  await page.click('[data-testid=draw-undo]');
  await eventually(async () => assert.equal(await page.locator('[data-testid=prediction]').count(), 0, 'undo of the only stroke empties the pad'));
  const ring = [];
  for (let i = 0; i <= 32; i++) {
    const a = (i / 32) * 2 * Math.PI;
    ring.push([0.5 + 0.22 * Math.sin(a), 0.5 - 0.32 * Math.cos(a)]);
  }
  await stroke(page, ring);
  await eventually(async () => assert.equal(await prediction(page), 0, 'an ellipse should read as 0'));
  await screenshot(page, 'vision-drawn-0');
  assertClean(page);
});

test('a test image from the URL: channels, receptive field, circuit, dataset examples', TIMEOUT, async (t) => {
  const page = await openLab(t, '/#/9.2.1?sample=0');
  await eventually(async () => assert.match(await page.locator('[data-testid=sample-label]').textContent(), /labelled \d/));
  const label = Number((await page.locator('[data-testid=sample-label]').textContent()).match(/labelled (\d)/)[1]);
  assert.equal(await prediction(page), label, 'the first shipped test image is classified correctly');

  const layers = await page.locator('[data-testid=act-layer]').count();
  assert.ok(layers >= 2, `only ${layers} conv layers shown`);
  const ch = page.locator('[data-testid=act-channel][data-layer="2"][data-channel="3"]');
  await ch.click();
  await eventually(async () => assert.equal(await page.locator('[data-testid=focus-title]').textContent(), 'conv2 channel 3'));
  assert.equal(await ch.getAttribute('aria-pressed'), 'true');

  const map = page.locator('[data-testid=focus-map]');
  const box = await map.boundingBox();
  await map.hover({ position: { x: box.width * 0.5, y: box.height * 0.5 } });
  await eventually(async () => {
    const rf = await page.locator('[data-testid=rf-box]').getAttribute('data-rf');
    const [y0, x0, y1, x1] = rf.split(',').map(Number);
    // conv2 cells see 8x8 input pixels (3x3 conv, pool, 3x3 conv).
    assert.equal(y1 - y0 + 1, 8, `receptive field ${rf}`);
    assert.equal(x1 - x0 + 1, 8, `receptive field ${rf}`);
  });
  assert.match(await page.locator('[data-testid=focus-value]').textContent(), /conv2 channel 3 at row \d+, column \d+: -?\d/);

  // The circuit lists conv1 channels as sources, and following one moves the focus down a layer.
  const links = page.locator('[data-testid=circuit-link]');
  await eventually(async () => assert.ok((await links.count()) >= 4, 'circuit shows too few sources'));
  // Each kernel sits beside the shipped feature visualization of its source channel, painted at 28x28.
  await eventually(async () => {
    const widths = await page.locator('[data-testid=circuit-source]').evaluateAll((cs) => cs.map((c) => c.width));
    assert.equal(widths.length, await links.count(), 'a source visualization per kernel');
    assert.ok(widths.every((w) => w === 28), `source canvases not painted: ${widths}`);
  });
  const inked = await page.locator('[data-testid=circuit-source]').first().evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let lo = 255, hi = 0;
    for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
    return hi - lo;
  });
  assert.ok(inked > 64, `the source visualization is nearly flat (contrast ${inked})`);
  await links.first().locator('button').click();
  await eventually(async () => assert.match(await page.locator('[data-testid=focus-title]').textContent(), /^conv1 channel \d+$/));

  // Dataset examples and the class mix appear once the 2,000 test images are scanned.
  await eventually(async () => assert.ok(await page.locator('[data-testid=class-mix]').isVisible()), { timeout: 30_000 });
  assert.match(await page.locator('[data-testid=class-mix]').textContent(), /Labels of its top 20/);
  // Every top example is labelled, and the layer-wide overview has a tile per conv1 channel.
  const labels = await page.locator('[data-testid=top-label]').allTextContents();
  assert.equal(labels.length, 9);
  assert.ok(labels.every((l) => /^a \d$/.test(l)), `top example labels: ${labels}`);
  const tiles = page.locator('[data-testid=mix-tile]');
  await eventually(async () => assert.equal(await tiles.count(), 8, 'one class-mix tile per conv1 channel'));
  const polyCount = Number(await page.locator('[data-testid=mix-overview]').getAttribute('data-poly-count'));
  const flagged = await page.locator('[data-testid=mix-tile][data-polysemantic=true]').count();
  assert.equal(flagged, polyCount, 'the overview counts the flagged tiles it shows');
  await tiles.nth(5).click();
  await eventually(async () => assert.equal(await page.locator('[data-testid=focus-title]').textContent(), 'conv1 channel 5'));
  assert.equal(await tiles.nth(5).getAttribute('aria-pressed'), 'true');
  await screenshot(page, 'vision-sample');
  assertClean(page);
});

test('feature visualization animates, raises the activation, and can be stopped', TIMEOUT, async (t) => {
  const page = await openLab(t, '/#/9.2.1?sample=0');
  await page.locator('[data-testid=act-channel][data-layer="3"][data-channel="5"]').click();
  const img = () => page.evaluate(() => document.querySelector('[data-testid=fv-image]').toDataURL());
  const act = page.locator('[data-testid=fv-activation]');
  // Before any run, the shipped atlas's picture of the channel is shown.
  await eventually(async () => assert.match(await act.textContent(), /Precomputed/));

  // Stop part-way: the page answers clicks while it runs. The whole run takes a few hundred milliseconds here, so
  // the CPU is slowed tenfold meanwhile (as on a slow classroom laptop): otherwise the run could end between
  // finding the Stop button and clicking it, and the click would land on the Run button that replaces it.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 10 });
  await page.click('[data-testid=fv-run]');
  await eventually(async () => assert.ok(Number(await act.getAttribute('data-steps')) >= 10));
  await page.click('[data-testid=fv-stop]');
  const stoppedAt = Number(await act.getAttribute('data-steps'));
  await page.waitForTimeout(300);
  const after = Number(await act.getAttribute('data-steps'));
  assert.ok(stoppedAt < 200 && after <= stoppedAt + 2, `the run kept going after Stop: ${stoppedAt} then ${after}`);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });

  const img0 = await img();
  await page.click('[data-testid=fv-run]');
  await eventually(async () => assert.equal(Number(await act.getAttribute('data-steps')), 200), { timeout: 60_000 });
  const start = Number(await act.getAttribute('data-start'));
  const end = Number(await act.getAttribute('data-value'));
  assert.ok(end > start, `activation did not rise: ${start} -> ${end}`);
  assert.notEqual(await img(), img0, 'the image did not change');
  await screenshot(page, 'vision-feature-vis');
  assertClean(page);
});

test('integrated gradients on the page satisfy completeness; the sanity check changes the map', TIMEOUT, async (t) => {
  const page = await openLab(t, '/#/9.2.1?sample=0');
  const info = page.locator('[data-testid=saliency-info]');
  await eventually(async () => assert.ok(await info.isVisible()));
  const sum = Number(await info.getAttribute('data-sum'));
  const value = Number(await info.getAttribute('data-value'));
  const base = Number(await info.getAttribute('data-baseline'));
  assert.ok(Math.abs(sum - (value - base)) <= 0.01 * Math.abs(value - base), `IG sums to ${sum}, logit difference ${value - base}`);

  for (const m of ['gradient', 'gradient-x-input', 'smoothgrad', 'occlusion']) {
    await page.selectOption('[data-testid=saliency-method]', m);
    await eventually(async () => assert.ok(await info.isVisible(), `${m}: no saliency info`));
  }
  await page.selectOption('[data-testid=saliency-method]', 'gradient');
  await page.selectOption('[data-testid=sanity-select]', '1');
  await eventually(async () => assert.match(await info.textContent(), /Rank correlation with the trained model's map: -?\d/));
  assertClean(page);
});

test('feature-visualization controls go into the URL; a saliency job shows progress and can be cancelled', TIMEOUT, async (t) => {
  const page = await openLab(t, '/#/9.2.1?sample=0');
  const info = page.locator('[data-testid=saliency-info]');
  await eventually(async () => assert.ok(await info.isVisible()));
  await page.uncheck('[data-testid=fv-blur]');
  await page.selectOption('[data-testid=fv-target]', '3');
  await eventually(async () => {
    const q = new URL(page.url()).hash;
    assert.match(q, /fv-blur=0/);
    assert.match(q, /fv-class=3/);
  });
  // A class target has no precomputed picture; a run maximises the logit.
  await page.click('[data-testid=fv-run]');
  await eventually(async () => assert.ok(Number(await page.locator('[data-testid=fv-activation]').getAttribute('data-steps')) >= 5));
  // Stopped in the page if it still runs: its 200 steps take a fraction of a second, and a run could end between
  // the check above and a click sent after it (seen once in CI). Either way the button goes back to Visualize.
  await page.evaluate(() => document.querySelector('[data-testid=fv-stop]')?.click());
  await page.locator('[data-testid=fv-run]').waitFor();

  const before = await info.getAttribute('data-sum');
  // Both changes and the Cancel in one go inside the page: on a fast machine the job (a few slices) could end
  // between two Playwright round trips, leaving nothing to cancel. The page gets the thread between slices, so
  // polling with zero-delay timers finds the bar while the job still runs.
  const cancelled = await page.evaluate(async () => {
    const set = (id, v) => {
      const s = document.querySelector(`[data-testid=${id}]`);
      s.value = v;
      s.dispatchEvent(new Event('change', { bubbles: true }));
    };
    set('saliency-method', 'smoothgrad');
    set('sanity-select', '4');
    for (let i = 0; i < 2000; i++) {
      const b = document.querySelector('[data-testid=saliency-cancel]');
      if (b) { b.click(); return true; }
      await new Promise((r) => setTimeout(r, 0));
    }
    return false;
  });
  assert.ok(cancelled, 'the saliency job showed its Cancel button');
  await eventually(async () => assert.match(await page.locator('[data-testid=saliency-stale]').textContent(), /cancelled/));
  assert.equal(await info.getAttribute('data-sum'), before, 'the last map stays on screen');
  // The next change computes again, and the note goes.
  await page.selectOption('[data-testid=sanity-select]', '1');
  await eventually(async () => assert.match(await info.textContent(), /Rank correlation/), { timeout: 30_000 });
  assert.equal(await page.locator('[data-testid=saliency-stale]').count(), 0);
  assertClean(page);
});

test('a tampered sample in the URL says so and leaves the pad usable', TIMEOUT, async (t) => {
  const page = await openLab(t, '/#/9.2.1?sample=999999');
  await eventually(async () => assert.match(await page.locator('[data-testid=input-note]').textContent(), /no test image 999999/i));
  await stroke(page, [[0.5, 0.15], [0.5, 0.85]]);
  await eventually(async () => assert.equal(await prediction(page), 1));
  assertClean(page);
});

test('on a wide screen the pad and what the network reads share the top row, neither squeezed', TIMEOUT, async (t) => {
  const page = await openLab(t, '/#/9.2.1?sample=0');
  for (const [width, height] of [[1920, 1080], [1280, 720]]) {
    await page.setViewportSize({ width, height });
    await page.locator('[data-testid=prediction]').waitFor({ timeout: 60_000 });
    const pad = await page.locator('.vis-top > :first-child').boundingBox();
    const seen = await page.locator('.vis-top > :nth-child(2)').boundingBox();
    // Side by side (or stacked where the lab is narrow), and the panel with the answer at least 300 px wide.
    assert.ok(seen.width >= 300, `${width}px: what the network sees is ${Math.round(seen.width)}px wide`);
    assert.ok(pad.width >= 280, `${width}px: the pad's panel is ${Math.round(pad.width)}px wide`);
  }
  assertClean(page);
});
