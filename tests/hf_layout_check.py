"""Checks that a shipped model directory means the same thing to a GPT-2 reader as it does to our engine.

This is a NumPy GPT-2 forward pass written from the Hugging Face GPT-2 conventions (Conv1D weights stored
[in, out], fused c_attn = [q | k | v], pre-LayerNorm blocks, gelu_new MLP, ln_f, untied lm_head), reading only
the files in the model directory by their Hugging Face names. It shares no code with the Rust engine, so
agreement with the committed native fixture is evidence that `GPT2LMHeadModel.from_pretrained(dir)` computes
the same logits. It is not part of the test command (that would need Python on every machine); run it with

    python3 -m venv /tmp/hfv && /tmp/hfv/bin/pip install numpy safetensors
    /tmp/hfv/bin/python tests/hf_layout_check.py [public/models/induction] [tests/fixtures/induction_native.json]
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def forward(cfg, t, ids):
    n = len(ids)
    d, nh = cfg["n_embd"], cfg["n_head"]
    dh = d // nh
    eps = cfg["layer_norm_epsilon"]
    h = t["transformer.wte.weight"][ids] + t["transformer.wpe.weight"][np.arange(n)]
    patterns = []
    for l in range(cfg["n_layer"]):
        p = f"transformer.h.{l}."
        a = layer_norm(h, t[p + "ln_1.weight"], t[p + "ln_1.bias"], eps)
        qkv = a @ t[p + "attn.c_attn.weight"] + t[p + "attn.c_attn.bias"]
        q, k, v = (qkv[:, i * d:(i + 1) * d].reshape(n, nh, dh).transpose(1, 0, 2) for i in range(3))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        scores = np.where(np.tril(np.ones((n, n), bool)), scores, -np.inf)
        scores -= scores.max(-1, keepdims=True)
        pat = np.exp(scores)
        pat /= pat.sum(-1, keepdims=True)
        patterns.append(pat)
        z = (pat @ v).transpose(1, 0, 2).reshape(n, d)
        h = h + z @ t[p + "attn.c_proj.weight"] + t[p + "attn.c_proj.bias"]
        # Attention-only models store zero MLP weights, so this adds exactly zero for them.
        m = layer_norm(h, t[p + "ln_2.weight"], t[p + "ln_2.bias"], eps)
        m = gelu_new(m @ t[p + "mlp.c_fc.weight"] + t[p + "mlp.c_fc.bias"])
        h = h + m @ t[p + "mlp.c_proj.weight"] + t[p + "mlp.c_proj.bias"]
    h = layer_norm(h, t["transformer.ln_f.weight"], t["transformer.ln_f.bias"], eps)
    head = t["lm_head.weight"] if "lm_head.weight" in t else t["transformer.wte.weight"]
    return h @ head.T, patterns


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else "public/models/induction"
    fixture_path = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/induction_native.json"
    cfg = json.load(open(f"{model_dir}/config.json"))
    assert cfg["model_type"] == "gpt2", cfg["model_type"]
    t = {k: v.astype(np.float64) for k, v in load_file(f"{model_dir}/model.safetensors").items()}
    fixture = json.load(open(fixture_path))
    worst = 0.0
    for seq in fixture["sequences"]:
        ids = np.array(seq["tokens"])
        logits, patterns = forward(cfg, t, ids)
        want = np.array(seq["logits"]).reshape(logits.shape)
        diff = float(np.abs(logits - want).max())
        pdiff = max(
            float(np.abs(patterns[l][h] - np.array(seq["patterns"][l][h]).reshape(len(ids), len(ids))).max())
            for l in range(cfg["n_layer"])
            for h in range(cfg["n_head"])
        )
        worst = max(worst, diff, pdiff)
        print(f"{seq['name']:>12}: {len(ids)} tokens, max |logit difference| {diff:.2e}, max |pattern difference| {pdiff:.2e}")
    print(f"worst {worst:.2e}")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
