// TensorFlow.js with its WebAssembly backend (XNNPACK, SIMD), `threads` threads. The forwards are written here
// with tfjs ops from the same safetensors files our engine reads, computing the same functions as
// src/lens/gpt2/model.rs and src/lens/cnn/model.rs (see tests/peers/export_onnx.py for the transformer, step
// for step). Each uses tfjs's best ops where one exists: fused matmul + bias, fused conv + bias + ReLU.
import { fetchBytes, fetchJson, parseSafetensors, randomFloats } from '../safetensors.mjs';

const DIST = '/tests/peers/node_modules/@tensorflow';

function script(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  });
}

export async function create({ threads }) {
  // The UMD bundles: the ES module builds import Node's fs and os, which a page cannot. The union package, not
  // tfjs-core alone, because only it registers the gradients (tf.grad) with the ops.
  await script(`${DIST}/tfjs/dist/tf.min.js`);
  await script(`${DIST}/tfjs-backend-wasm/dist/tf-backend-wasm.min.js`);
  const tf = window.tf;
  tf.wasm.setWasmPaths(`${DIST}/tfjs-backend-wasm/dist/`);
  tf.wasm.setThreadsCount(threads);
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend did not start');
  await tf.ready();
  const make = { gpt2: loadGpt2, cnn: loadCnn, matmul: loadMatmul };
  return {
    name: `tfjs${threads}`,
    info: () => ({ engine: `tfjs ${tf.version_core} (wasm backend)`, threads: tf.wasm.getThreadsCount() }),
    load: (spec) => make[spec.kind](tf, spec),
    unload(model) {
      tf.dispose([model?.weights, model?.held, model?.cache]);
    },
    prepare: (model, variant, input) => model.prepare(variant, input),
    extra: (call) => (call.activations ? { activations: call.activations() } : null),
  };
}

async function weightsOf(tf, dir) {
  const config = await fetchJson(`${dir}/config.json`);
  const raw = parseSafetensors(await fetchBytes(`${dir}/model.safetensors`));
  const w = (name) => {
    const t = raw.get(name);
    if (!t) throw new Error(`${dir}: tensor ${name} is missing`);
    return tf.tensor(t.data, t.shape);
  };
  return { config, w };
}

async function loadGpt2(tf, spec) {
  const { config: cfg, w } = await weightsOf(tf, spec.dir);
  const d = cfg.n_embd;
  const nHeads = cfg.n_head;
  const dHead = d / nHeads;
  const eps = cfg.layer_norm_epsilon ?? 1e-5;
  const scaled = cfg.scale_attn_weights ?? true;
  const n = cfg.n_positions;
  const ln = (p) => ({ w: w(`${p}.weight`), b: w(`${p}.bias`) });
  const linear = (p) => ({ w: w(`${p}.weight`), b: w(`${p}.bias`) }); // w [in, out]
  const blocks = [];
  for (let l = 0; l < cfg.n_layer; l++) {
    const h = `h.${l}`;
    blocks.push({
      ln1: ln(`${h}.ln_1`),
      attn: linear(`${h}.attn.c_attn`),
      proj: linear(`${h}.attn.c_proj`),
      // An attention-only model's stored MLP is zeros and adds nothing: skipped, as our engine skips it.
      mlp: cfg.attn_only ? null : { ln2: ln(`${h}.ln_2`), fc: linear(`${h}.mlp.c_fc`), proj: linear(`${h}.mlp.c_proj`) },
    });
  }
  const causal = new Float32Array(n * n);
  for (let q = 0; q < n; q++) for (let k = q + 1; k < n; k++) causal[q * n + k] = -Infinity;
  const tied = cfg.tie_word_embeddings ?? true;
  const wte = w('wte.weight'); // [vocab, d_model]
  const weights = {
    wte,
    wpe: w('wpe.weight'), // [n_positions, d_model]
    blocks,
    lnF: ln('ln_f'),
    // [d_model, vocab], transposed once at load as our engine does.
    lmHeadT: tf.tidy(() => tf.transpose(tied ? wte : w('lm_head.weight'))),
    mask: tf.tensor(causal, [n, n]),
  };

  // tokens: int32 [pos]. Returns logits [pos, vocab]; `hook(name, tensor)` receives every activation.
  function forward(tokens, hook) {
    const pos = tokens.shape[0];
    const layerNorm = (x, p, name) => {
      const { mean, variance } = tf.moments(x, -1, true);
      const scale = tf.sqrt(tf.add(variance, eps)); // [pos, 1]
      hook(`${name}.hook_scale`, scale);
      const normalized = tf.add(tf.mul(tf.div(tf.sub(x, mean), scale), p.w), p.b);
      hook(`${name}.hook_normalized`, normalized);
      return normalized;
    };
    const dense = (x, p) => tf.fused.matMul({ a: x, b: p.w, bias: p.b });
    const embed = tf.gather(weights.wte, tokens); // [pos, d_model]
    hook('hook_embed', embed);
    const posEmbed = tf.slice(weights.wpe, [0, 0], [pos, d]);
    hook('hook_pos_embed', posEmbed);
    let resid = tf.add(embed, posEmbed);
    const mask = tf.slice(weights.mask, [0, 0], [pos, pos]);
    weights.blocks.forEach((block, l) => {
      const b = `blocks.${l}`;
      hook(`${b}.hook_resid_pre`, resid);
      // Attention: resid = resid + attn(ln1(resid))
      const normed = layerNorm(resid, block.ln1, `${b}.ln1`);
      const [q, k, v] = tf.split(dense(normed, block.attn), 3, 1).map((t) => tf.reshape(t, [pos, nHeads, dHead]));
      hook(`${b}.attn.hook_q`, q);
      hook(`${b}.attn.hook_k`, k);
      hook(`${b}.attn.hook_v`, v);
      const [qh, kh, vh] = [q, k, v].map((t) => tf.transpose(t, [1, 0, 2])); // [head, pos, d_head]
      let scores = tf.matMul(qh, kh, false, true); // [head, q, k]
      if (scaled) scores = tf.div(scores, Math.sqrt(dHead));
      scores = tf.add(scores, mask);
      hook(`${b}.attn.hook_attn_scores`, scores);
      const pattern = tf.softmax(scores);
      hook(`${b}.attn.hook_pattern`, pattern);
      const z = tf.transpose(tf.matMul(pattern, vh), [1, 0, 2]); // [pos, head, d_head]
      hook(`${b}.attn.hook_z`, z);
      const attnOut = dense(tf.reshape(z, [pos, d]), block.proj);
      hook(`${b}.hook_attn_out`, attnOut);
      resid = tf.add(resid, attnOut);
      if (block.mlp) {
        // MLP: resid = resid + mlp(ln2(resid))
        hook(`${b}.hook_resid_mid`, resid);
        const pre = dense(layerNorm(resid, block.mlp.ln2, `${b}.ln2`), block.mlp.fc); // [pos, d_mlp]
        hook(`${b}.mlp.hook_pre`, pre);
        // gelu_new: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        const inner = tf.mul(tf.add(pre, tf.mul(tf.mul(tf.mul(pre, pre), pre), 0.044715)), Math.sqrt(2 / Math.PI));
        const post = tf.mul(tf.mul(pre, 0.5), tf.add(tf.tanh(inner), 1));
        hook(`${b}.mlp.hook_post`, post);
        const mlpOut = dense(post, block.mlp.proj);
        hook(`${b}.hook_mlp_out`, mlpOut);
        resid = tf.add(resid, mlpOut);
      }
      hook(`${b}.hook_resid_post`, resid);
    });
    return tf.matMul(layerNorm(resid, weights.lnF, 'ln_final'), weights.lmHeadT); // [pos, vocab]
  }

  return {
    weights,
    prepare(variant, input) {
      const tokens = tf.tensor1d(input.tokens, 'int32');
      this.held = [...(this.held ?? []), tokens];
      if (variant === 'logits') {
        return () => {
          const logits = tf.tidy(() => forward(tokens, () => {}));
          const data = logits.dataSync();
          logits.dispose();
          return data;
        };
      }
      // Every activation kept until the next run, as a lab keeps its cache (and our engine its own).
      const model = this;
      const call = () => {
        tf.dispose(model.cache);
        model.cache = tf.tidy(() => {
          const kept = {};
          const logits = forward(tokens, (name, t) => (kept[name] = t));
          return { logits, kept };
        });
        return model.cache.logits.dataSync();
      };
      call.activations = () => (model.cache ? Object.keys(model.cache.kept).length : 0);
      return call;
    },
  };
}

