"""ONNX graphs of the project's models for the peer benchmark (`node tests/peers/peers.mjs`), built op by op with
`onnx.helper` from the very safetensors files the app ships, so ONNX Runtime Web runs the same weights as our engine.
Run once by `tests/peers/setup` (in the venv it makes under .cache/peers/venv), never by the test command.

    python tests/peers/export_onnx.py OUT_DIR gpt2 NAME MODEL_DIR [--cache]   # NAME.onnx (+ NAME.cache.onnx)
    python tests/peers/export_onnx.py OUT_DIR cnn NAME MODEL_DIR              # NAME.onnx
    python tests/peers/export_onnx.py OUT_DIR matmul N                        # matmul-N.onnx

The transformer is the function of src/lens/gpt2/model.rs, step for step:
  resid = wte[tokens] + wpe[:pos]
  each block: resid += attn(ln1(resid)), then (unless attn_only) resid += mlp(ln2(resid))
  logits = ln_f(resid) @ lm_head^T
LayerNorm: (x - mean) / sqrt(var + eps) * w + b, var biased. Attention: scores = q k^T / sqrt(d_head) (when
scale_attn_weights) + causal mask (-inf above the diagonal), softmax over keys. GELU: gelu_new, the tanh form.
An attention-only model's stored MLP is zeros (it adds nothing) and is skipped, as the engine skips it.

NAME.cache.onnx also outputs every activation our engine records (`HookSet::cache_all`), under the
TransformerLens names and shapes of src/lens/gpt2/hooks.rs; its LayerNorms are written out so that their scale
(`ln1.hook_scale`) exists as a tensor.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 17  # LayerNormalization is in opset 17


class Graph:
    """Nodes, weights and outputs of one graph, with generated names."""

    def __init__(self):
        self.nodes, self.inits, self.outputs, self.n = [], [], [], 0

    def const(self, array, name=None):
        name = name or f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type, *inputs, n_out=1, **attrs):
        self.n += 1
        outs = [f"{op_type.lower()}{self.n}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def output(self, name, value):
        """Exposes `value` as a graph output called `name`."""
        self.nodes.append(helper.make_node("Identity", [value], [name]))
        self.outputs.append(name)

    def save(self, path, inputs, doc):
        # The outputs' types (with symbolic shapes) come from ONNX's own shape inference over the finished graph.
        graph = helper.make_graph(self.nodes, path.stem, inputs, [], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], doc_string=doc)
        model.ir_version = 8
        inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
        model.graph.output.extend(inferred[name] for name in self.outputs)
        onnx.checker.check_model(model)
        onnx.save(model, str(path))


def gpt2(out_dir, name, model_dir, with_cache):
    cfg = json.loads((model_dir / "config.json").read_text())
    w = load_file(str(model_dir / "model.safetensors"))
    w = {k.removeprefix("transformer."): v.astype(np.float32) for k, v in w.items()}
    variants = [(f"{name}.onnx", False)] + ([(f"{name}.cache.onnx", True)] if with_cache else [])
    for file, cache in variants:
        g = Graph()
        gpt2_graph(g, cfg, w, cache)
        tokens = helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, "pos"])
        g.save(out_dir / file, [tokens], f"glassbox {name} ({model_dir}), every hook as an output: {cache}")
        print(f"wrote {out_dir / file}")


def gpt2_graph(g, cfg, w, cache):
    d, n_heads, n_layer = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    d_head, eps = d // n_heads, cfg.get("layer_norm_epsilon", 1e-5)
    attn_only = cfg.get("attn_only", False)
    hook = (lambda n, v: g.output(n, v)) if cache else (lambda n, v: None)
    i64 = lambda *v: g.const(np.array(v, dtype=np.int64))
    f32 = lambda v: g.const(np.array(v, dtype=np.float32))

    def layer_norm(x, prefix, hook_name):
        """`(scale, normalized)` as the engine's LayerNorm::forward; the fused op unless the scale is hooked."""
        weight, bias = g.const(w[f"{prefix}.weight"]), g.const(w[f"{prefix}.bias"])
        if not cache:
            return g.op("LayerNormalization", x, weight, bias, axis=-1, epsilon=eps)
        centred = g.op("Sub", x, g.op("ReduceMean", x, axes=[-1], keepdims=1))
        var = g.op("ReduceMean", g.op("Mul", centred, centred), axes=[-1], keepdims=1)
        scale = g.op("Sqrt", g.op("Add", var, f32(eps)))  # [1, pos, 1]
        hook(f"{hook_name}.hook_scale", scale)
        normalized = g.op("Add", g.op("Mul", g.op("Div", centred, scale), weight), bias)
        hook(f"{hook_name}.hook_normalized", normalized)
        return normalized

    def linear(x, prefix):  # x [1, pos, in] @ W [in, out] + b
        return g.op("Add", g.op("MatMul", x, g.const(w[f"{prefix}.weight"])), g.const(w[f"{prefix}.bias"]))

    # pos, as a 1-element tensor, from the tokens' shape [1, pos].
    pos = g.op("Slice", g.op("Shape", "tokens"), i64(1), i64(2))
    embed = g.op("Gather", g.const(w["wte.weight"]), "tokens")  # [1, pos, d_model]
    hook("hook_embed", embed)
    pos_embed = g.op("Unsqueeze", g.op("Slice", g.const(w["wpe.weight"]), i64(0), pos, i64(0)), i64(0))
    hook("hook_pos_embed", pos_embed)  # [1, pos, d_model]
    resid = g.op("Add", embed, pos_embed)
    n = cfg["n_positions"]
    causal = np.triu(np.full((n, n), -np.inf, dtype=np.float32), k=1)  # 0 on and below the diagonal
    pos2 = g.op("Concat", pos, pos, axis=0)
    mask = g.op("Slice", g.const(causal), i64(0, 0), pos2, i64(0, 1))  # [pos, pos]
    heads_shape = i64(1, -1, n_heads, d_head)
    for layer in range(n_layer):
        b = f"blocks.{layer}"
        hook(f"{b}.hook_resid_pre", resid)
        # Attention: resid = resid + attn(ln1(resid))
        normed = layer_norm(resid, f"h.{layer}.ln_1", f"{b}.ln1")
        q, k, v = g.op("Split", linear(normed, f"h.{layer}.attn.c_attn"), i64(d, d, d), axis=2, n_out=3)
        q, k, v = (g.op("Reshape", t, heads_shape) for t in (q, k, v))  # [1, pos, head, d_head]
        hook(f"{b}.attn.hook_q", q)
        hook(f"{b}.attn.hook_k", k)
        hook(f"{b}.attn.hook_v", v)
        q = g.op("Transpose", q, perm=[0, 2, 1, 3])  # [1, head, pos, d_head]
        k_t = g.op("Transpose", k, perm=[0, 2, 3, 1])  # [1, head, d_head, pos]
        v = g.op("Transpose", v, perm=[0, 2, 1, 3])
        scores = g.op("MatMul", q, k_t)  # [1, head, q, k]
        if cfg.get("scale_attn_weights", True):
            scores = g.op("Div", scores, f32(math.sqrt(d_head)))
        scores = g.op("Add", scores, mask)
        hook(f"{b}.attn.hook_attn_scores", scores)
        pattern = g.op("Softmax", scores, axis=-1)
        hook(f"{b}.attn.hook_pattern", pattern)
        z = g.op("Transpose", g.op("MatMul", pattern, v), perm=[0, 2, 1, 3])  # [1, pos, head, d_head]
        hook(f"{b}.attn.hook_z", z)
        attn_out = linear(g.op("Reshape", z, i64(1, -1, d)), f"h.{layer}.attn.c_proj")
        hook(f"{b}.hook_attn_out", attn_out)
        resid = g.op("Add", resid, attn_out)
        if not attn_only:
            # MLP: resid = resid + mlp(ln2(resid))
            hook(f"{b}.hook_resid_mid", resid)
            normed = layer_norm(resid, f"h.{layer}.ln_2", f"{b}.ln2")
            pre = linear(normed, f"h.{layer}.mlp.c_fc")  # [1, pos, d_mlp]
            hook(f"{b}.mlp.hook_pre", pre)
            # gelu_new: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
            cube = g.op("Mul", pre, g.op("Mul", pre, pre))
            inner = g.op("Mul", g.op("Add", pre, g.op("Mul", cube, f32(0.044715))), f32(math.sqrt(2 / math.pi)))
            post = g.op("Mul", g.op("Mul", pre, f32(0.5)), g.op("Add", g.op("Tanh", inner), f32(1.0)))
            hook(f"{b}.mlp.hook_post", post)
            mlp_out = linear(post, f"h.{layer}.mlp.c_proj")
            hook(f"{b}.hook_mlp_out", mlp_out)
            resid = g.op("Add", resid, mlp_out)
        hook(f"{b}.hook_resid_post", resid)
    normed = layer_norm(resid, "ln_f", "ln_final")
    lm_head = w["wte.weight"] if cfg.get("tie_word_embeddings", True) else w["lm_head.weight"]  # [vocab, d]
    # Gemm with transB reads lm_head as stored: no transposed copy in the file.
    logits = g.op("Gemm", g.op("Reshape", normed, i64(-1, d)), g.const(lm_head), transB=1)  # [pos, vocab]
    g.output("logits", g.op("Reshape", logits, i64(1, -1, cfg["vocab_size"])))


