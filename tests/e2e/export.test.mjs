// Share and export in every live lab: Copy link puts the page's URL on the clipboard (or shows it, selected, where
// the page may not write there); Numbers (JSON) parses and carries `meta` beside the numbers; every chart's PNG
// decodes, its SVG parses standalone with the metadata in it, its CSV has the metadata as `#` lines, one
// labelled header and the numbers its "Show as a table" shows; canvases export a PNG (and a CSV where they have
// numbers); tables export a CSV with the header on the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  launch, shutdown, openPage, assertClean, eventually, waitRev, labRev, screenshot, VIEWPORTS, LIVE_LABS,
} from './harness.mjs';

const TIMEOUT = { timeout: 420_000 };
before(launch);
after(shutdown);

/** Clicks `button` and returns the file it downloads: its suggested name and bytes. Headless Chromium drops
 *  one download in every eleven started in quick succession (measured here: the page's link is clicked, no
 *  download follows; spacing the clicks a second apart avoids it), so a click that brought none is made once more.
 *  A button that never downloads still fails. */
async function download(page, button) {
  for (let attempt = 0; ; attempt++) {
    try {
      const [dl] = await Promise.all([page.waitForEvent('download', { timeout: attempt ? 30_000 : 10_000 }), button.click()]);
      return { name: dl.suggestedFilename(), buf: fs.readFileSync(await dl.path()) };
    } catch (e) {
      if (attempt > 0 || e.name !== 'TimeoutError') throw e;
    }
  }
}

/** A CSV as pandas reads it with comment="#": the `# key: value` lines as meta, then the records. */
function parseCsv(text) {
  const meta = {};
  const body = [];
  for (const line of text.split('\n')) {
    const m = /^# ([a-z]+): (.*)$/.exec(line);
    if (m) meta[m[1]] = m[2];
    else if (line.length) body.push(line);
  }
  const rows = [];
  for (const line of body) {
    const cells = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (ch === '"') quoted = false; else cur += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ',') { cells.push(cur); cur = ''; } else cur += ch;
    }
    cells.push(cur);
    rows.push(cells);
  }
  return { meta, header: rows[0], rows: rows.slice(1) };
}

function checkMeta(meta, slug) {
  assert.match(meta.source, /^Glassbox \d+\.\d+\.\d+/, `source: ${meta.source}`);
  assert.equal(meta.section, slug);
  assert.ok(meta.model, 'a model line');
  assert.ok(meta.settings, 'a settings line');
  assert.match(meta.link, new RegExp(`#/${slug.replace(/\./g, '\\.')}`));
  assert.match(meta.exported, /^\d{4}-\d\d-\d\dT/);
}

/** A number as shown on the page ("−0.5", "71%"), or null for text. */
function shownNumber(s) {
  const t = s.trim().replace(/−/g, '-').replace(/,/g, '');
  if (!/^-?\d+(\.\d+)?%?$/.test(t)) return null;
  return t.endsWith('%') ? Number(t.slice(0, -1)) / 100 : Number(t);
}

async function checkPng(page, buf) {
  assert.equal(buf.subarray(1, 4).toString('latin1'), 'PNG', 'a PNG signature');
  const [w, h] = [buf.readUInt32BE(16), buf.readUInt32BE(20)];
  assert.ok(w > 0 && h > 0, `IHDR ${w}x${h}`);
  const decoded = await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bmp = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    // Not a blank image: some pixel of the top half is not white.
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const cx = c.getContext('2d');
    cx.drawImage(bmp, 0, 0);
    const d = cx.getImageData(0, 0, bmp.width, Math.ceil(bmp.height / 2)).data;
    let ink = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) ink++;
    return { w: bmp.width, h: bmp.height, ink };
  }, buf.toString('base64'));
  assert.deepEqual([decoded.w, decoded.h], [w, h]);
  assert.ok(decoded.ink > 0, 'the PNG shows something');
}

