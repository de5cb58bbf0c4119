// Small screens (issue #15 item 6): a tablet in portrait (768x1024) and a phone (390x844). The section list is a
// drawer behind a Contents button, the chapter and the lab are two panes with a switch, and nothing makes the page
// or a pane scroll sideways: what is wider than the pane (the logit-lens grid) scrolls in its own box.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { SECTIONS, SCREENSHOTS, launch, shutdown, openPage, assertClean, settle, eventually } from './harness.mjs';

before(launch);
after(shutdown);

const TIMEOUT = { timeout: 180_000 };
const SMALL = [
  { width: 768, height: 1024, name: 'tablet' },
  { width: 390, height: 844, name: 'phone' },
];

/** How far the page and the pane on show reach past their width (0 when nothing scrolls sideways). */
async function sidewaysOverflow(page) {
  return page.evaluate(() => {
    const de = document.documentElement;
    const out = { page: de.scrollWidth - de.clientWidth };
    for (const sel of ['.chapter', '.lab']) {
      const e = document.querySelector(sel);
      if (e && e.offsetParent !== null) out[sel] = e.scrollWidth - e.clientWidth;
    }
    return out;
  });
}

/**
 * The lab's first result, where the lab computes one by itself (`lab-status` data-rev ≥ 1). A lab that waits for a
 * button (or a section whose lab pane is the chapter map) has shown all it shows by itself once nothing in the
 * lab pane has changed for `QUIET_MS` with nothing loading or in progress. Up to 6 s either way.
 */
const QUIET_MS = 1_000;
async function firstResultIfAny(page) {
  await page
    .waitForFunction((quietMs) => {
      if (Number(document.querySelector('[data-testid=lab-status][data-rev]')?.dataset.rev) >= 1) return true;
      const lab = document.querySelector('[data-testid=lab]');
      if (!lab) return false;
      if (window.labQuiet?.lab !== lab) {
        const q = { lab, since: performance.now() };
        new MutationObserver(() => { q.since = performance.now(); })
          .observe(lab, { subtree: true, childList: true, attributes: true, characterData: true });
        window.labQuiet = q;
      }
      if (lab.querySelector('.loading, progress')) return false;
      return performance.now() - window.labQuiet.since >= quietMs;
    }, QUIET_MS, { timeout: 6_000, polling: 100 })
    .catch(() => {});
}

/** The chapter shows, with the lab behind its switch and the section list tucked away, and neither the page nor
 *  the chapter scrolls sideways. */
async function assertChapterFits(page, slug, vp) {
  const at = `${slug} at ${vp.name} ${vp.width}x${vp.height}`;
  assert.ok(await page.locator('[data-testid=chapter]').isVisible(), `${at}: the chapter shows first`);
  assert.equal(await page.locator('[data-testid=lab]').isVisible(), false, `${at}: the lab waits behind its switch`);
  assert.equal(await page.locator('[data-testid=nav]').isVisible(), false, `${at}: the section list is a closed drawer`);
  assert.deepEqual(await sidewaysOverflow(page), { page: 0, '.chapter': 0 }, `${at}: the chapter scrolls sideways`);
}

/** The lab shows alone, and neither the page nor the lab scrolls sideways. */
async function assertLabFits(page, slug, vp) {
  const at = `${slug} at ${vp.name} ${vp.width}x${vp.height}`;
  assert.ok(await page.locator('[data-testid=lab]').isVisible(), `${at}: the lab shows after its switch`);
  assert.equal(await page.locator('[data-testid=chapter]').isVisible(), false, `${at}: one pane at a time`);
  assert.deepEqual(await sidewaysOverflow(page), { page: 0, '.lab': 0 }, `${at}: the lab scrolls sideways`);
}

const SCREENSHOT_LABS = ['overview', 'attention', '9.2.1', '9.2.2', '9.3.1', '9.5'];

