// Draws public/app/icon.svg as public/app/icon-64.png, the page's favicon, with the project's Chromium:
// `node tests/e2e/draw-icon.mjs`. A PNG because Chromium opens an SVG favicon as a document of its own on the
// page's thread, about 8 ms of a first visit (traced); the manifest keeps the SVG.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './harness.mjs';

const app = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../public/app');
const SIZE = 64;
const svg = fs.readFileSync(path.join(app, 'icon.svg'), 'utf8').replace('<svg ', `<svg width="${SIZE}" height="${SIZE}" `);
const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: SIZE, height: SIZE }, deviceScaleFactor: 1 });
await page.setContent(`<body style="margin:0">${svg}</body>`);
await page.screenshot({ path: path.join(app, `icon-${SIZE}.png`), omitBackground: true, clip: { x: 0, y: 0, width: SIZE, height: SIZE } });
await browser.close();
