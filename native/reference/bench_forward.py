#!/usr/bin/python3
"""PyTorch side of bench/forward.ts: load a checkpoint (+ optional per-layer transcoder set)
and time float32 forward passes on given token ids.

    /usr/bin/python3 native/reference/bench_forward.py --model DIR [--transcoders DIR]
        --tokens TOKENS.json --out OUT_DIR [--repeat 5] [--threads 2] [--impl lean|reference]

TOKENS.json: {"16": [ids...], "64": [ids...]}. For every length: one warm-up pass, then
--repeat timed passes; the last pass's logits [T, V] go to OUT_DIR/torch-logits-<T>.f32
(raw little-endian float32). One JSON object on stdout's last line: load time, per-length
times, peak RSS (ru_maxrss) and RSS right after loading.

Tensors come from the reference's own readers (tensorio.load_checkpoint, transcoders.load),
decoded to float32 as the engine does. --impl lean (default) times a plain eager forward
written with torch built-ins (F.linear, F.layer_norm, F.gelu, ...): the reference's
model.forward records every hook and asserts on every attention pattern, which is not what
a PyTorch user would time. --impl reference times model.forward itself. Either way the lean
pass's logits are checked against model.forward once (reported as reference_check).
Transcoders: pre = x·W_encᵀ + b_enc at the read hook, JumpReLU pre·[pre > θ] (ReLU without
a threshold), position 0 zeroed; decoders are not run (the engine's graph has none either).
"""

import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import model as reference  # noqa: E402
import transcoders as reference_tc  # noqa: E402
from tensorio import load_checkpoint, read_json  # noqa: E402


def vm_rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


# ---------------------------------------------------------------------------------------
# Loading


GPT2_LAYER_TENSORS = [
    f"{m}.{p}"
    for m in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj")
    for p in ("weight", "bias")
]


def prepare(cfg: dict, W: dict) -> dict:
    """Per-layer weight lists plus derived constants (Gemma's 1 + w gains folded in once)."""
    mt = cfg["model_type"]
    if mt == "gpt2":
        pre = "transformer." if "transformer.wte.weight" in W else ""
        g = lambda n: W[pre + n]  # noqa: E731
        layers = [{k: g(f"h.{l}.{k}") for k in GPT2_LAYER_TENSORS} for l in range(cfg["n_layer"])]
        return {
            "wte": g("wte.weight"),
            "wpe": g("wpe.weight"),
            "layers": layers,
            "ln_f": (g("ln_f.weight"), g("ln_f.bias")),
        }
    gemma = mt == "gemma2"
    gain = (lambda w: 1.0 + w) if gemma else (lambda w: w)
    layers = []
    for l in range(cfg["num_hidden_layers"]):
        b = f"model.layers.{l}."
        w = lambda n: W[b + n]  # noqa: E731
        p = {
            "ln1": gain(w("input_layernorm.weight")),
            "q": w("self_attn.q_proj.weight"),
            "k": w("self_attn.k_proj.weight"),
            "v": w("self_attn.v_proj.weight"),
            "o": w("self_attn.o_proj.weight"),
            "gate": w("mlp.gate_proj.weight"),
            "up": w("mlp.up_proj.weight"),
            "down": w("mlp.down_proj.weight"),
        }
        if gemma:
            p["ln1_post"] = gain(w("post_attention_layernorm.weight"))
            p["ln2"] = gain(w("pre_feedforward_layernorm.weight"))
            p["ln2_post"] = gain(w("post_feedforward_layernorm.weight"))
        else:
            p["ln2"] = w("post_attention_layernorm.weight")
        if mt == "qwen3":
            p["q_norm"] = w("self_attn.q_norm.weight")
            p["k_norm"] = w("self_attn.k_norm.weight")
        layers.append(p)
    embed = W["model.embed_tokens.weight"]
    unembed = embed if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return {"embed": embed, "unembed": unembed, "layers": layers, "norm": gain(W["model.norm.weight"])}