def cnn(out_dir, name, model_dir):
    """src/lens/cnn/model.rs: (conv 3x3 pad 1 -> ReLU -> maxpool 2) per layer, flatten channel-major, fc."""
    cfg = json.loads((model_dir / "config.json").read_text())
    w = {k: v.astype(np.float32) for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    g = Graph()
    x, p = "image", cfg["padding"]
    for layer in range(1, len(cfg["channels"]) + 1):
        conv = f"conv{layer}"
        x = g.op("Conv", x, g.const(w[f"{conv}.weight"]), g.const(w[f"{conv}.bias"]), pads=[p, p, p, p])
        x = g.op("Relu", x)
        if cfg["pool"][layer - 1]:
            x = g.op("MaxPool", x, kernel_shape=[2, 2], strides=[2, 2])  # floor: 7 -> 3, as max_pool2
    flat = g.op("Flatten", x, axis=1)  # [1, fc_in]
    g.output("logits", g.op("Gemm", flat, g.const(w["fc.weight"]), g.const(w["fc.bias"]), transB=1))
    s = cfg["image_size"]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, cfg["in_channels"], s, s])
    g.save(out_dir / f"{name}.onnx", [image], f"glassbox {name} ({model_dir})")
    print(f"wrote {out_dir / name}.onnx")


def matmul(out_dir, n):
    """a [n, n] @ b [n, n], both inputs (nothing to pre-pack), as the engine's matmul peak."""
    g = Graph()
    g.output("c", g.op("MatMul", "a", "b"))
    inputs = [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"]
    g.save(out_dir / f"matmul-{n}.onnx", inputs, f"{n}x{n}x{n} matmul")
    print(f"wrote {out_dir}/matmul-{n}.onnx")


def main(argv):
    out_dir, kind = Path(argv[1]), argv[2]
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == "gpt2":
        gpt2(out_dir, argv[3], Path(argv[4]), "--cache" in argv)
    elif kind == "cnn":
        cnn(out_dir, argv[3], Path(argv[4]))
    elif kind == "matmul":
        matmul(out_dir, int(argv[3]))
    else:
        sys.exit(f"unknown kind {kind}: gpt2, cnn or matmul")


if __name__ == "__main__":
    main(sys.argv)
