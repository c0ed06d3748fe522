"""Plain float32 PyTorch forward passes of the four families, written from
shared/docs/formats.md, recording every hook of tests/golden/README.md.

No `transformers`: every step is spelled out so it can be checked against the spec by eye.
Shapes: x [T, d]; q [H, T, hd]; k, v [KV, T, hd]; pattern [H, T, T].
"""

import math

import torch

F32 = torch.float32


# ---------------------------------------------------------------------------------------
# Config helpers (accept old and new spellings)


def rope_params(cfg: dict) -> dict:
    """{'theta', 'rope_type', ...} from `rope_parameters` or `rope_scaling` + `rope_theta`."""
    if cfg.get("rope_parameters"):
        p = dict(cfg["rope_parameters"])
        p["theta"] = p["rope_theta"]
    else:
        p = dict(cfg.get("rope_scaling") or {})
        p["theta"] = cfg["rope_theta"]
    p.setdefault("rope_type", p.get("type", "default"))
    return p


# ---------------------------------------------------------------------------------------
# Building blocks


def rms_scale(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Frozen RMSNorm scale 1/sqrt(mean(x²)+eps) over the last dim, shape x.shape[:-1]."""
    return 1.0 / torch.sqrt((x * x).mean(dim=-1) + eps)


def layernorm_parts(x: torch.Tensor, eps: float):
    """(centered x, scale 1/sqrt(mean(xc²)+eps))."""
    xc = x - x.mean(dim=-1, keepdim=True)
    return xc, 1.0 / torch.sqrt((xc * xc).mean(dim=-1) + eps)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """gelu_new / gelu_pytorch_tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def silu(x: torch.Tensor) -> torch.Tensor:
    return x / (1.0 + torch.exp(-x))


def softcap(x: torch.Tensor, cap: float) -> torch.Tensor:
    return cap * torch.tanh(x / cap)


def rope_inv_freq(head_dim: int, p: dict) -> torch.Tensor:
    """inv_freq[i] = θ^(−2i/d) (float64), with Llama-3 scaling when rope_type is llama3."""
    theta = float(p["theta"])
    inv = [theta ** (-(2.0 * i) / head_dim) for i in range(head_dim // 2)]
    if p["rope_type"] == "llama3":
        factor = float(p["factor"])
        low = float(p["low_freq_factor"])
        high = float(p["high_freq_factor"])
        l_orig = float(p["original_max_position_embeddings"])
        out = []
        branches = set()
        for f in inv:
            wl = 2.0 * math.pi / f
            if wl < l_orig / high:
                out.append(f)
                branches.add("keep")
            elif wl > l_orig / low:
                out.append(f / factor)
                branches.add("divide")
            else:
                s = (l_orig / wl - low) / (high - low)
                out.append((1.0 - s) * f / factor + s * f)
                branches.add("blend")
        rope_inv_freq.branches = branches  # for the sanity report
        inv = out
    else:
        assert p["rope_type"] == "default", f"unsupported rope_type {p['rope_type']}"
    return torch.tensor(inv, dtype=torch.float64)


def rope_cos_sin(T: int, head_dim: int, p: dict):
    inv = rope_inv_freq(head_dim, p)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]  # [T, hd/2]
    emb = torch.cat([ang, ang], dim=-1)  # concat(f, f)
    return torch.cos(emb).to(F32), torch.sin(emb).to(F32)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [heads, T, hd] (half-split, not interleaved)."""
    return x * cos[None] + rotate_half(x) * sin[None]


def attention(q, k, v, *, scale, attn_softcap=None, window=None, check=None):
    """q [H,T,hd], k/v [KV,T,hd] → (output [T, H·hd], pattern [H,T,T]).

    Scores are soft-capped before masking; key j is visible from query i iff
    0 ≤ i − j (< window when sliding). Softmax in float32; masked entries exactly 0.
    """
    H, T, hd = q.shape
    KV = k.shape[0]
    group = H // KV
    kk = torch.stack([k[j // group] for j in range(H)])  # query head j uses kv head j // (H/KV)
    vv = torch.stack([v[j // group] for j in range(H)])
    scores = torch.matmul(q, kk.transpose(1, 2)) * scale
    if check is not None:
        check["max_abs_score_precap"] = max(check.get("max_abs_score_precap", 0.0), scores.abs().max().item())
    if attn_softcap is not None:
        scores = softcap(scores, attn_softcap)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    visible = (i - j) >= 0
    if window is not None:
        visible = visible & ((i - j) < window)
    scores = scores.masked_fill(~visible[None], float("-inf"))
    pattern = torch.softmax(scores, dim=-1)
    # sanity: rows sum to 1, masked entries exactly 0, visible entries positive
    assert torch.allclose(pattern.sum(-1), torch.ones(H, T), atol=1e-5)
    assert bool((pattern[:, ~visible] == 0).all())
    assert bool((pattern[:, visible] > 0).all())
    out = torch.matmul(pattern, vv)  # [H, T, hd]
    return out.transpose(0, 1).reshape(T, H * hd), pattern


def lin(x, w, b=None):
    """Linear layer with weight [out, in]: y = x·Wᵀ (+ b)."""
    y = torch.matmul(x, w.t())
    return y if b is None else y + b


# ---------------------------------------------------------------------------------------
# Families


def forward(cfg: dict, W: dict, ids: list, check: dict = None):
    """Returns (logits_pre_softcap [T,V], logits [T,V], hooks {name: tensor})."""
    mt = cfg["model_type"]
    if mt == "gpt2":
        return _gpt2(cfg, W, ids)
    if mt in ("llama", "qwen3", "gemma2"):
        return _llama_like(cfg, W, ids, mt, check if check is not None else {})
    raise ValueError(f"unsupported model_type {mt}")


def _gpt2(cfg, W, ids):
    pre = "transformer." if "transformer.wte.weight" in W else ""
    g = lambda n: W[pre + n]  # noqa: E731
    d, L, H = cfg["n_embd"], cfg["n_layer"], cfg["n_head"]
    hd = d // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    T = len(ids)
    hooks = {}
    tok = g("wte.weight")[torch.tensor(ids)]
    pos = g("wpe.weight")[:T]
    hooks["hook_embed"] = tok
    hooks["hook_pos_embed"] = pos
    x = tok + pos
    for l in range(L):
        b = f"h.{l}."
        B = f"blocks.{l}."
        hooks[B + "hook_resid_pre"] = x
        # attention (Conv1D weights are [in, out]: y = x·W + b)
        xc, s = layernorm_parts(x, eps)
        hooks[B + "ln1.hook_scale"] = s
        hooks[B + "ln1.hook_normalized"] = xc * s[:, None]
        h = xc * s[:, None] * g(b + "ln_1.weight") + g(b + "ln_1.bias")
        qkv = torch.matmul(h, g(b + "attn.c_attn.weight")) + g(b + "attn.c_attn.bias")
        q, k, v = qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :]
        heads = lambda t: t.reshape(T, H, hd).transpose(0, 1)  # noqa: E731
        z, pattern = attention(heads(q), heads(k), heads(v), scale=1.0 / math.sqrt(hd))
        hooks[B + "attn.hook_pattern"] = pattern
        attn_out = torch.matmul(z, g(b + "attn.c_proj.weight")) + g(b + "attn.c_proj.bias")
        hooks[B + "hook_attn_out"] = attn_out
        x = x + attn_out
        hooks[B + "hook_resid_mid"] = x
        # MLP
        xc, s = layernorm_parts(x, eps)
        hooks[B + "ln2.hook_scale"] = s
        hooks[B + "ln2.hook_normalized"] = xc * s[:, None]
        h = xc * s[:, None] * g(b + "ln_2.weight") + g(b + "ln_2.bias")
        hooks[B + "mlp.hook_in"] = h
        m = gelu_tanh(torch.matmul(h, g(b + "mlp.c_fc.weight")) + g(b + "mlp.c_fc.bias"))
        m = torch.matmul(m, g(b + "mlp.c_proj.weight")) + g(b + "mlp.c_proj.bias")
        hooks[B + "mlp.hook_out"] = m
        hooks[B + "hook_mlp_out"] = m
        x = x + m
        hooks[B + "hook_resid_post"] = x
    xc, s = layernorm_parts(x, eps)
    hooks["ln_final.hook_scale"] = s
    u = xc * s[:, None] * g("ln_f.weight") + g("ln_f.bias")
    hooks["unembed.hook_in"] = u
    logits = torch.matmul(u, g("wte.weight").t())  # tied
    return logits, logits, hooks


def _llama_like(cfg, W, ids, mt, check):
    gemma = mt == "gemma2"
    qwen = mt == "qwen3"
    d = cfg["hidden_size"]
    L = cfg["num_hidden_layers"]
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or d // H
    eps = cfg["rms_norm_eps"]
    T = len(ids)
    cos, sin = rope_cos_sin(T, hd, rope_params(cfg))
    gain = (lambda w: 1.0 + w) if gemma else (lambda w: w)
    if gemma:
        scale = float(cfg["query_pre_attn_scalar"]) ** -0.5
        attn_cap = cfg.get("attn_logit_softcapping")
        final_cap = cfg.get("final_logit_softcapping")
        window = cfg.get("sliding_window")
    else:
        scale = 1.0 / math.sqrt(hd)
        attn_cap = final_cap = window = None
        assert not cfg.get("use_sliding_window"), "sliding window only for gemma2 here"
    hooks = {}
    E = W["model.embed_tokens.weight"]
    x = E[torch.tensor(ids)]
    if gemma:
        x = x * torch.tensor(math.sqrt(d), dtype=F32)  # √hidden cast to float32
    hooks["hook_embed"] = x
    act = gelu_tanh if gemma else silu
    for l in range(L):
        b = f"model.layers.{l}."
        B = f"blocks.{l}."
        w = lambda n: W[b + n]  # noqa: E731
        hooks[B + "hook_resid_pre"] = x
        # attention
        s = rms_scale(x, eps)
        hooks[B + "ln1.hook_scale"] = s
        hooks[B + "ln1.hook_normalized"] = x * s[:, None]
        h = x * s[:, None] * gain(w("input_layernorm.weight"))
        q = lin(h, w("self_attn.q_proj.weight")).reshape(T, H, hd)
        k = lin(h, w("self_attn.k_proj.weight")).reshape(T, KV, hd)
        v = lin(h, w("self_attn.v_proj.weight")).reshape(T, KV, hd)
        if qwen:  # per-head RMSNorm on q and k, before RoPE
            qs = rms_scale(q, eps)
            ks = rms_scale(k, eps)
            hooks[B + "attn.hook_q_scale"] = qs
            hooks[B + "attn.hook_k_scale"] = ks
            q = q * qs[..., None] * w("self_attn.q_norm.weight")
            k = k * ks[..., None] * w("self_attn.k_norm.weight")
        q = apply_rope(q.transpose(0, 1), cos, sin)
        k = apply_rope(k.transpose(0, 1), cos, sin)
        v = v.transpose(0, 1)
        sliding = gemma and window is not None and l % 2 == 0
        z, pattern = attention(
            q, k, v, scale=scale, attn_softcap=attn_cap, window=window if sliding else None, check=check
        )
        hooks[B + "attn.hook_pattern"] = pattern
        a = lin(z, w("self_attn.o_proj.weight"))
        if gemma:
            s = rms_scale(a, eps)
            hooks[B + "ln1_post.hook_scale"] = s
            a = a * s[:, None] * gain(w("post_attention_layernorm.weight"))
        hooks[B + "hook_attn_out"] = a
        x = x + a
        hooks[B + "hook_resid_mid"] = x
        # MLP
        s = rms_scale(x, eps)
        ln2 = "pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight"
        hooks[B + "ln2.hook_scale"] = s
        hooks[B + "ln2.hook_normalized"] = x * s[:, None]
        h = x * s[:, None] * gain(w(ln2))
        hooks[B + "mlp.hook_in"] = h
        m = lin(act(lin(h, w("mlp.gate_proj.weight"))) * lin(h, w("mlp.up_proj.weight")), w("mlp.down_proj.weight"))
        hooks[B + "mlp.hook_out"] = m
        if gemma:
            s = rms_scale(m, eps)
            hooks[B + "ln2_post.hook_scale"] = s
            m = m * s[:, None] * gain(w("post_feedforward_layernorm.weight"))
        hooks[B + "hook_mlp_out"] = m
        x = x + m
        hooks[B + "hook_resid_post"] = x
    s = rms_scale(x, eps)
    hooks["ln_final.hook_scale"] = s
    u = x * s[:, None] * gain(W["model.norm.weight"])
    hooks["unembed.hook_in"] = u
    unembed = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    if not cfg.get("tie_word_embeddings"):
        assert "lm_head.weight" in W
    pre = torch.matmul(u, unembed.t())
    logits = softcap(pre, final_cap) if final_cap else pre
    return pre, logits, hooks
