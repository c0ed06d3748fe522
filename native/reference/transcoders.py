"""Transcoders on recorded hooks (shared/docs/attribution.md §1, §8, formats.md).

PLT: a = act(x·W_encᵀ + b_enc); recon = a·W_dec + b_dec (+ x·W_skipᵀ).
CLT: a_s = act(x_s·W_enc_sᵀ + b_enc_s); recon[m] = b_dec[m] + Σ_{s≤m} a_s·W_dec_s[:, m−s, :].
act: JumpReLU pre·[pre > θ] with a threshold, TopK(k) when the config says so, else ReLU.
error = (write-hook value) − recon. Activations and errors at position 0 (BOS) are zeroed.
"""

import os

import numpy as np
import torch

from tensorio import read_npz, read_safetensors, read_simple_yaml


def topk_relu(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest pre-activations per row (ties → lower index), then ReLU."""
    out = torch.zeros_like(pre)
    arr = pre.numpy()
    for t in range(arr.shape[0]):
        order = np.argsort(-arr[t], kind="stable")[:k]  # stable: equal values keep index order
        out[t, torch.from_numpy(order.copy())] = pre[t, torch.from_numpy(order.copy())]
    return torch.relu(out)


def activation(pre, threshold, kind, k):
    if kind == "topk":
        return topk_relu(pre, int(k))
    if threshold is not None:
        return pre * (pre > threshold).to(pre.dtype)
    assert kind in (None, "relu"), f"unsupported activation {kind}"
    return torch.relu(pre)


def _orient(w: torch.Tensor, d_t: int, name: str) -> torch.Tensor:
    """Return w as [d_t, d], whichever way it was stored (matched against b_enc's length)."""
    if w.shape[0] == d_t:
        return w
    assert w.shape[1] == d_t, f"{name}: shape {tuple(w.shape)} does not fit d_t {d_t}"
    return w.t().contiguous()


def load(folder: str) -> dict:
    cfg = read_simple_yaml(os.path.join(folder, "config.yaml"))
    tc = {"config": cfg, "layers": []}
    if cfg["model_kind"] == "cross_layer_transcoder":
        l = 0
        while os.path.exists(os.path.join(folder, f"W_enc_{l}.safetensors")):
            enc = read_safetensors(os.path.join(folder, f"W_enc_{l}.safetensors"))
            dec = read_safetensors(os.path.join(folder, f"W_dec_{l}.safetensors"))
            tc["layers"].append(
                {
                    "W_enc": enc[f"W_enc_{l}"],
                    "b_enc": enc[f"b_enc_{l}"],
                    "b_dec": enc[f"b_dec_{l}"],
                    "threshold": enc.get(f"threshold_{l}"),
                    "W_dec": dec[f"W_dec_{l}"],  # [d_t, L − l, d]
                }
            )
            l += 1
        return tc
    assert cfg["model_kind"] == "transcoder_set"
    for rel in cfg["transcoders"]:
        path = os.path.join(folder, rel)
        t = read_npz(path) if path.endswith(".npz") else read_safetensors(path)
        d_t = t["b_enc"].shape[0]
        threshold = t.get("threshold", t.get("activation_function.threshold"))
        tc["layers"].append(
            {
                "W_enc": _orient(t["W_enc"], d_t, f"{rel}:W_enc"),
                "W_dec": _orient(t["W_dec"], d_t, f"{rel}:W_dec"),
                "b_enc": t["b_enc"],
                "b_dec": t["b_dec"],
                "threshold": threshold,
                "W_skip": t.get("W_skip"),
                "transposed": t["W_enc"].shape[0] != d_t,
            }
        )
    return tc


def _hook(hooks, l, name):
    return hooks[f"blocks.{l}.{name}"]


def run(tc: dict, hooks: dict):
    """({layer: activations [T, d_t]}, {layer: error [T, d]}), BOS rows zeroed."""
    cfg = tc["config"]
    kind, k = cfg.get("activation"), cfg.get("k")
    read, write = cfg["feature_input_hook"], cfg["feature_output_hook"]
    acts, errs = {}, {}
    if cfg["model_kind"] == "cross_layer_transcoder":
        L = len(tc["layers"])
        for s, p in enumerate(tc["layers"]):
            assert p["W_dec"].shape[1] == L - s
            x = _hook(hooks, s, read)
            acts[s] = activation(torch.matmul(x, p["W_enc"].t()) + p["b_enc"], p["threshold"], kind, k)
        for m in range(L):
            recon = tc["layers"][m]["b_dec"].clone()
            for s in range(m + 1):
                recon = recon + torch.matmul(acts[s], tc["layers"][s]["W_dec"][:, m - s, :])
            errs[m] = _hook(hooks, m, write) - recon
    else:
        for l, p in enumerate(tc["layers"]):
            x = _hook(hooks, l, read)
            a = activation(torch.matmul(x, p["W_enc"].t()) + p["b_enc"], p["threshold"], kind, k)
            recon = torch.matmul(a, p["W_dec"]) + p["b_dec"]
            if p["W_skip"] is not None:
                recon = recon + torch.matmul(x, p["W_skip"].t())
            acts[l] = a
            errs[l] = _hook(hooks, l, write) - recon
    for l in acts:
        acts[l] = acts[l].clone()
        acts[l][0] = 0
    for l in errs:
        errs[l] = errs[l].clone()
        errs[l][0] = 0
    return acts, errs
