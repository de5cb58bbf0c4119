// The benchmark page: one engine (?engine=ours|ort|tfjs&threads=N), driven by tests/peers/peers.mjs through
// `window.peer`. Every engine module exports `create({ threads })`, which returns
//   { name, info(), load(spec) -> model, unload(model), prepare(model, variant, input) -> call | null }
// where `call()` runs one forward (sync or async) and returns its main output as a Float32Array: the logits,
// the input gradient, or the matrix product. `prepare` returns null for what the engine cannot do.
const params = new URLSearchParams(location.search);
const threads = Number(params.get('threads') ?? '1');
const { create } = await import(`./engines/${params.get('engine')}.mjs`);
const engine = await create({ threads });

const models = new Map(); // model id -> the engine's model
const calls = new Map(); // row id -> call

async function run(call) {
  const out = call();
  return out instanceof Promise ? await out : out;
}

function base64(f32) {
  const bytes = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  let s = '';
  // String.fromCharCode takes its arguments on the stack: chunks keep large outputs (25 MB of logits) in reach.
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

window.peer = {
  info: () => ({ ...engine.info(), crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency }),
  /** Loads a model (weights fetched and parsed, sessions created); returns the ms it took. */
  async load(id, spec) {
    const t0 = performance.now();
    models.set(id, await engine.load(spec));
    return performance.now() - t0;
  },
  async unload(id) {
    await engine.unload?.(models.get(id));
    models.delete(id);
    for (const key of [...calls.keys()]) if (key.startsWith(`${id}/`)) calls.delete(key);
  },
  /** Readies row `row` (a variant of model `id` on `input`); false when the engine cannot do it. */
  async prepare(row, id, variant, input) {
    const call = await engine.prepare(models.get(id), variant, input);
    if (!call) return false;
    calls.set(row, call);
    return true;
  },
  /** One call's output, base64 of its float32 bytes, and the ms of that first (cold) call. */
  async output(row) {
    const t0 = performance.now();
    const out = await run(calls.get(row));
    return { ms: performance.now() - t0, b64: base64(out), extra: engine.extra?.(calls.get(row)) ?? null };
  },
  /** ms per call over `k` back-to-back calls. */
  async time(row, k) {
    const call = calls.get(row);
    const t0 = performance.now();
    for (let i = 0; i < k; i++) await run(call);
    return (performance.now() - t0) / k;
  },
};
window.peerReady = true;