def load_transcoders(folder: str):
    tc = reference_tc.load(folder)
    cfg = tc["config"]
    assert cfg["model_kind"] == "transcoder_set", "only per-layer transcoders are benchmarked"
    assert cfg.get("activation") in (None, "relu", "jumprelu"), f"unsupported activation {cfg.get('activation')}"
    layers = []
    for p in tc["layers"]:
        layers.append({"W_enc": p["W_enc"].contiguous(), "b_enc": p["b_enc"], "threshold": p["threshold"]})
    del tc  # drop decoders: only the encoders are timed
    return {"read": cfg["feature_input_hook"], "layers": layers}


# ---------------------------------------------------------------------------------------
# Lean forward (torch built-ins)


def rms(x, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def encode(tc, l, x):
    p = tc["layers"][l]
    pre = F.linear(x, p["W_enc"], p["b_enc"])
    acts = pre * (pre > p["threshold"]) if p["threshold"] is not None else torch.relu(pre)
    acts[0] = 0
    return acts


def attend(q, k, v, scale, softcap, mask):
    """q [H,T,hd], k/v [KV,T,hd], mask [T,T] bool (True = visible) → [T, H·hd]."""
    H, T, hd = q.shape
    group = H // k.shape[0]
    if group > 1:
        k = k.repeat_interleave(group, dim=0)
        v = v.repeat_interleave(group, dim=0)
    s = torch.matmul(q, k.transpose(1, 2)) * scale
    if softcap:
        s = torch.tanh(s / softcap) * softcap
    s = s.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v).transpose(0, 1).reshape(T, H * hd)


def lean_forward(cfg, P, tc, ids):
    if cfg["model_type"] == "gpt2":
        return lean_gpt2(cfg, P, tc, ids)
    return lean_llama_like(cfg, P, tc, ids)


