// ONNX Runtime Web, its WebAssembly execution provider (SIMD; `threads` threads, which needs a cross-origin
// isolated page for more than one), on the graphs tests/peers/export_onnx.py built from the same weights.
import * as ort from '/tests/peers/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';
import { fetchBytes, randomFloats } from '../safetensors.mjs';

export async function create({ threads }) {
  // This version ships SIMD builds only (ort-wasm-simd-threaded.wasm); one thread runs without workers.
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = '/tests/peers/node_modules/onnxruntime-web/dist/';
  ort.env.logLevel = 'error';
  const options = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
  const session = async (url) => ort.InferenceSession.create(new Uint8Array(await fetchBytes(url)), options);
  return {
    name: `ort${threads}`,
    info: () => ({ engine: `onnxruntime-web ${ort.env.versions?.web ?? ''} (wasm EP)`, threads }),
    async load(spec) {
      const model = { kind: spec.kind, logits: await session(spec.onnx) };
      if (spec.onnxCache) model.cache = await session(spec.onnxCache);
      if (spec.kind === 'matmul') {
        const { n, seed } = spec;
        model.feeds = {
          a: new ort.Tensor('float32', randomFloats(n * n, seed), [n, n]),
          b: new ort.Tensor('float32', randomFloats(n * n, seed + 1), [n, n]),
        };
      }
      return model;
    },
    async unload(model) {
      await model?.logits.release();
      await model?.cache?.release();
    },
    prepare(model, variant, input) {
      if (model.kind === 'matmul') return async () => (await model.logits.run(model.feeds)).c.data;
      if (model.kind === 'cnn') {
        // No autograd in ONNX Runtime Web: the input gradient is not something it can run.
        if (variant !== 'logits') return null;
        const image = new ort.Tensor('float32', new Float32Array(input.pixels), [1, 1, input.side, input.side]);
        return async () => (await model.logits.run({ image })).logits.data;
      }
      const tokens = new ort.Tensor('int64', BigInt64Array.from(input.tokens, BigInt), [1, input.tokens.length]);
      if (variant === 'logits') return async () => (await model.logits.run({ tokens })).logits.data;
      const call = async () => {
        // Every output of the session comes back: with the cache graph, every activation.
        const out = await model.cache.run({ tokens });
        call.outputs = Object.keys(out).length;
        return out.logits.data;
      };
      return call;
    },
    extra: (call) => (call.outputs ? { activations: call.outputs - 1 } : null),
  };
}