async function loadCnn(tf, spec) {
  const { config: cfg, w } = await weightsOf(tf, spec.dir);
  const convs = cfg.channels.map((_, i) => ({
    // [out, in, k, k] (PyTorch) -> [k, k, in, out] (tfjs's NHWC filters)
    filter: tf.tidy(() => tf.transpose(w(`conv${i + 1}.weight`), [2, 3, 1, 0])),
    bias: w(`conv${i + 1}.bias`),
    pool: cfg.pool[i],
  }));
  let side = cfg.image_size;
  for (const pool of cfg.pool) if (pool) side = Math.floor(side / 2);
  const c = cfg.channels.at(-1);
  // fc reads the last map flattened channel-major [c, y, x] (torch.flatten); tfjs's maps are [y, x, c], so the
  // weight's columns are reordered once: [classes, c, y, x] -> [y, x, c, classes].
  const fcW = tf.tidy(() => {
    const fc = tf.reshape(w('fc.weight'), [cfg.num_classes, c, side, side]);
    return tf.reshape(tf.transpose(fc, [2, 3, 1, 0]), [-1, cfg.num_classes]);
  });
  const weights = { convs, fcW, fcB: w('fc.bias') };

  function forward(x) {
    // x [1, size, size, 1]
    for (const conv of convs) {
      x = tf.fused.conv2d({ x, filter: conv.filter, strides: 1, pad: cfg.padding, bias: conv.bias, activation: 'relu' });
      if (conv.pool) x = tf.maxPool(x, 2, 2, 'valid'); // floor: 7 -> 3, as our max_pool2
    }
    return tf.fused.matMul({ a: tf.reshape(x, [1, -1]), b: weights.fcW, bias: weights.fcB }); // [1, classes]
  }

  return {
    weights,
    prepare(variant, input) {
      const s = cfg.image_size;
      // One channel: [1, s, s, 1] holds the pixels in the same order as our [1, 1, s, s].
      const x = tf.tensor4d(input.pixels, [1, s, s, 1]);
      this.held = [...(this.held ?? []), x];
      const once = (f) => () => {
        const out = tf.tidy(f);
        const data = out.dataSync();
        out.dispose();
        return data;
      };
      if (variant === 'logits') return once(() => forward(x));
      const grad = tf.grad((image) => tf.sum(tf.slice(forward(image), [0, input.class], [1, 1])));
      return once(() => grad(x));
    },
  };
}

async function loadMatmul(tf, { n, seed }) {
  const a = tf.tensor2d(randomFloats(n * n, seed), [n, n]);
  const b = tf.tensor2d(randomFloats(n * n, seed + 1), [n, n]);
  return {
    weights: [a, b],
    prepare: () => () => {
      const c = tf.matMul(a, b);
      const data = c.dataSync();
      c.dispose();
      return data;
    },
  };
}