async function checkSvg(page, text, slug) {
  const r = await page.evaluate((t) => {
    const d = new DOMParser().parseFromString(t, 'image/svg+xml');
    const root = d.documentElement;
    return {
      error: d.querySelector('parsererror')?.textContent ?? null,
      name: root.localName,
      ns: root.namespaceURI,
      width: Number(root.getAttribute('width')),
      meta: d.querySelector('metadata')?.textContent ?? '',
      marks: d.querySelectorAll('rect, path, text').length,
      styled: d.querySelectorAll('[style*="fill"]').length,
      caption: [...d.querySelectorAll('text')].map((x) => x.textContent).join(' | '),
    };
  }, text);
  assert.equal(r.error, null, 'the SVG parses');
  assert.equal(r.name, 'svg');
  assert.equal(r.ns, 'http://www.w3.org/2000/svg');
  assert.ok(r.width > 0, 'a width of its own');
  assert.ok(r.marks > 3 && r.styled > 0, `marks ${r.marks}, styled ${r.styled}`);
  const meta = JSON.parse(r.meta);
  assert.equal(meta.section, slug);
  assert.ok(meta.version && meta.model, JSON.stringify(meta));
  assert.match(r.caption, /Glassbox \d+\.\d+\.\d+ \(build (?:[0-9a-f]+|unknown)\) · section /, 'a visible caption');
}

/** The CSV against the table the page shows: the same header, and every number shown is the CSV's, rounded. */
async function checkCsvAgainstTable(csv, table, slug) {
  const { meta, header, rows } = parseCsv(csv);
  checkMeta(meta, slug);
  const shown = await table.evaluate((t) => ({
    head: [...t.querySelectorAll('thead th')].map((th) => th.textContent.trim()),
    rows: [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.querySelectorAll('th, td')].map((c) => c.textContent)),
  }));
  assert.deepEqual(header, shown.head, 'the CSV has the table\'s header');
  assert.equal(rows.length, shown.rows.length, 'a CSV row per table row');
  let compared = 0;
  shown.rows.forEach((r, i) => r.forEach((cell, j) => {
    const n = shownNumber(cell);
    if (n === null) return;
    const dec = (cell.trim().replace('%', '').split('.')[1] ?? '').length + (cell.includes('%') ? 2 : 0);
    const v = Number(rows[i][j]);
    assert.ok(Math.abs(v - n) <= 0.5 * 10 ** -dec + 1e-9, `row ${i} col ${j}: shown ${cell}, CSV ${rows[i][j]}`);
    compared++;
  }));
  return compared;
}

/** The elements matching `selector` that are on screen now, each tagged so that a locator keeps finding the same
 *  one (a chart appearing meanwhile in a hidden tab would shift an index). */
async function pinVisible(page, selector, tag) {
  const n = await page.evaluate(([sel, t]) => {
    let k = 0;
    for (const el of document.querySelectorAll(sel)) if (el.checkVisibility()) el.dataset[t] = String(k++);
    return k;
  }, [selector, tag]);
  const attr = tag.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
  return Array.from({ length: n }, (_, k) => page.locator(`[data-${attr}="${k}"]`));
}

