// A tiny static file server for dist/ (no dependencies): 127.0.0.1, random port, no SPA fallback.
// The app uses hash routes (/#/9.2.1), so every page is `/` and a plain static server is enough.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.safetensors': 'application/octet-stream',
  '.bin': 'application/octet-stream',
};

/**
 * Serve `distDir` on 127.0.0.1 at a random free port.
 * @param {string} distDir
 * @param {{requireIndex?: boolean, headers?: Record<string, string>}} [opts] `requireIndex: false` serves a folder
 *   that holds the site in a sub-folder; `headers` are added to every file served (the peer benchmark's
 *   cross-origin isolation)
 * @returns {Promise<{url: string, port: number, close: () => Promise<void>, requests: string[]}>}
 */
export async function startServer(distDir, { requireIndex = true, headers = {} } = {}) {
  const root = path.resolve(distDir);
  if (requireIndex && !fs.existsSync(path.join(root, 'index.html'))) {
    throw new Error(`${root}/index.html not found: build the app first (trunk build --release)`);
  }
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const fail = (code, msg) => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : msg);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed\n');
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      return fail(400, 'bad request\n');
    }
    if (pathname.endsWith('/')) pathname += 'index.html';
    const file = path.join(root, pathname);
    // No escaping the root (path.join normalises `..`).
    if (file !== root && !file.startsWith(root + path.sep)) return fail(404, 'not found\n');
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) return fail(404, 'not found\n');
      res.writeHead(200, {
        'content-type': MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
        'content-length': st.size,
        'cache-control': 'no-store',
        ...headers,
      });
      if (req.method === 'HEAD') return res.end();
      fs.createReadStream(file).pipe(res);
    });
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// `node tests/e2e/serve.mjs [dir]`: serve a folder by hand (default: the repo's dist/), until Ctrl-C.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '../../dist');
  const { url } = await startServer(dir);
  console.log(`serving ${path.resolve(dir)} at ${url}/`);
}
