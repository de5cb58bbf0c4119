// The app shell: every section opens directly and on reload, unknown routes, keyboard navigation,
// the full-width lab toggle, the draggable divider, and that nothing leaves 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  SECTIONS, PLANNED_LABS, launch, shutdown, openPage, assertClean, screenshot, eventually, settle, waitReady, waitRev,
} from './harness.mjs';

before(launch);
after(shutdown);

const TIMEOUT = { timeout: 120_000 };

async function heading(page) {
  return (await page.locator('[data-testid=chapter] h1').first().textContent({ timeout: 10_000 }))?.trim() ?? '';
}

/** data-section of every nav link marked aria-current=page. */
async function currentNav(page) {
  return page.$$eval('[data-testid=nav] a[aria-current=page]', (as) => as.map((a) => a.dataset.section));
}

async function assertSection(page, slug) {
  await eventually(async () => {
    const h = await heading(page);
    assert.ok(h.length > 0, `${slug}: [data-testid=chapter] h1 is empty`);
    assert.deepEqual(await currentNav(page), [slug], `${slug}: the current nav link`);
  });
  if (PLANNED_LABS.includes(slug)) {
    assert.ok(await page.locator('[data-testid=lab-planned]').isVisible(), `${slug}: [data-testid=lab-planned] is not visible`);
  } else {
    assert.equal(await page.locator('[data-testid=lab-planned]').count(), 0, `${slug}: has a built lab, yet shows lab-planned`);
  }
}

for (const slug of SECTIONS) {
  test(`section ${slug} opens directly and on reload`, TIMEOUT, async (t) => {
    const page = await openPage(`/#/${slug}`, { t });
    await assertSection(page, slug);
    await page.reload();
    await waitReady(page);
    await assertSection(page, slug);
    assert.equal(new URL(page.url()).hash.split('?')[0], `#/${slug}`);
    assertClean(page);
  });
}

test('references opens directly and on reload', TIMEOUT, async (t) => {
  const page = await openPage('/#/references', { t });
  for (let i = 0; i < 2; i++) {
    await eventually(async () => {
      assert.ok((await heading(page)).length > 0, 'references: [data-testid=chapter] h1 is empty');
      // References is a route outside the section list: if the nav links to it, that link is the current one;
      // no section link may claim to be current.
      const cur = await currentNav(page);
      assert.ok(cur.every((s) => s === 'references'), `references: nav marks ${JSON.stringify(cur)} as current`);
      const hasLink = (await page.locator('[data-testid=nav] a[data-section=references]').count()) > 0;
      if (hasLink) assert.deepEqual(cur, ['references']);
    });
    if (i === 0) {
      await page.reload();
      await waitReady(page);
    }
  }
  assertClean(page);
});

test('an unknown route shows not-found with a working link back', TIMEOUT, async (t) => {
  const page = await openPage('/#/does-not-exist', { t });
  const nf = page.locator('[data-testid=not-found]');
  await nf.waitFor({ state: 'visible' });
  const back = nf.locator('a[href="#/overview"]');
  assert.equal(await back.count(), 1, 'not-found has no a[href="#/overview"]');
  await back.click();
  await eventually(async () => {
    assert.equal(new URL(page.url()).hash, '#/overview');
    assert.deepEqual(await currentNav(page), ['overview']);
    assert.ok((await heading(page)).length > 0);
    assert.equal(await page.locator('[data-testid=not-found]').count(), 0, 'not-found still shown');
  });
  assertClean(page);
});

test('keyboard: n and ArrowRight go forward, p goes back', TIMEOUT, async (t) => {
  const page = await openPage('/#/overview', { t });
  await assertSection(page, 'overview');
  const go = async (key, slug) => {
    await page.keyboard.press(key);
    await eventually(async () => {
      assert.equal(new URL(page.url()).hash.split('?')[0], `#/${slug}`, `after pressing ${key}`);
      assert.deepEqual(await currentNav(page), [slug], `nav after pressing ${key}`);
    });
  };
  await go('n', '9.1');
  await go('p', 'overview');
  await go('ArrowRight', '9.1');
  await go('p', 'overview');
  assertClean(page);
});

test('the full-width button hides the chapter pane and brings it back', TIMEOUT, async (t) => {
  const page = await openPage('/#/attention', { t });
  const chapter = page.locator('[data-testid=chapter]');
  const full = page.locator('[data-testid=lab-full]');
  assert.ok(await chapter.isVisible(), 'chapter pane not visible at first');
  await full.click();
  await eventually(async () => assert.equal(await chapter.isVisible(), false, 'chapter pane still visible after lab-full'));
  // The lab takes the whole width under the top bar (it once fell into the hidden chapter's zero-width column).
  const width = (await page.locator('[data-testid=lab]').boundingBox()).width;
  assert.ok(width >= 1200, `the lab is ${width}px wide at 1280px`);
  await full.click();
  await eventually(async () => assert.ok(await chapter.isVisible(), 'chapter pane did not come back'));
  assertClean(page);
});

test('dragging the divider by +200px widens the chapter pane', TIMEOUT, async (t) => {
  const page = await openPage('/#/9.1', { t });
  const chapter = page.locator('[data-testid=chapter]');
  const divider = page.locator('[data-testid=divider]');
  const w0 = (await chapter.boundingBox()).width;
  const box = await divider.boundingBox();
  assert.ok(box, 'divider has no box (not visible?)');
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + 100, y, { steps: 5 });
  await page.mouse.move(x + 200, y, { steps: 5 });
  await page.mouse.up();
  await settle(page);
  const w1 = (await chapter.boundingBox()).width;
  assert.ok(w1 > w0 + 50, `chapter pane width ${w0}px -> ${w1}px after dragging the divider +200px`);
  assertClean(page);
});

test('screenshots: overview, 9.1, attention', TIMEOUT, async (t) => {
  for (const slug of ['overview', '9.1', 'attention']) {
    const page = await openPage(`/#/${slug}`, { t });
    if (slug === 'attention') {
      await waitRev(page, 1);
    }
    await screenshot(page, `shell-${slug}`);
    assertClean(page);
  }
});

test('a panic shows the error overlay with a reload button, not a white page', TIMEOUT, async (t) => {
  const page = await openPage('/#/overview', { t });
  await page.waitForFunction(() => typeof window.wasmBindings?.glassbox_test_panic === 'function');
  const threw = await page.evaluate(() => {
    try {
      window.wasmBindings.glassbox_test_panic();
      return false;
    } catch {
      return true;
    }
  });
  assert.ok(threw, 'the deliberate panic did not surface as an exception');
  const overlay = page.locator('[data-testid=fatal-error]');
  await overlay.waitFor({ state: 'visible' });
  assert.match(await overlay.textContent(), /deliberate panic/);
  assert.equal(await overlay.locator('button', { hasText: 'Reload' }).count(), 1);
  await screenshot(page, 'panic-overlay');
  // The only problems allowed are the panic's own reports.
  assertClean(page, { allow: [/panicked|deliberate panic|unreachable/i] });
});