def lean_gpt2(cfg, P, tc, ids):
    d, H = cfg["n_embd"], cfg["n_head"]
    hd = d // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    T = len(ids)
    x = P["wte"][torch.tensor(ids)] + P["wpe"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    acts = []
    for l, p in enumerate(P["layers"]):
        h = F.layer_norm(x, (d,), p["ln_1.weight"], p["ln_1.bias"], eps)
        qkv = torch.addmm(p["attn.c_attn.bias"], h, p["attn.c_attn.weight"])
        q, k, v = (t.reshape(T, H, hd).transpose(0, 1) for t in qkv.split(d, dim=1))
        z = attend(q, k, v, 1.0 / math.sqrt(hd), None, mask)
        x = x + torch.addmm(p["attn.c_proj.bias"], z, p["attn.c_proj.weight"])
        h = F.layer_norm(x, (d,), p["ln_2.weight"], p["ln_2.bias"], eps)
        if tc is not None:
            if tc["read"] == "ln2.hook_normalized":
                read = F.layer_norm(x, (d,), eps=eps)
            else:
                read = {"hook_resid_mid": x, "mlp.hook_in": h}[tc["read"]]
            acts.append(encode(tc, l, read))
        m = F.gelu(torch.addmm(p["mlp.c_fc.bias"], h, p["mlp.c_fc.weight"]), approximate="tanh")
        x = x + torch.addmm(p["mlp.c_proj.bias"], m, p["mlp.c_proj.weight"])
    u = F.layer_norm(x, (d,), P["ln_f"][0], P["ln_f"][1], eps)
    return torch.matmul(u, P["wte"].t()), acts


def lean_llama_like(cfg, P, tc, ids):
    mt = cfg["model_type"]
    gemma, qwen = mt == "gemma2", mt == "qwen3"
    d = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or d // H
    eps = cfg["rms_norm_eps"]
    T = len(ids)
    cos, sin = reference.rope_cos_sin(T, hd, reference.rope_params(cfg))
    half = hd // 2

    def rope(t):  # t [heads, T, hd], half-split
        rot = torch.cat([-t[..., half:], t[..., :half]], dim=-1)
        return t * cos + rot * sin

    causal = torch.ones(T, T, dtype=torch.bool).tril()
    window = cfg.get("sliding_window") if gemma else None
    windowed = causal & ~torch.ones(T, T, dtype=torch.bool).tril(-window) if window else causal
    scale = float(cfg["query_pre_attn_scalar"]) ** -0.5 if gemma else 1.0 / math.sqrt(hd)
    attn_cap = cfg.get("attn_logit_softcapping") if gemma else None
    act = (lambda t: F.gelu(t, approximate="tanh")) if gemma else F.silu
    x = P["embed"][torch.tensor(ids)]
    if gemma:
        x = x * torch.tensor(math.sqrt(d), dtype=torch.float32)
    acts = []
    for l, p in enumerate(P["layers"]):
        h = rms(x, eps) * p["ln1"]
        q = F.linear(h, p["q"]).reshape(T, H, hd)
        k = F.linear(h, p["k"]).reshape(T, KV, hd)
        v = F.linear(h, p["v"]).reshape(T, KV, hd)
        if qwen:
            q = rms(q, eps) * p["q_norm"]
            k = rms(k, eps) * p["k_norm"]
        mask = windowed if gemma and l % 2 == 0 else causal
        z = attend(rope(q.transpose(0, 1)), rope(k.transpose(0, 1)), v.transpose(0, 1), scale, attn_cap, mask)
        a = F.linear(z, p["o"])
        if gemma:
            a = rms(a, eps) * p["ln1_post"]
        x = x + a
        n = rms(x, eps)
        h = n * p["ln2"]
        if tc is not None:
            read = {"ln2.hook_normalized": n, "mlp.hook_in": h, "hook_resid_mid": x}[tc["read"]]
            acts.append(encode(tc, l, read))
        m = F.linear(act(F.linear(h, p["gate"])) * F.linear(h, p["up"]), p["down"])
        if gemma:
            m = rms(m, eps) * p["ln2_post"]
        x = x + m
    logits = torch.matmul(rms(x, eps) * P["norm"], P["unembed"].t())
    cap = cfg.get("final_logit_softcapping") if gemma else None
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits, acts


def reference_forward(cfg, W, tc, ids):
    _pre, logits, hooks = reference.forward(cfg, W, ids)
    acts = []
    if tc is not None:
        for l in range(len(tc["layers"])):
            acts.append(encode(tc, l, hooks[f"blocks.{l}.{tc['read']}"]))
    return logits, acts


# ---------------------------------------------------------------------------------------


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--transcoders")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--impl", choices=("lean", "reference"), default="lean")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tokens = {int(k): v for k, v in read_json(args.tokens).items()}

    t0 = time.perf_counter()
    cfg = read_json(os.path.join(args.model, "config.json"))
    W = load_checkpoint(args.model)
    P = prepare(cfg, W)
    tc = load_transcoders(args.transcoders) if args.transcoders else None
    load_ms = (time.perf_counter() - t0) * 1000
    rss_after_load = vm_rss_kb()

    if args.impl == "lean":
        fwd = lambda ids: lean_forward(cfg, P, tc, ids)  # noqa: E731
    else:
        fwd = lambda ids: reference_forward(cfg, W, tc, ids)  # noqa: E731

    runs = []
    check = None
    with torch.no_grad():
        for T in sorted(tokens):
            ids = tokens[T]
            logits, acts = fwd(ids)  # warm-up
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                logits, acts = fwd(ids)
                times.append((time.perf_counter() - t) * 1000)
            logits.contiguous().numpy().astype("<f4").tofile(os.path.join(args.out, f"torch-logits-{T}.f32"))
            active = [float((a[1:] != 0).float().mean()) for a in acts]
            runs.append({"tokens": T, "times_ms": times, "active_fraction": active})
            if check is None:
                # the lean pass against the reference's own forward, once
                try:
                    lean = lean_forward(cfg, P, tc, ids)[0]
                    ref = reference.forward(cfg, W, ids)[1]
                    check = {"tokens": T, "max_abs_logits": float((lean - ref).abs().max())}
                except Exception as e:  # noqa: BLE001 - reported, not fatal
                    check = {"tokens": T, "error": f"{type(e).__name__}: {e}"}

    result = {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "impl": args.impl,
        "threads": torch.get_num_threads(),
        "load_ms": load_ms,
        "rss_after_load_kb": rss_after_load,
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "runs": runs,
        "reference_check": check,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
