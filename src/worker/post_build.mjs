// Trunk's post_build hook (Trunk.toml), run with Node (already needed to build: wasm-opt comes from npm).
// It finishes the build in its staging folder, in three steps:
//
// 0. The chapter's text, `chapter-<hash>.json` (written by Trunk's pre_build hook, `chapter/`), gets a
//    `<link rel="preload" as="fetch" crossorigin>` in index.html, so it downloads beside the .wasm instead of after
//    it: the app fetches the same URL at start (src/app/core/load.rs, `load_chapter`) and the browser hands it the
//    preloaded answer. Its name changes with its bytes, so only now is it known. `data-app-reports`: the boot guard
//    leaves its failure to the app, which says so in the chapter pane, with Retry (the lab works without it).
// 1. The loader. The app is built twice (index.html): `glassbox-<hash>` (simd128) and `glassbox_relaxed`, whose
//    matrix products use relaxed SIMD's fused multiply-add. An engine without relaxed SIMD refuses that whole file,
//    so the page must pick before it fetches: Trunk's loader for the plain build (its two preload links and its
//    module script) is replaced by a classic script that validates a 37-byte module holding one
//    `f32x4.relaxed_madd`, preloads the .js of the build it picks and starts compiling its .wasm as it downloads
//    (`WebAssembly.compileStreaming`), preloads the model files of the lab the address opens (`first_files.json`),
//    and a module script that starts that build with the compiled module. The
//    relaxed build's files get a hashed name here, as Trunk gives the plain build's (Trunk names a "worker"
//    build by its binary only). `<html data-wasm-build>` says which build runs.
// 2. The Content-Security-Policy. It is a <meta> tag, since any static server must do (no headers to set): no
//    origin but the page's own, no eval, WebAssembly compiled as it needs ('wasm-unsafe-eval'), and the inline
//    scripts (the boot guard, the loader of step 1) allowed by the hash of their exact text. The loader names the
//    builds' hashed files, so its hash is known only now.
// 3. The service worker, `sw.js`: a list of every file of the finished build (path and size) and a version (a
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

// 1. The loader.
/**
 * A module whose one function is `f32x4.relaxed_madd` of its three v128 parameters (binaryen's `wasm-as
 * --enable-relaxed-simd` of that function): `WebAssembly.validate` accepts it exactly where relaxed SIMD is on.
 */
const RELAXED_PROBE = [
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32,
  2, 253, 133, 2, 11,
];
const LOADER_MARK = 'data-glassbox-loader';
// What the loader preloads for a section opened alone: `{slug: [file, ...]}`, kept fresh by a native test
// (app::labs, `the_preloaded_files_are_fresh`).
const FIRST_FILES = JSON.parse(fs.readFileSync(path.join(here, 'first_files.json'), 'utf8'));
const builds = pickableBuilds();
// Trunk's preload links and module script for the plain build, or (a rerun) the loader written here before.
const trunkLinks = new RegExp(
  `\\n?\\s*<link rel="(?:modulepreload|preload)" href="\\./${builds.plain.base}(?:\\.js|_bg\\.wasm)"[^>]*>`,
  'g',
);
const trunkLoader = new RegExp(`<script type="module">\\s*import init, \\* as bindings from '\\./${builds.plain.base}\\.js';[\\s\\S]*?</script>`);
const ourScripts = new RegExp(`\\n?\\s*<script[^>]*${LOADER_MARK}[^>]*>[\\s\\S]*?</script>`, 'g');
html = html.replace(trunkLinks, '').replace(ourScripts, '');
const loaderAt = html.search(trunkLoader);
if (loaderAt >= 0) html = html.replace(trunkLoader, '');
const moduleAt = loaderAt >= 0 ? loaderAt : html.indexOf('</head>');
const picker = `<script ${LOADER_MARK}="pick">
(function () {
  var relaxed = false;
  try {
    relaxed = WebAssembly.validate(new Uint8Array(${JSON.stringify(RELAXED_PROBE)}));
  } catch (e) {}
  var build = relaxed
    ? { name: 'relaxed-simd', js: './${builds.relaxed.base}.js', wasm: './${builds.relaxed.base}_bg.wasm' }
    : { name: 'simd128', js: './${builds.plain.base}.js', wasm: './${builds.plain.base}_bg.wasm' };
  window.glassboxBuild = build;
  document.documentElement.setAttribute('data-wasm-build', build.name);
  var link = document.createElement('link');
  link.rel = 'modulepreload';
  link.href = build.js;
  link.crossOrigin = 'anonymous';
  document.head.appendChild(link);
  // The files a section's lab loads first (src/worker/first_files.json, written from labs::first_load), when the
  // address names the section alone: they then download beside the app's code, and the lab's own fetches are
  // answered from these. With a query the lab may open on another model, so nothing is preloaded. The app reports
  // a failure of these files itself, in the lab (data-app-reports, for the boot guard).
  var first = ${JSON.stringify(FIRST_FILES)};
  var section = new RegExp('^#/([^?/]+)/?$').exec(location.hash);
  if (section && Object.prototype.hasOwnProperty.call(first, section[1])) {
    first[section[1]].forEach(function (file) {
      var link = document.createElement('link');
      link.rel = 'preload';
      link.as = 'fetch';
      link.href = file;
      link.crossOrigin = 'anonymous';
      link.setAttribute('data-app-reports', '');
      document.head.appendChild(link);
    });
  }
  // The .wasm is compiled as it downloads, from here. A preload link would hold the whole file until the module
  // script asks for it, and only then would compiling start. Any failure is left to wasm-bindgen's own loader,
  // which fetches again and says what went wrong (the boot guard shows it).
  if (typeof fetch === 'function' && WebAssembly.compileStreaming) {
    build.module = WebAssembly.compileStreaming(fetch(build.wasm)).catch(function () {
      return null;
    });
  }
})();
</script>`;
const starter = `<script type="module" ${LOADER_MARK}="start">
const build = window.glassboxBuild;
const bindings = await import(build.js);
const wasm = await bindings.default({ module_or_path: (await build.module) || build.wasm });
window.wasmBindings = bindings;
dispatchEvent(new CustomEvent('TrunkApplicationStarted', { detail: { wasm } }));
</script>`;
html = `${html.slice(0, moduleAt)}${starter}${html.slice(moduleAt)}`;
// Before the stylesheet: an inline script after a stylesheet still loading waits for it, and the .wasm's download
// with it (about 40 ms of a first visit, traced).
const styleAt = html.search(/<link rel="stylesheet"/);
const pickAt = styleAt >= 0 ? styleAt : html.indexOf('</head>');
html = `${html.slice(0, pickAt).trimEnd()}\n    ${picker}\n    ${html.slice(pickAt)}`;

