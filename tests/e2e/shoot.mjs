// Screenshots for looking at pages by hand: node tests/e2e/shoot.mjs [hash ...]
// Saves tests/e2e/screenshots/manual-{name}-{w}x{h}.png and prints any console problems.
import { launch, shutdown, openPage, screenshot, settle } from './harness.mjs';

const hashes = process.argv.slice(2);
await launch();
try {
  for (const h of hashes.length ? hashes : ['/#/overview', '/#/attention']) {
    const page = await openPage(h);
    await settle(page);
    await page.waitForTimeout(500);
    const name = 'manual-' + (h.replace(/[^a-z0-9.]+/gi, '_').replace(/^_+|_+$/g, '') || 'root');
    const files = await screenshot(page, name);
    console.log(files.join('\n'));
    if (page.problems.length) console.log('PROBLEMS on ' + h + ':\n  ' + page.problems.join('\n  '));
  }
} finally {
  await shutdown();
}