/** Every export of every chart box on the page (PNG, SVG, CSV, "Show as a table"). Returns how many. */
async function exerciseCharts(page, slug) {
  // A chart in a closed part of the lab (a collapsed panel, another tab) is not on screen to export.
  const boxes = await pinVisible(page, '[data-testid=chart-box]', 'exportChart');
  const n = boxes.length;
  for (const [i, box] of boxes.entries()) {
    await box.scrollIntoViewIfNeeded();
    if (await box.locator('[data-testid=export-png]').count()) {
      const png = await download(page, box.locator('[data-testid=export-png]'));
      assert.match(png.name, new RegExp(`^glassbox-${slug.replace(/\./g, '\\.')}-.+\\.png$`));
      await checkPng(page, png.buf);
      const svg = await download(page, box.locator('[data-testid=export-svg]'));
      assert.match(svg.name, /\.svg$/);
      await checkSvg(page, svg.buf.toString('utf8'), slug);
    }
    const csv = await download(page, box.locator('[data-testid=export-csv]'));
    assert.match(csv.name, /\.csv$/);
    await box.locator('[data-testid=chart-table] > summary').click();
    const table = box.locator('[data-testid=chart-table] table');
    await table.waitFor();
    assert.ok(await table.locator('caption').textContent(), 'the table has a caption');
    assert.ok(await table.locator('th[scope=col]').count() >= 2, 'column headers');
    const compared = await checkCsvAgainstTable(csv.buf.toString('utf8'), table, slug);
    assert.ok(compared > 0, `chart ${i}: some numbers compared`);
  }
  return n;
}

/** Every canvas export (one map, or a sheet of small pictures): its PNG, its SVG (the pixels as rectangles, not
 *  an embedded bitmap), and its CSV where it has one. Returns how many, and how many had a CSV. */
async function exerciseCanvases(page, slug) {
  const bars = await pinVisible(page, '[data-testid=canvas-export]', 'exportCanvas');
  const n = bars.length;
  let withCsv = 0;
  for (const bar of bars) {
    await bar.scrollIntoViewIfNeeded();
    const png = await download(page, bar.locator('[data-testid=export-png]'));
    assert.match(png.name, /\.png$/);
    await checkPng(page, png.buf);
    const svg = (await download(page, bar.locator('[data-testid=export-svg]'))).buf.toString('utf8');
    await checkSvg(page, svg, slug);
    assert.ok(!svg.includes('<image'), 'drawn as rectangles, not an embedded bitmap');
    if (await bar.locator('[data-testid=export-csv]').count()) {
      withCsv++;
      const { meta, header, rows } = parseCsv((await download(page, bar.locator('[data-testid=export-csv]'))).buf.toString('utf8'));
      checkMeta(meta, slug);
      assert.ok(header.length >= 2 && rows.length >= 1, 'a labelled matrix');
      assert.ok(rows.every((r) => r.slice(1).every((v) => Number.isFinite(Number(v)))), 'numbers after the row label');
    }
  }
  return { n, withCsv };
}

/** Every table's exports: its CSV (the header the page shows, a row per body row), and for a heatmap drawn as a
 *  table its PNG and SVG. */
async function exerciseTables(page, slug) {
  const bars = await pinVisible(page, '[data-testid=table-export]', 'exportTable');
  const n = bars.length;
  for (const [i, bar] of bars.entries()) {
    if (await bar.locator('[data-testid=export-png]').count()) {
      await checkPng(page, (await download(page, bar.locator('[data-testid=export-png]'))).buf);
      await checkSvg(page, (await download(page, bar.locator('[data-testid=export-svg]'))).buf.toString('utf8'), slug);
    }
    if (!(await bar.locator('[data-testid=export-csv]').count())) continue;
    const csv = (await download(page, bar.locator('[data-testid=export-csv]'))).buf.toString('utf8');
    const { meta, header, rows } = parseCsv(csv);
    checkMeta(meta, slug);
    // The table just before the buttons.
    const shown = await bar.evaluate((b) => {
      let el = b.previousElementSibling;
      while (el && el.tagName !== 'TABLE' && !el.querySelector('table')) el = el.previousElementSibling;
      const t = el?.tagName === 'TABLE' ? el : el?.querySelector('table');
      const headRow = t.querySelector('thead tr') ?? t.querySelector('tr');
      return {
        head: [...headRow.querySelectorAll('th, td')].map((c) => c.textContent.trim()),
        bodyRows: t.querySelectorAll('thead').length ? t.querySelectorAll('tbody tr').length : t.querySelectorAll('tr').length - 1,
      };
    });
    assert.deepEqual(header, shown.head, `table ${i}: the header on the page`);
    assert.equal(rows.length, shown.bodyRows, `table ${i}: a row per row`);
  }
  return n;
}