/**
 * The two builds' file names without `.js` / `_bg.wasm`: Trunk's hashed `glassbox-<hash>`, and the relaxed build,
 * renamed here from Trunk's `glassbox_relaxed` to `glassbox_relaxed-<hash of both files>` (or found so named, on a
 * rerun). Throws unless exactly one of each is there.
 */
function pickableBuilds() {
  const names = fs.readdirSync(out);
  const one = (re, what) => {
    const found = names.map((f) => f.match(re)?.[1]).filter(Boolean);
    if (found.length !== 1) throw new Error(`expected one ${what} in ${out}, found ${found.length}: ${found}`);
    return found[0];
  };
  const plain = one(/^(glassbox-[0-9a-f]{8,16})_bg\.wasm$/, "build of the app (Trunk's glassbox-<hash>_bg.wasm)");
  let relaxed = one(/^(glassbox_relaxed(?:-[0-9a-f]{16})?)_bg\.wasm$/, 'relaxed-SIMD build (glassbox_relaxed_bg.wasm)');
  if (relaxed === 'glassbox_relaxed') {
    const hash = crypto.createHash('sha256');
    for (const ext of ['.js', '_bg.wasm']) hash.update(fs.readFileSync(path.join(out, relaxed + ext)));
    const named = `${relaxed}-${hash.digest('hex').slice(0, 16)}`;
    for (const ext of ['.js', '_bg.wasm']) fs.renameSync(path.join(out, relaxed + ext), path.join(out, named + ext));
    relaxed = named;
  }
  for (const base of [plain, relaxed]) {
    if (!fs.existsSync(path.join(out, `${base}.js`))) throw new Error(`${base}_bg.wasm has no ${base}.js beside it`);
  }
  return { plain: { base: plain }, relaxed: { base: relaxed } };
}

// 2. The policy.
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

// 3. The service worker.
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
  // The app's code, marked with the build it belongs to: the service worker saves only the one its browser runs.
  const only = f.startsWith(builds.plain.base) ? 'simd128' : f.startsWith(builds.relaxed.base) ? 'relaxed-simd' : null;
  return only ? [f, bytes.length, only] : [f, bytes.length];
});
const build = {
  version: whole.digest('hex').slice(0, 16),
  bytes: list.reduce((n, [, b]) => n + b, 0),
  files: list,
  relaxedProbe: RELAXED_PROBE,
};
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
