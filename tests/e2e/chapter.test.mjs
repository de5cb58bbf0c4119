// The chapter's text (src/content.rs): one file of the built site, `chapter-<hash>.json`, fetched once when the
// app starts (preloaded by index.html beside the .wasm) and kept for the visit. While it comes the chapter pane
// says so; if it is missing or broken the pane says what is wrong and offers Retry, and the lab works regardless.
// The .wasm itself carries none of the text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DIST, SECTIONS, VIEWPORTS, launch, shutdown, openPage, assertClean, screenshot, waitRev } from './harness.mjs';

before(launch);
after(shutdown);

const TIMEOUT = { timeout: 180_000 };
const CHAPTER = '**/chapter-*.json';
const heading = (page) => page.locator('[data-testid=chapter] h1').first();

/** A page in a fresh context whose requests for the chapter's text `answer` handles before the page opens. */
async function openWithChapter(t, url, answer) {
  const { browser } = await launch();
  const context = await browser.newContext({ viewport: VIEWPORTS[0], deviceScaleFactor: 1, serviceWorkers: 'block' });
  await context.route(CHAPTER, answer);
  const page = await openPage(url, { t, context });
  return { page, context };
}

test('the build holds the text in one file, and the .wasm none of it', TIMEOUT, () => {
  const files = fs.readdirSync(DIST).filter((f) => /^chapter-[0-9a-f]{16}\.json$/.test(f));
  assert.equal(files.length, 1, `one chapter file in dist/: ${files}`);
  const text = JSON.parse(fs.readFileSync(path.join(DIST, files[0]), 'utf8'));
  assert.deepEqual(Object.keys(text.sections).sort(), [...SECTIONS].sort());
  assert.match(text.references, /<li id="ref-/);
  const index = fs.readFileSync(path.join(DIST, 'index.html'), 'utf8');
  assert.ok(index.includes(`<link rel="preload" href="${files[0]}" as="fetch" crossorigin`), 'index.html preloads it');
  // A sentence of 9.1 and a reference's id: in the file, not in the app's code.
  const wasm = fs.readdirSync(DIST).find((f) => /^glassbox-[0-9a-f]+_bg\.wasm$/.test(f));
  const code = fs.readFileSync(path.join(DIST, wasm));
  for (const s of ['reverse-engineer the algorithm', 'id="ref-olsson2022"']) {
    assert.ok(fs.readFileSync(path.join(DIST, files[0]), 'utf8').includes(s.replace(/"/g, '\\"')), `the file has “${s}”`);
    assert.equal(code.indexOf(s), -1, `the .wasm still carries “${s}”`);
  }
});

test('the text is fetched once, from the preload, and every later page shows it at once', TIMEOUT, async (t) => {
  const file = fs.readdirSync(DIST).find((f) => /^chapter-[0-9a-f]{16}\.json$/.test(f));
  const text = JSON.parse(fs.readFileSync(path.join(DIST, file), 'utf8'));
  const title = (html) => html.match(/<h1>(.*?)<\/h1>/)[1].replace(/<[^>]*>/g, '').replace(/&amp;/g, '&');
  const requests = [];
  const { page } = await openWithChapter(t, '/#/9.1', (route) => {
    requests.push(route.request().url());
    return route.continue();
  });
  assert.equal((await heading(page).textContent()).trim(), title(text.sections['9.1']));
  for (const slug of ['9.2.1', 'attention', '9.5', 'references', '9.1']) {
    await page.evaluate((s) => { location.hash = `#/${s}`; }, slug);
    await page.locator(`[data-testid=nav] a[aria-current=page][data-section="${slug}"]`).waitFor();
    // The route has changed: its text is there in the same update, with no wait.
    assert.equal(await page.locator('[data-testid=chapter-loading]').count(), 0, `${slug}: no second wait`);
    const want = title(slug === 'references' ? text.references : text.sections[slug]);
    assert.equal((await heading(page).textContent()).trim(), want, `${slug}: its own text`);
    if (slug === 'references') assert.equal(await page.locator('[data-testid=chapter] #ref-olsson2022').count(), 1);
  }
  assert.equal(requests.length, 1, `one request for the text: ${requests}`);
  assertClean(page);
});

test('while the text comes, a quiet line holds its place, and the lab does not wait for it', TIMEOUT, async (t) => {
  let release;
  const released = new Promise((r) => { release = r; });
  const { page } = await openWithChapter(t, '/#/attention', async (route) => {
    await released;
    await route.continue();
  });
  const loading = page.locator('[data-testid=chapter-loading]');
  await loading.waitFor();
  assert.match(await loading.textContent(), /Loading the chapter/);
  assert.equal(await loading.getAttribute('role'), 'status');
  await waitRev(page, 1);
  // Its fade-in (a quick load shows no flash) has ended before the picture.
  await page.waitForFunction(() => getComputedStyle(document.querySelector('[data-testid=chapter-loading]')).opacity === '1');
  await screenshot(page, 'chapter-loading');
  release();
  await heading(page).waitFor();
  assert.equal(await loading.count(), 0);
  assertClean(page);
});

for (const c of [
  { name: 'missing', fulfil: { status: 404, body: 'not found' }, says: /chapter-[0-9a-f]{16}\.json.*HTTP 404/ },
  { name: 'broken', fulfil: { status: 200, contentType: 'text/html', body: '<!doctype html><p>Sign in to the school network</p>' }, says: /chapter-[0-9a-f]{16}\.json.*not valid JSON/ },
  { name: 'cut short', fulfil: { status: 200, contentType: 'application/json', body: '{"sections": {"overview": "<h1>Ov' }, says: /not valid JSON/ },
]) {
  test(`a ${c.name} text file: the pane says what is wrong, the lab runs, and Retry brings the text`, TIMEOUT, async (t) => {
    let broken = true;
    const { page } = await openWithChapter(t, '/#/attention', (route) => (broken ? route.fulfill(c.fulfil) : route.continue()));
    const error = page.locator('[data-testid=chapter-error]');
    await error.waitFor();
    assert.match(await error.textContent(), c.says);
    assert.equal(await error.getAttribute('role'), 'alert');
    // The lab is untouched: its model loads and it computes.
    await waitRev(page, 1);
    assert.equal(await page.locator('[data-testid=fatal-error], [data-testid=boot-failed]').count(), 0);
    if (c.name === 'missing') await screenshot(page, 'chapter-error');
    // Every page that shows the text says the same, with Retry; the lab keeps working.
    await page.evaluate(() => { location.hash = '#/references'; });
    await page.locator('[data-testid=chapter-error]').waitFor();
    await page.evaluate(() => { location.hash = '#/attention'; });
    await waitRev(page, 1);
    broken = false;
    await page.click('[data-testid=chapter-retry]');
    assert.match(await heading(page).textContent(), /attention|induction/i);
    assert.equal(await error.count(), 0);
    // Kept from now on: the references page opens with its text at once.
    await page.evaluate(() => { location.hash = '#/references'; });
    assert.match(await heading(page).textContent(), /references/i);
    assertClean(page, { allow: [/404/, /Failed to load resource/] });
  });
}
