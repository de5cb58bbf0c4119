// Presenter mode (issue #15): a link opens it at a step; the keys a clicker sends step through the lab's steps
// and on into the next section; the lab alone in large type; a laser-pointer dot; Esc leaves with the lab's
// state kept. The shell's keys never reach the lab (no "not a setting of this lab" message).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { shutdown, openPage, assertClean, screenshot, eventually, waitRev } from './harness.mjs';

after(shutdown);
const TIMEOUT = { timeout: 240_000 };

const hashOf = (page) => page.evaluate(() => decodeURIComponent(location.hash));
const bar = (page) => page.locator('[data-testid=presenter-bar]');

test('presenter mode: a link opens a step, keys step through the lab and on, Esc leaves', TIMEOUT, async (t) => {
  const page = await openPage('/#/attention?present=1&step=2', { t });
  await bar(page).waitFor();
  await waitRev(page, 1);
  assert.equal(await bar(page).getAttribute('data-step'), '2');
  assert.match(await bar(page).textContent(), /Step 2 of 4: A previous-token head/);
  assert.ok(await page.locator('.app.presenter').count(), 'presenter class on');
  assert.equal(await page.locator('[data-testid=chapter]').isVisible(), false, 'the chapter pane is hidden');
  assert.equal(await page.locator('[data-testid=url-error]').count(), 0, 'no URL problem: present and step are the shell\u2019s');
  const width = (await page.locator('[data-testid=lab]').boundingBox()).width;
  assert.ok(width >= 1200, `the lab takes the width: ${width}px at 1280px`);
  const size = await page.locator('[data-testid=lab]').evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(size >= 22, `large type: ${size}px`);
  // The lab's own state came from the step: layer 0, head 1 selected.
  assert.match(await hashOf(page), /layer=0&head=1/);

  // A clicker's Page Down: the next step, with its state; → from the last step opens the next section at its first.
  await page.keyboard.press('PageDown');
  await eventually(async () => assert.equal(await bar(page).getAttribute('data-step'), '3'));
  assert.match(await hashOf(page), /layer=1&head=1&present=1&step=3/);
  await page.keyboard.press('ArrowRight');
  await eventually(async () => assert.equal(await bar(page).getAttribute('data-step'), '4'));
  assert.match(await hashOf(page), /model=ioi/);
  await page.keyboard.press('ArrowRight');
  await eventually(async () => assert.match(await hashOf(page), /^#\/9\.2\.2\?present=1&step=1$/));
  // Back from a section's first step: the previous section's last step, as slides go.
  await page.keyboard.press('ArrowLeft');
  await eventually(async () => assert.equal(await bar(page).getAttribute('data-step'), '4'));
  assert.match(await hashOf(page), /^#\/attention\?model=ioi&.*&present=1&step=4$/);

  // The laser dot follows the pointer.
  await page.mouse.move(400, 300);
  await page.mouse.move(420, 310);
  const laser = page.locator('[data-testid=laser]');
  await laser.waitFor();
  // The dot moves on the next animation frame, so a loaded machine may still show the first position: wait.
  await eventually(async () => {
    const box = await laser.boundingBox();
    assert.ok(Math.abs(box.x + box.width / 2 - 420) < 3 && Math.abs(box.y + box.height / 2 - 310) < 3, JSON.stringify(box));
  });

  // The buttons do the same as the keys; Esc leaves and the lab keeps its state.
  await page.click('[data-testid=present-prev]');
  await eventually(async () => assert.equal(await bar(page).getAttribute('data-step'), '3'));
  await page.click('[data-testid=present-prev]');
  await eventually(async () => assert.equal(await bar(page).getAttribute('data-step'), '2'));
  await screenshot(page, 'presenter-attention');
  await page.keyboard.press('Escape');
  await eventually(async () => assert.equal(await page.locator('.app.presenter').count(), 0));
  const left = await hashOf(page);
  assert.match(left, /layer=0&head=1/);
  assert.doesNotMatch(left, /present|step=/);
  assert.ok(await page.locator('[data-testid=chapter]').isVisible());
  // s toggles it back on, keeping the lab's state.
  await page.keyboard.press('s');
  await eventually(async () => assert.match(await hashOf(page), /layer=0&head=1&present=1$/));
  assertClean(page);
});

test('presenter mode: a lab that rewrites its URL keeps the presenter keys; the superposition steps', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.2.4?present=1&step=2', { t });
  await bar(page).waitFor();
  assert.match(await bar(page).textContent(), /Step 2 of 3: Sparsity 0\.7/);
  await page.locator('[data-testid=sparsity]').waitFor();
  assert.equal(await page.locator('[data-testid=sparsity]').inputValue(), '0.7');
  // Moving the slider rewrites the lab's URL: the presenter keys ride along.
  await page.locator('[data-testid=sparsity]').fill('0.5');
  await eventually(async () => assert.match(await hashOf(page), /s=0\.5.*present=1&step=2/));
  // (A focused slider takes Page Down itself, as it should: the presenter clicks away first.)
  await page.locator('[data-testid=sparsity]').blur();
  await page.keyboard.press('PageDown');
  await eventually(async () => assert.equal(await page.locator('[data-testid=sparsity]').inputValue(), '0.9'));
  await screenshot(page, 'presenter-superposition');
  assertClean(page);
});
