// Our engine: glassbox::lens compiled to wasm32 (src/bin/peer_bench.rs, built by tests/peers/build-wasm).
// One thread: the engine has no threads in the browser.
import { fetchBytes, randomFloats } from '../safetensors.mjs';

// Where tests/peers/build-wasm put the engine (peers.mjs passes its GLASSBOX_PEERS_WASM as `wasm`).
const WASM = new URLSearchParams(location.search).get('wasm') ?? '.cache/peers/wasm';
const { default: init, Gpt, Vision, Matmul } = await import(`/${WASM}/peer_bench.js`);

export async function create() {
  await init({ module_or_path: `/${WASM}/peer_bench_bg.wasm` });
  return {
    name: 'ours',
    info: () => ({ engine: 'glassbox (candle, wasm32 SIMD)', threads: 1 }),
    async load(spec) {
      if (spec.kind === 'matmul') {
        const n = spec.n;
        return { kind: 'matmul', m: new Matmul(randomFloats(n * n, spec.seed), randomFloats(n * n, spec.seed + 1), n) };
      }
      const config = new TextDecoder().decode(await fetchBytes(`${spec.dir}/config.json`));
      const weights = new Uint8Array(await fetchBytes(`${spec.dir}/model.safetensors`));
      const Model = spec.kind === 'gpt2' ? Gpt : Vision;
      return { kind: spec.kind, m: new Model(config, weights) };
    },
    unload(model) {
      model?.m.free();
    },
    prepare({ kind, m }, variant, input) {
      if (kind === 'matmul') return () => m.run();
      if (kind === 'cnn') {
        const pixels = new Float32Array(input.pixels);
        if (variant === 'logits') return () => m.logits(pixels);
        return () => m.input_gradient(pixels, input.class);
      }
      const tokens = new Uint32Array(input.tokens);
      if (variant === 'logits') return () => m.logits(tokens);
      const call = () => m.logits_with_cache(tokens);
      call.model = m;
      return call;
    },
    /** What the cached run recorded: the number of activations. */
    extra: (call) => (call.model ? { activations: call.model.cached() } : null),
  };
}