/** Copy link (clipboard granted), then the fallback where there is no clipboard; then the lab's JSON. */
async function exerciseLabTools(page, slug) {
  // The lab writes its URL a moment after a change; wait for it to settle.
  await page.waitForTimeout(400);
  await page.click('[data-testid=copy-link]');
  await eventually(async () => assert.equal(await page.locator('[data-testid=export-status]').textContent(), 'Link copied'));
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), page.url());
  assert.equal(await page.locator('[data-testid=export-status]').getAttribute('aria-live'), 'polite');

  await page.evaluate(() => Object.defineProperty(navigator, 'clipboard', { value: undefined, configurable: true }));
  await page.click('[data-testid=copy-link]');
  const fallback = page.locator('[data-testid=copy-fallback]');
  await fallback.waitFor();
  assert.equal(await fallback.inputValue(), page.url());
  await eventually(async () => assert.ok(await fallback.evaluate((i) => document.activeElement === i && i.selectionEnd === i.value.length)));

  const json = await download(page, page.locator('[data-testid=export-json]'));
  assert.equal(json.name, `glassbox-${slug}-numbers.json`);
  const doc = JSON.parse(json.buf.toString('utf8'));
  checkMeta(doc.meta, slug);
  assert.match(doc.meta.version, /^\d+\.\d+\.\d+/);
  assert.ok(Array.isArray(doc.charts) && Array.isArray(doc.tables));
  for (const t of [...doc.charts, ...doc.tables]) {
    assert.ok(Array.isArray(t.columns) && Array.isArray(t.rows), JSON.stringify(t).slice(0, 200));
    for (const r of t.rows) assert.equal(r.length <= t.columns.length || t.columns.length === 0, true);
  }
  return doc;
}

/** A context whose page may read and write the clipboard. */
async function clipboardContext(browser) {
  return browser.newContext({
    viewport: VIEWPORTS[0], deviceScaleFactor: 1, serviceWorkers: 'block',
    permissions: ['clipboard-read', 'clipboard-write'],
  });
}

/** Stops the toy model's training and waits until it has (no reply redraws the charts mid-export). */
async function stopTraining(page) {
  await page.locator('[data-testid=stop]').first().evaluate((b) => { if (!b.disabled) b.click(); });
  await page.waitForFunction(() => document.querySelector('[data-testid=lab-status]')?.dataset.training === '0');
  await page.waitForTimeout(300);
}

// Each lab: how to open it on a result, and what it must offer at least.
const LABS = {
  attention: { url: '/#/attention', ready: (p) => waitRev(p, 1), charts: 2, canvases: 2, canvasCsv: 2 },
  '9.2.1': { url: '/#/9.2.1?sample=0', ready: (p) => p.locator('[data-testid=prediction]').waitFor({ timeout: 60_000 }), charts: 1, canvases: 9, canvasCsv: 9 },
  '9.2.2': { url: '/#/9.2.2', ready: (p) => waitRev(p, 1), tables: 1 },
  '9.2.3': { url: '/#/9.2.3', ready: (p) => waitRev(p, 1, 180_000), charts: 1, tables: 1 },
  '9.2.4': {
    url: '/#/9.2.4',
    ready: async (p) => {
      await p.locator('[data-testid=feature-arrows]').waitFor({ timeout: 60_000 });
      await p.waitForTimeout(1500);
      await stopTraining(p);
    },
    charts: 3,
  },
  '9.2.5': { url: '/#/9.2.5?latent=3', ready: (p) => p.locator('[data-testid=feature-histogram]').waitFor({ timeout: 60_000 }), charts: 1 },
  '9.3.1': { url: '/#/9.3.1', ready: (p) => waitRev(p, 1, 120_000), tables: 1 },
  '9.3.2': { url: '/#/9.3.2', ready: (p) => waitRev(p, 1, 180_000), lab: (doc) => assert.ok(doc.lab?.steered?.length > 0 && typeof doc.lab.norm === 'number') },
  '9.4': { url: '/#/9.4', ready: (p) => waitRev(p, 1, 120_000), charts: 1, lab: (doc) => assert.ok(doc.lab?.circuit?.edges?.length > 0) },
  '9.5': {
    url: '/#/9.5?card=sae-gap',
    ready: async (p) => {
      const c = p.locator('[data-testid=critique-card][data-card="sae-gap"]');
      await p.check('[data-testid=predict-critique-sae-gap-0]');
      await p.click('[data-testid=predict-critique-sae-gap-commit]');
      const prev = await labRev(p);
      await c.locator('[data-testid=critique-run]').click();
      await waitRev(p, prev + 1, 120_000);
      // The polysemantic channel's card: a sheet of small pictures (its visualization and its top digits).
      const poly = p.locator('[data-testid=critique-card][data-card="polysemantic"]');
      await p.check('[data-testid=predict-critique-polysemantic-2]');
      await p.click('[data-testid=predict-critique-polysemantic-commit]');
      await poly.locator('[data-testid=critique-run]').click();
      await poly.locator('[data-testid=finding-summary]').waitFor({ timeout: 120_000 });
    },
    tables: 1,
    canvases: 1,
    canvasCsv: 1,
  },
};