// Both sizes in one page per section: the layout at a size is the stylesheet's alone (no code reads the
// viewport's width), so the page is resized between them, each time before and after the lab's switch.
test(`tablet (768x1024) and phone (390x844): every section's chapter and lab fit the width`, TIMEOUT, async (t) => {
  const [tablet, phone] = SMALL;
  const size = (vp) => ({ width: vp.width, height: vp.height });
  const resize = async (page, vp) => {
    await page.setViewportSize(size(vp));
    await settle(page);
  };
  for (const slug of SECTIONS) {
    const page = await openPage(`/#/${slug}`, { t, viewport: size(tablet) });
    // A link without lab settings opens on the chapter; the section list is tucked away.
    await assertChapterFits(page, slug, tablet);
    await resize(page, phone);
    await assertChapterFits(page, slug, phone);
    await page.click('[data-testid=show-lab]');
    await firstResultIfAny(page);
    await settle(page);
    await assertLabFits(page, slug, phone);
    if (SCREENSHOT_LABS.includes(slug)) {
      await page.screenshot({ path: path.join(SCREENSHOTS, `small-${slug}-${phone.width}x${phone.height}-lab.png`) });
    }
    await resize(page, tablet);
    await assertLabFits(page, slug, tablet);
    if (SCREENSHOT_LABS.includes(slug)) {
      await page.screenshot({ path: path.join(SCREENSHOTS, `small-${slug}-${tablet.width}x${tablet.height}-lab.png`) });
    }
    // The switch works at this size too.
    await page.click('[data-testid=show-chapter]');
    assert.ok(await page.locator('[data-testid=chapter]').isVisible(), `${slug} at tablet: the switch goes back to the chapter`);
    await page.click('[data-testid=show-lab]');
    assert.ok(await page.locator('[data-testid=lab]').isVisible(), `${slug} at tablet: the switch goes to the lab`);
    assertClean(page);
    await page.context().close();
  }
});

for (const vp of SMALL) {
  test(`${vp.name}: the Contents drawer opens, navigates and closes`, TIMEOUT, async (t) => {
    const page = await openPage('/#/9.2.2', { t, viewport: { width: vp.width, height: vp.height } });
    const toggle = page.locator('[data-testid=menu-toggle]');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    await toggle.click();
    await eventually(async () => assert.ok(await page.locator('[data-testid=nav]').isVisible(), 'the drawer opened'));
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    await page.waitForTimeout(300); // the drawer's slide (160 ms) is over
    await page.screenshot({ path: path.join(SCREENSHOTS, `small-drawer-${vp.width}x${vp.height}.png`) });
    // Escape closes it, and so does the backdrop.
    await page.keyboard.press('Escape');
    await eventually(async () => assert.equal(await page.locator('[data-testid=nav]').isVisible(), false));
    await toggle.click();
    await page.locator('[data-testid=nav-backdrop]').click({ position: { x: vp.width - 10, y: 200 } });
    await eventually(async () => assert.equal(await page.locator('[data-testid=nav]').isVisible(), false));
    // Following a link goes there and closes the drawer.
    await toggle.click();
    await page.click('[data-testid=nav] a[data-section="9.3.1"]');
    await eventually(async () => {
      assert.match(page.url(), /#\/9\.3\.1/);
      assert.equal(await page.locator('[data-testid=nav]').isVisible(), false, 'the drawer closed after navigating');
    });
    assertClean(page);
  });

  test(`${vp.name}: a link with lab settings opens on the lab, and the switch returns to the chapter`, TIMEOUT, async (t) => {
    const page = await openPage('/#/attention?layer=1&head=1', { t, viewport: { width: vp.width, height: vp.height } });
    assert.ok(await page.locator('[data-testid=lab]').isVisible(), 'the lab shows first for a link that sets it');
    assert.equal(await page.locator('[data-testid=show-lab]').getAttribute('aria-pressed'), 'true');
    await page.click('[data-testid=show-chapter]');
    assert.ok(await page.locator('[data-testid=chapter]').isVisible());
    assert.equal(await page.locator('[data-testid=show-chapter]').getAttribute('aria-pressed'), 'true');
    assertClean(page);
  });
}

test('tablet: presenter mode shows the lab alone, with its step bar', TIMEOUT, async (t) => {
  const page = await openPage('/#/attention?present=1&step=1', { t, viewport: { width: 768, height: 1024 } });
  await page.locator('[data-testid=presenter-bar]').waitFor();
  assert.ok(await page.locator('[data-testid=lab]').isVisible(), 'the lab shows');
  assert.equal(await page.locator('[data-testid=pane-switch]').isVisible(), false, 'no pane switch while presenting');
  assert.equal(await page.locator('[data-testid=chapter]').isVisible(), false, 'no chapter while presenting');
  assert.deepEqual(await sidewaysOverflow(page), { page: 0, '.lab': 0 });
  await page.screenshot({ path: path.join(SCREENSHOTS, 'small-present-768x1024.png') });
  assertClean(page);
});
