"""Golden reference values for the demo model, in the format of tests/golden/README.md.

Everything is computed in float32 from the files as written (model.safetensors and the two
transcoder folders, reloaded), never from the in-memory training copies."""

from __future__ import annotations

import json
import os

import numpy as np
import torch

import transcoders as tcs
from export import sha256

GOLDEN_PROMPTS = [
    "The capital of state containing Dallas is",
    "The opposite of hot is",
    "People in France speak",
]


def f32_list(t: torch.Tensor) -> list:
    """Flat row-major values, each the shortest decimal that round-trips its float32."""
    arr = t.detach().to(torch.float32).contiguous().numpy().reshape(-1)
    assert np.isfinite(arr).all(), "non-finite value"
    return [float(repr(v)) for v in arr]


def packed(t: torch.Tensor) -> dict:
    return {"shape": list(t.shape), "data": f32_list(t)}


@torch.no_grad()
def run_hooks(model, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor, dict]:
    cache: dict = {}
    logits, pre = model(torch.tensor([ids]), cache=cache, return_pre_softcap=True)
    hooks = {}
    for k, v in cache.items():
        v = v[0]
        if k.endswith("attn.hook_pattern"):
            pass  # [H, T, T]
        hooks[k] = v.float()
    return logits[0], pre[0], hooks


@torch.no_grad()
def transcoder_values(plt_p: list[dict], clt_p: dict, hooks: dict, L: int) -> dict:
    """Dense activations (BOS row zeroed) and reconstruction errors (BOS row zeroed, as the
    attribution convention: the whole MLP output at position 0 is a constant)."""
    out = {"plt": {"activations": {}, "reconstruction_error": {}},
           "clt": {"activations": {}, "reconstruction_error": {}}}
    acts = []
    for l in range(L):
        x = hooks[f"blocks.{l}.ln2.hook_normalized"]
        y = hooks[f"blocks.{l}.hook_mlp_out"]
        a, _ = tcs.plt_apply(plt_p[l], x)
        a[0] = 0
        rec = a @ plt_p[l]["W_dec"] + plt_p[l]["b_dec"]
        err = y - rec
        err[0] = 0
        out["plt"]["activations"][str(l)] = packed(a)
        out["plt"]["reconstruction_error"][str(l)] = packed(err)
        ac = tcs.clt_encode(clt_p, l, hooks[f"blocks.{l}.hook_resid_mid"])
        ac[0] = 0
        acts.append(ac)
    for m in range(L):
        err = hooks[f"blocks.{m}.hook_mlp_out"] - tcs.clt_decode(clt_p, acts, m)
        err[0] = 0
        out["clt"]["activations"][str(m)] = packed(acts[m])
        out["clt"]["reconstruction_error"][str(m)] = packed(err)
    return out


def write_golden(path: str, model, tok, plt_p, clt_p, model_dir: str, rel_checkpoint: str) -> int:
    L = model.cfg.num_hidden_layers
    cases = []
    for prompt in GOLDEN_PROMPTS:
        ids = tok.encode(prompt, add_bos=True)
        logits, pre, hooks = run_hooks(model, ids)
        T, V = logits.shape
        case = {
            "prompt": prompt,
            "token_ids": ids,
            "logits": [f32_list(logits[t]) for t in range(T)],
            "logits_pre_softcap": [f32_list(pre[t]) for t in range(T)],
            "hooks": {k: packed(hooks[k]) for k in sorted(hooks)},
            "transcoders": transcoder_values(plt_p, clt_p, hooks, L),
        }
        cases.append(case)
    files = ["config.json", "model.safetensors", "tokenizer.json"]
    for sub in ("transcoders/plt", "transcoders/clt"):
        for f in sorted(os.listdir(os.path.join(model_dir, sub))):
            files.append(f"{sub}/{f}")
    doc = {
        "generator": "native/demo-model/golden.py",
        "checkpoint": rel_checkpoint,
        "checkpoint_sha256": {f: sha256(os.path.join(model_dir, f)) for f in files},
        "dtype": "float32",
        "transcoder_paths": {"plt": "transcoders/plt", "clt": "transcoders/clt"},
        "cases": cases,
    }
    text = json.dumps(doc, separators=(",", ":")) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return len(text)
