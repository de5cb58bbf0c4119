// Trunk's post_build hook (Trunk.toml), run with Node (already needed to build: wasm-opt comes from npm).
// It finishes the build in its staging folder, in three steps:
//
// 0. The chapter's text, `chapter-<hash>.json` (written by Trunk's pre_build hook, `chapter/`), gets a
//    `<link rel="preload" as="fetch" crossorigin>` in index.html, so it downloads beside the .wasm instead of after
//    it: the app fetches the same URL at start (src/app/core/load.rs, `load_chapter`) and the browser hands it the
//    preloaded answer. Its name changes with its bytes, so only now is it known. `data-app-reports`: the boot guard
//    leaves its failure to the app, which says so in the chapter pane, with Retry (the lab works without it).
// 1. The Content-Security-Policy. It is a <meta> tag, since any static server must do (no headers to set): no
//    origin but the page's own, no eval, WebAssembly compiled as it needs ('wasm-unsafe-eval'), and the inline
//    scripts (the boot guard, Trunk's loader) allowed by the hash of their exact text. Trunk's loader names the
//    build's hashed files, so its hash is known only now.
// 2. The service worker, `sw.js`: a list of every file of the finished build (path and size) and a version (a
//    hash of all their contents) put in front of the worker's code (src/worker/sw.js). A browser looks for a new
//    service worker only by comparing the bytes of `sw.js`, so it must change whenever the build does.
//
// `node src/worker/post_build.mjs` with TRUNK_STAGING_DIR set (Trunk sets it; the offline e2e test too).
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

const out = process.env.TRUNK_STAGING_DIR;
if (!out) throw new Error('TRUNK_STAGING_DIR is not set: this script is run by trunk build');
const here = path.dirname(fileURLToPath(import.meta.url));

const indexFile = path.join(out, 'index.html');
let html = fs.readFileSync(indexFile, 'utf8');

// 0. The chapter text's preload. Rerun on a finished build (the e2e test's "new build"): the old link goes first.
const chapters = fs.readdirSync(out).filter((f) => /^chapter-[0-9a-f]{16}\.json$/.test(f));
if (chapters.length !== 1) {
  throw new Error(`expected one chapter-<hash>.json in ${out} (Trunk's pre_build hook writes it), found ${chapters.length}`);
}
html = html.replace(/\n?\s*<link rel="preload" href="chapter-[^"]*"[^>]*>/, '');
const head = html.indexOf('</head>');
if (head < 0) throw new Error('index.html has no </head>');
const preload = `<link rel="preload" href="${chapters[0]}" as="fetch" crossorigin data-app-reports />`;
html = `${html.slice(0, head).trimEnd()}\n    ${preload}\n  ${html.slice(head)}`;

// 1. The policy.
const CSP_MARK = '<meta http-equiv="Content-Security-Policy"';
// Rerun on a finished build (the e2e test's "new build"): the old policy goes first.
html = html.replace(/<meta http-equiv="Content-Security-Policy"[^>]*>\n?/, '');
const inline = [...html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
const hashes = inline.map((text) => `'sha256-${crypto.createHash('sha256').update(text, 'utf8').digest('base64')}'`);
const policy = [
  "default-src 'self'",
  `script-src 'self' 'wasm-unsafe-eval' ${hashes.join(' ')}`,
  // Leptos sets `style` attributes (bar widths, heatmap colours); scripts stay locked down.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "worker-src 'self'",
  "manifest-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');
const charset = html.match(/<meta charset="utf-8"\s*\/?>/i);
if (!charset) throw new Error('index.html has no <meta charset="utf-8">: the policy must follow it, before any script');
const at = charset.index + charset[0].length;
html = `${html.slice(0, at)}\n    ${CSP_MARK} content="${policy}" />${html.slice(at)}`;
fs.writeFileSync(indexFile, html);

// 2. The service worker.
const swFile = path.join(out, 'sw.js');
fs.rmSync(swFile, { force: true });
const files = fs
  .readdirSync(out, { recursive: true })
  .map((f) => f.split(path.sep).join('/'))
  .filter((f) => fs.statSync(path.join(out, f)).isFile())
  .sort();
const whole = crypto.createHash('sha256');
const list = files.map((f) => {
  const bytes = fs.readFileSync(path.join(out, f));
  whole.update(f).update('\0').update(crypto.createHash('sha256').update(bytes).digest());
  return [f, bytes.length];
});
const build = { version: whole.digest('hex').slice(0, 16), bytes: list.reduce((n, [, b]) => n + b, 0), files: list };
const code = fs.readFileSync(path.join(here, 'sw.js'), 'utf8');
fs.writeFileSync(
  swFile,
  '// Written by src/worker/post_build.mjs for this build: every file of the build and its size in bytes.\n' +
    `const BUILD = ${JSON.stringify(build)};\n\n${code}`,
);
console.log(
  `post_build: ${hashes.length} inline scripts in the policy; sw.js lists ${files.length} files, ` +
    `${build.bytes} bytes, version ${build.version}`,
);