test('every live lab has an export plan here', () => {
  assert.deepEqual(Object.keys(LABS).sort(), [...LIVE_LABS].sort());
});

for (const [slug, lab] of Object.entries(LABS)) {
  test(`${slug}: copy link, JSON, and every chart, canvas and table export`, TIMEOUT, async (t) => {
    const { browser } = await launch();
    const context = await clipboardContext(browser);
    const page = await openPage(lab.url, { t, context });
    await lab.ready(page);
    // Long main-thread tasks while exporting, reported (the machine's load makes a hard limit here flaky;
    // bench.mjs holds the limits).
    await page.evaluate(() => {
      window.__longTasks = [];
      new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__longTasks.push(Math.round(e.duration)))).observe({ type: 'longtask' });
    });
    const charts = await exerciseCharts(page, slug);
    const { n: canvases, withCsv } = await exerciseCanvases(page, slug);
    const tables = await exerciseTables(page, slug);
    assert.ok(charts >= (lab.charts ?? 0), `${slug}: ${charts} charts`);
    assert.ok(canvases >= (lab.canvases ?? 0), `${slug}: ${canvases} canvases`);
    assert.ok(withCsv >= (lab.canvasCsv ?? 0), `${slug}: ${withCsv} canvases with their numbers`);
    assert.ok(tables >= (lab.tables ?? 0), `${slug}: ${tables} tables`);
    const doc = await exerciseLabTools(page, slug);
    if (charts > 0) assert.ok(doc.charts.length > 0, 'the charts\' numbers are in the JSON');
    if (tables > 0) assert.ok(doc.tables.length > 0, 'the tables are in the JSON');
    if (lab.lab) lab.lab(doc);
    if (slug === '9.3.1') {
      // The heatmap's own CSV (TransformerLens's columns) carries the metadata too.
      const { meta, header } = parseCsv((await download(page, page.locator('[data-testid=download-real]'))).buf.toString('utf8'));
      checkMeta(meta, slug);
      assert.deepEqual(header, ['layer', 'pos', 'head', 'value', 'metric', 'target', 'direction', 'method']);
    }
    t.diagnostic(`${slug}: ${charts} charts, ${canvases} canvases, ${tables} tables; long tasks while exporting: ${JSON.stringify(await page.evaluate(() => window.__longTasks))}`);
    if (process.env.EXPORT_SHOTS) await screenshot(page, `export-${slug}`, page.locator('[data-testid=chart-box], [data-testid=lab-frame]').first());
    assertClean(page);
  });
}
