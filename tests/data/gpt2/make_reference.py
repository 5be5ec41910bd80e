#!/usr/bin/python3
"""Test data of the GPT-2 family: two small random-weight GPT2LMHeadModel checkpoints and the
logits an independent PyTorch forward computes for them (tests/test_gpt2.c compares fipsc's).

The forward below is written from the documented equations of GPT-2 (Radford et al. 2019;
transformers' GPT2Model / GPT2LMHeadModel), not from fipsc's code, and runs in float64 on the
checkpoints' stored values (BF16 ones upcast), so it is the exact answer fipsc's float32 must
approach. Regenerate (Debian: apt-get install python3-torch):

    /usr/bin/python3 tests/data/gpt2/make_reference.py tests/data/gpt2

Writes, into the directory given:
  tiny/config.json, tiny/model.safetensors   F32, GPT2LMHeadModel names ("transformer.h.0..."),
                                             gelu_new, separate lm_head (tie_word_embeddings false)
  bare.safetensors                           BF16, a bare GPT2Model's names ("h.0..."), with the
                                             causal-mask buffers attn.bias / attn.masked_bias, the
                                             config in __metadata__ "config", exact gelu, n_inner
                                             not 4·n_embd, scale_attn_by_inverse_layer_idx, tied head
  reference.json                             per checkpoint: token sequences and float64 logits
"""
import json
import math
import os
import struct
import sys

import torch

CHECKPOINTS = {
    "tiny": dict(vocab_size=97, n_positions=32, n_embd=48, n_layer=3, n_head=4, n_inner=None,
                 activation_function="gelu_new", layer_norm_epsilon=1e-5, scale_attn_weights=True,
                 scale_attn_by_inverse_layer_idx=False, tie_word_embeddings=False,
                 bos_token_id=0, eos_token_id=1),
    "bare": dict(vocab_size=61, n_positions=24, n_embd=32, n_layer=2, n_head=2, n_inner=80,
                 activation_function="gelu", layer_norm_epsilon=1e-5, scale_attn_weights=True,
                 scale_attn_by_inverse_layer_idx=True, tie_word_embeddings=True,
                 bos_token_id=0, eos_token_id=0),
}


def random_weights(cfg, gen):
    """GPT2LMHeadModel's tensors, Conv1D weights [in, out], scaled so that every block matters."""
    E, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    F = cfg["n_inner"] or 4 * E

    def randn(*shape, std):
        return torch.randn(*shape, generator=gen, dtype=torch.float32) * std

    w = {"transformer.wte.weight": randn(V, E, std=0.5), "transformer.wpe.weight": randn(P, E, std=0.3)}
    for l in range(cfg["n_layer"]):
        p = f"transformer.h.{l}."
        w[p + "ln_1.weight"] = 1 + randn(E, std=0.1)
        w[p + "ln_1.bias"] = randn(E, std=0.1)
        w[p + "attn.c_attn.weight"] = randn(E, 3 * E, std=0.25)
        w[p + "attn.c_attn.bias"] = randn(3 * E, std=0.1)
        w[p + "attn.c_proj.weight"] = randn(E, E, std=0.2)
        w[p + "attn.c_proj.bias"] = randn(E, std=0.1)
        w[p + "ln_2.weight"] = 1 + randn(E, std=0.1)
        w[p + "ln_2.bias"] = randn(E, std=0.1)
        w[p + "mlp.c_fc.weight"] = randn(E, F, std=0.2)
        w[p + "mlp.c_fc.bias"] = randn(F, std=0.1)
        w[p + "mlp.c_proj.weight"] = randn(F, E, std=0.15)
        w[p + "mlp.c_proj.bias"] = randn(E, std=0.1)
    w["transformer.ln_f.weight"] = 1 + randn(E, std=0.1)
    w["transformer.ln_f.bias"] = randn(E, std=0.1)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = randn(V, E, std=0.3)
    return w


def gelu(x, kind):
    if kind == "gelu_new":  # the tanh approximation
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))  # exact


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased
    return (x - mu) / torch.sqrt(var + eps) * g + b


def forward(w, cfg, tokens):
    """logits [T, V] of one sequence, in float64."""
    E, H = cfg["n_embd"], cfg["n_head"]
    hd, T = E // H, len(tokens)
    eps = cfg["layer_norm_epsilon"]
    x = w["transformer.wte.weight"][tokens] + w["transformer.wpe.weight"][torch.arange(T)]
    causal = torch.ones(T, T).tril().bool()
    for l in range(cfg["n_layer"]):
        p = f"transformer.h.{l}."
        h = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: x·W + b
        q, k, v = (qkv[:, i * E:(i + 1) * E].reshape(T, H, hd).transpose(0, 1) for i in range(3))
        s = q @ k.transpose(1, 2)
        if cfg["scale_attn_weights"]:
            s = s / math.sqrt(hd)
        if cfg["scale_attn_by_inverse_layer_idx"]:
            s = s / (l + 1)
        s = s.masked_fill(~causal, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v  # [H, T, hd]
        a = a.transpose(0, 1).reshape(T, E)
        x = x + a @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        m = gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], cfg["activation_function"])
        x = x + m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    head = w["transformer.wte.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def safetensors_bytes(tensors, dtype, metadata):
    """A safetensors file: u64 header length, JSON header, then the data (little-endian)."""
    header, chunks, at = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        if dtype == "BF16":
            data, dt = struct.pack(f"<{t.numel()}h", *t.to(torch.bfloat16).view(torch.int16).flatten().tolist()), "BF16"
        else:
            data, dt = struct.pack(f"<{t.numel()}f", *t.flatten().tolist()), "F32"
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [at, at + len(data)]}
        chunks.append(data)
        at += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def config_json(cfg):
    return dict(architectures=["GPT2LMHeadModel"], model_type="gpt2", **cfg)


def main(out):
    gen = torch.Generator().manual_seed(20261203)
    reference = {}
    for name, cfg in CHECKPOINTS.items():
        w = random_weights(cfg, gen)
        if name == "bare":  # what the file stores, the reference runs on
            w = {k: v.to(torch.bfloat16).to(torch.float32) for k, v in w.items()}
        w64 = {k: v.to(torch.float64) for k, v in w.items()}
        tokens = [torch.randint(cfg["vocab_size"], (n,), generator=gen).tolist() for n in (cfg["n_positions"], 7)]
        logits = [forward(w64, cfg, torch.tensor(t)).flatten().tolist() for t in tokens]
        reference[name] = {"tokens": tokens, "logits": logits}
        conf = json.dumps(config_json(cfg), indent=2)
        if name == "tiny":
            os.makedirs(os.path.join(out, "tiny"), exist_ok=True)
            with open(os.path.join(out, "tiny", "config.json"), "w") as f:
                f.write(conf + "\n")
            with open(os.path.join(out, "tiny", "model.safetensors"), "wb") as f:
                f.write(safetensors_bytes(w, "F32", {"format": "pt"}))
        else:
            bare = {}
            for k, v in w.items():
                k = k[len("transformer."):]
                bare[k] = v
                if k.endswith("attn.c_attn.weight"):  # the buffers of older checkpoints
                    P = cfg["n_positions"]
                    bare[k.replace("c_attn.weight", "bias")] = torch.ones(1, 1, P, P).tril()
                    bare[k.replace("c_attn.weight", "masked_bias")] = torch.tensor(-1e4)
            with open(os.path.join(out, "bare.safetensors"), "wb") as f:
                f.write(safetensors_bytes(bare, "BF16", {"format": "pt", "config": conf}))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
