// The service worker: keeps a copy of the whole site, so that after one visit the playground opens, reloads
// and runs every lab with no network at all (a classroom with no internet).
//
// `BUILD` (above this code in the built `sw.js`, written by src/worker/post_build.mjs) lists every file of this
// build with its size (and, for the app's code, which of its two builds it belongs to), and a version. The files
// go into one cache per build, `glassbox-<version>`:
// - install: fetch every file into this build's cache, telling the open pages how far it has got; a file whose
//   size is not the size built is refused (a truncated download must not be kept as the offline copy);
// - waiting: a new build waits until the page says the student agreed to reload, so a page is never switched to
//   new code under its feet;
// - activate: delete the caches of other builds;
// - fetch: answer from this build's cache, and go to the network only for what it does not hold.
// Everything is relative to the worker's own folder, so the site works at the root or under any sub-path.
//
// Messages (all `{type, ...}` objects; the page side is src/app/core/offline.rs):
// - to pages: `precache` {done, total, bytes, totalBytes, version}, `ready` {version, bytes}, `failed`
//   {version, message};
// - from a page: `status` (answered with `ready` when this worker is active and its copy is complete),
//   `skip-waiting` (the student agreed to switch to this build).

// The app is built twice, plain and with relaxed SIMD (src/worker/post_build.mjs): a file the build marks as one
// build's is saved only where it is the one this browser runs, the test the page's loader makes.
const RUNS = relaxedSimd() ? 'relaxed-simd' : 'simd128';
const FILES = BUILD.files.filter(([, , only]) => !only || only === RUNS);
const BYTES = FILES.reduce((n, [, size]) => n + size, 0);

function relaxedSimd() {
  try {
    return WebAssembly.validate(new Uint8Array(BUILD.relaxedProbe));
  } catch {
    return false;
  }
}

const CACHE_PREFIX = 'glassbox-';
const CACHE = CACHE_PREFIX + BUILD.version;
const SCOPE = self.registration.scope;
const INDEX = new URL('index.html', SCOPE).href;

function absolute(path) {
  return new URL(path, SCOPE).href;
}

async function tell(message) {
  const pages = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const page of pages) page.postMessage({ ...message, version: BUILD.version });
}

async function precache() {
  const cache = await caches.open(CACHE);
  const total = FILES.length;
  let done = 0;
  let bytes = 0;
  for (const [path, size] of FILES) {
    const url = absolute(path);
    // A retry after a failed install keeps what the first attempt saved (same version, same bytes).
    if (!(await cache.match(url))) {
      const response = await fetch(url, { cache: 'no-cache' });
      if (!response.ok) throw new Error(`${path}: the server answered ${response.status}`);
      const body = await response.arrayBuffer();
      if (body.byteLength !== size) {
        throw new Error(`${path}: received ${body.byteLength} bytes, the build has ${size}`);
      }
      const headers = { 'content-type': response.headers.get('content-type') ?? 'application/octet-stream' };
      await cache.put(url, new Response(body, { status: 200, headers }));
    }
    done += 1;
    bytes += size;
    await tell({ type: 'precache', done, total, bytes, totalBytes: BYTES });
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    precache().then(
      () => tell({ type: 'ready', bytes: BYTES }),
      async (error) => {
        await tell({ type: 'failed', message: String(error?.message ?? error) });
        throw error;
      },
    ),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(CACHE_PREFIX) && name !== CACHE) await caches.delete(name);
      }
      // The first visit's page becomes controlled at once, so the labs it opens later already come from the copy.
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('message', (event) => {
  const type = event.data?.type;
  if (type === 'skip-waiting') {
    self.skipWaiting();
  } else if (type === 'status') {
    // Asked of the active worker by a page that has just opened. The copy can have been evicted by the browser
    // since it was saved (storage pressure): then it is saved again, with progress, before the answer.
    event.waitUntil(
      (async () => {
        const cache = await caches.open(CACHE);
        let missing = 0;
        for (const [path] of FILES) if (!(await cache.match(absolute(path)))) missing += 1;
        try {
          if (missing > 0) await precache();
          event.source?.postMessage({ type: 'ready', bytes: BYTES, version: BUILD.version });
        } catch (error) {
          event.source?.postMessage({ type: 'failed', message: String(error?.message ?? error), version: BUILD.version });
        }
      })(),
    );
  }
});

async function answer(request) {
  const cache = await caches.open(CACHE);
  const url = new URL(request.url);
  url.hash = '';
  // Every page of the site is index.html (sections are hash routes).
  const key = request.mode === 'navigate' || url.href === SCOPE ? INDEX : url.href;
  const hit = await cache.match(key, { ignoreSearch: request.mode === 'navigate' });
  return hit ?? fetch(request);
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || !request.url.startsWith(SCOPE)) return;
  event.respondWith(answer(request));
});
