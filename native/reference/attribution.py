"""Reference attribution graphs (shared/docs/attribution.md), in float64 PyTorch with autograd.

Computed the way circuit-tracer does it, written out step by step:

1. Run the original model once (`forward(..., frozen=None)`), every nonlinearity live, and
   record every hook: attention patterns, norm scales, the transcoders' read and write hooks.
2. Decompose each MLP output at the transcoder's write hook (`decompose`):
       write[m] = b_dec[m] + Σ_{s≤m} a_s·W_dec_s[:, m−s, :] + x_m·W_skipᵀ + err[m]
   with a = act(x·W_encᵀ + b_enc) at the read hook, and at position 0 (BOS) a = 0, err = 0:
   the whole MLP output there minus the skip term is a constant (`bos`).
3. Build the *replacement* model (`forward(..., frozen=rec)`): the same forward code, but
   attention patterns and every norm scale 1/sqrt(mean(xc²)+eps) are the recorded constants
   (Gemma-2 post-norms included; Qwen3's q/k norms only shape the frozen patterns), and each
   MLP is replaced by the right-hand side above, evaluated on *source* tensors: the token
   embeddings (leaves), the feature activations and the error terms (constants), plus a
   zero "probe" tensor at each write hook whose gradient is the gradient at the write point.
   W_skip stays a live linear path. Everything downstream is affine in the sources.
4. Targets: every active feature (a ≠ 0, pos ≥ 1), pre-activation W_enc·read + b_enc at its
   read hook; the chosen logits, target u_k − mean_v u_v at unembed.hook_in (pre-softcap).
   For each target, torch.autograd gives the gradient at every write probe and at the token
   embeddings; A[t, s] = (source vector)·(gradient at the source's write point):
       feature (s, p, i):  Σ_{m ∈ writes(s)} a·W_dec_s[i, m−s, :] · g_write[m][p]
       error (l, p):       err[l][p] · g_write[l][p]
       token p:            emb[p] · g_embed[p]
5. c_t = the replacement model run with every source zeroed (bias-only part). Because the
   frozen model is affine in the sources, Σ_s A[t,s] + c_t = pre-activation(t) (completeness),
   and zeroing one source changes every target by exactly −A[t,s] (checked column by column).

Node order (electron/engine/attribution/graph-types.ts, attribution.md §4, §8):
    [features by (layer, position, index) | errors l·T + p | tokens p | logits by prob desc]
rows = targets, columns = sources; error and token rows are zero, logit columns are zero.
"""

import math
import os
from dataclasses import dataclass, field

import torch

import transcoders as tcio
from model import gelu_tanh, rope_inv_freq, rope_params, rotate_half, silu, softcap
from tensorio import load_checkpoint, read_json

DT = torch.float64

READ_HOOKS = ("hook_resid_pre", "hook_resid_mid", "ln2.hook_normalized", "mlp.hook_in")
WRITE_HOOKS = ("hook_mlp_out", "mlp.hook_out")


# ---------------------------------------------------------------------------------------
# Model and transcoders, as float64


@dataclass
class Model:
    cfg: dict
    W: dict  # name -> float64 tensor
    family: str  # gpt2 | llama | qwen3 | gemma2
    L: int
    d: int
    eps: float

    def w(self, name):
        if self.family == "gpt2":
            pre = "transformer." if "transformer.wte.weight" in self.W else ""
            return self.W[pre + name]
        return self.W[name]

    def unembed(self):
        """[V, d]: logits = u·W_Uᵀ."""
        if self.family == "gpt2":
            return self.w("wte.weight")
        if "lm_head.weight" in self.W and not self.cfg.get("tie_word_embeddings"):
            return self.W["lm_head.weight"]
        return self.W["model.embed_tokens.weight"]

    def sliding(self, l):
        """Gemma-2: key j visible from query i iff 0 ≤ i − j < window on sliding layers."""
        if self.family != "gemma2" or self.cfg.get("sliding_window") is None:
            return False
        types = self.cfg.get("layer_types")
        if types:
            return types[l] == "sliding_attention"
        return l % 2 == 0


def load_model(model_dir: str) -> Model:
    cfg = read_json(os.path.join(model_dir, "config.json"))
    W = {k: v.to(DT) for k, v in load_checkpoint(model_dir).items()}
    fam = cfg["model_type"]
    assert fam in ("gpt2", "llama", "qwen3", "gemma2"), f"unsupported model_type {fam}"
    if fam == "gpt2":
        return Model(cfg, W, fam, cfg["n_layer"], cfg["n_embd"], cfg.get("layer_norm_epsilon", 1e-5))
    return Model(cfg, W, fam, cfg["num_hidden_layers"], cfg["hidden_size"], cfg["rms_norm_eps"])


@dataclass
class Transcoders:
    """Uniform view of a PLT set and a CLT: features of layer s write to layers
    s .. s + W_dec[s].shape[1] − 1 (a PLT's W_dec is stored here as [d_t, 1, d])."""

    kind: str  # plt | clt
    read_hook: str
    write_hook: str
    act_kind: str  # relu | jumprelu | topk
    k: int
    W_enc: list  # [d_t, d] per layer
    b_enc: list  # [d_t]
    threshold: list  # [d_t] or None
    W_dec: list  # [d_t, n_writes, d]
    b_dec: list  # [d] per *output* layer
    W_skip: list  # [d, d] or None (x·W_skipᵀ)

    def writes(self, s):
        return range(s, s + self.W_dec[s].shape[1])

    def act(self, s, pre):
        return tcio.activation(pre, self.threshold[s], "topk" if self.act_kind == "topk" else None, self.k)


def load_transcoders(folder: str) -> Transcoders:
    """Reads through transcoders.load (safetensors/npz PLT, CLT layout), casts to float64."""
    raw = tcio.load(folder)
    cfg = raw["config"]
    read, write = cfg["feature_input_hook"], cfg["feature_output_hook"]
    assert read in READ_HOOKS, f"unsupported feature_input_hook {read}"
    assert write in WRITE_HOOKS, f"unsupported feature_output_hook {write}"
    f64 = lambda t: None if t is None else t.to(DT)  # noqa: E731
    lay = raw["layers"]
    clt = cfg["model_kind"] == "cross_layer_transcoder"
    has_thr = lay[0]["threshold"] is not None
    act_kind = "topk" if cfg.get("activation") == "topk" else ("jumprelu" if has_thr else "relu")
    return Transcoders(
        kind="clt" if clt else "plt",
        read_hook=read,
        write_hook=write,
        act_kind=act_kind,
        k=int(cfg.get("k") or 0),
        W_enc=[f64(p["W_enc"]) for p in lay],
        b_enc=[f64(p["b_enc"]) for p in lay],
        threshold=[f64(p["threshold"]) for p in lay],
        W_dec=[f64(p["W_dec"]) if clt else f64(p["W_dec"])[:, None, :] for p in lay],
        b_dec=[f64(p["b_dec"]) for p in lay],
        W_skip=[None if clt else f64(p.get("W_skip")) for p in lay],
    )


# ---------------------------------------------------------------------------------------
# Embedding (the token source vectors)


def embed(M: Model, ids) -> torch.Tensor:
    """The embedding as added to the residual, [T, d]: Gemma E[id]·√d (√d rounded to
    float32); GPT-2 the token embedding only (the position embedding is a constant)."""
    idx = torch.tensor(ids)
    if M.family == "gpt2":
        return M.w("wte.weight")[idx].clone()
    x = M.W["model.embed_tokens.weight"][idx].clone()
    if M.family == "gemma2":
        x = x * float(torch.tensor(math.sqrt(M.d), dtype=torch.float32))
    return x


# ---------------------------------------------------------------------------------------
# The forward pass: original (frozen=None) or replacement (frozen = recorded hooks + MLP
# decomposition). One code path, so the replacement differs only where the math says.


@dataclass
class Sources:
    tok: torch.Tensor  # [T, d] token embeddings
    acts: dict = field(default_factory=dict)  # layer -> [T, d_t] feature activations
    errs: dict = field(default_factory=dict)  # layer -> [T, d] error terms
    probes: dict = field(default_factory=dict)  # layer -> [T, d] zeros at the write hook


def _rope(M: Model, T: int, hd: int):
    inv = rope_inv_freq(hd, rope_params(M.cfg))  # float64
    ang = torch.arange(T, dtype=DT)[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], dim=-1)  # concat(f, f), half-split
    return torch.cos(emb), torch.sin(emb)


def forward(M: Model, tc: Transcoders, src: Sources, frozen: dict = None) -> dict:
    """Returns every hook (tests/golden/README.md names) plus 'logits_pre_softcap' [T, V].

    frozen=None: the original model (norm scales, patterns, MLPs live; src.tok only).
    frozen=rec:  the replacement model: scales and patterns from rec; MLP output at the
                 transcoder's write hook = b_dec + Σ acts·W_dec + errs + skip(read) + bos
                 (+ probe), built from src and rec['bos'].
    """
    fam, L, d, eps = M.family, M.L, M.d, M.eps
    gemma, gpt2 = fam == "gemma2", fam == "gpt2"
    T = src.tok.shape[0]
    H = M.cfg["n_head"] if gpt2 else M.cfg["num_attention_heads"]
    KV = H if gpt2 else (M.cfg.get("num_key_value_heads") or H)
    hd = d // H if gpt2 else (M.cfg.get("head_dim") or d // H)
    group = H // KV
    gain = (lambda w: 1.0 + w) if gemma else (lambda w: w)
    hooks = {}

    def scale(name, x, centered=False):
        """x·r with r = 1/sqrt(mean(xc²)+eps): live, or the recorded constant when frozen."""
        xc = x - x.mean(dim=-1, keepdim=True) if centered else x
        if frozen is None:
            r = 1.0 / torch.sqrt((xc * xc).mean(dim=-1) + eps)
        else:
            r = frozen[name]
        hooks[name] = r
        return xc * r[..., None]

    def attention(l, q_fn, v):
        """v [KV, T, hd] → z [T, H·hd]. The pattern is live or the recorded constant."""
        name = f"blocks.{l}.attn.hook_pattern"
        if frozen is None:
            q, k = q_fn()  # [H, T, hd], [KV, T, hd]
            kk = k[torch.arange(H) // group]  # query head j uses kv head j // (H/KV)
            if gemma:
                s = torch.matmul(q, kk.transpose(1, 2)) * float(M.cfg["query_pre_attn_scalar"]) ** -0.5
                if M.cfg.get("attn_logit_softcapping"):
                    s = softcap(s, M.cfg["attn_logit_softcapping"])  # soft-cap before masking
            else:
                s = torch.matmul(q, kk.transpose(1, 2)) / math.sqrt(hd)
            i = torch.arange(T)[:, None]
            j = torch.arange(T)[None, :]
            visible = (i - j) >= 0
            if M.sliding(l):
                visible = visible & ((i - j) < M.cfg["sliding_window"])
            pattern = torch.softmax(s.masked_fill(~visible[None], float("-inf")), dim=-1)
        else:
            pattern = frozen[name]
        hooks[name] = pattern
        vv = v[torch.arange(H) // group]
        return torch.matmul(pattern, vv).transpose(0, 1).reshape(T, H * hd)

    # --- embedding
    x = src.tok
    hooks["hook_embed"] = src.tok
    if gpt2:
        hooks["hook_pos_embed"] = M.w("wpe.weight")[:T]
        x = x + hooks["hook_pos_embed"]  # a constant, never a node
    if not gpt2:
        cos, sin = _rope(M, T, hd)

    for l in range(L):
        B = f"blocks.{l}."
        hooks[B + "hook_resid_pre"] = x
        # --- attention
        if gpt2:
            b = f"h.{l}."
            n1 = scale(B + "ln1.hook_scale", x, centered=True)
            h = n1 * M.w(b + "ln_1.weight") + M.w(b + "ln_1.bias")
            Wqkv, bqkv = M.w(b + "attn.c_attn.weight"), M.w(b + "attn.c_attn.bias")  # Conv1D [in, out]
            heads = lambda t: t.reshape(T, H, hd).transpose(0, 1)  # noqa: E731
            v = heads(torch.matmul(h, Wqkv[:, 2 * d :]) + bqkv[2 * d :])

            def qk(h=h, Wqkv=Wqkv, bqkv=bqkv, heads=heads):
                q = torch.matmul(h, Wqkv[:, :d]) + bqkv[:d]
                k = torch.matmul(h, Wqkv[:, d : 2 * d]) + bqkv[d : 2 * d]
                return heads(q), heads(k)

            z = attention(l, qk, v)
            a = torch.matmul(z, M.w(b + "attn.c_proj.weight")) + M.w(b + "attn.c_proj.bias")
        else:
            b = f"model.layers.{l}."
            n1 = scale(B + "ln1.hook_scale", x)
            h = n1 * gain(M.W[b + "input_layernorm.weight"])
            v = torch.matmul(h, M.W[b + "self_attn.v_proj.weight"].t()).reshape(T, KV, hd).transpose(0, 1)

            def qk(h=h, b=b, B=B):
                q = torch.matmul(h, M.W[b + "self_attn.q_proj.weight"].t()).reshape(T, H, hd)
                k = torch.matmul(h, M.W[b + "self_attn.k_proj.weight"].t()).reshape(T, KV, hd)
                if fam == "qwen3":  # per-head RMSNorm on q and k before RoPE (patterns only)
                    q = scale(B + "attn.hook_q_scale", q) * M.W[b + "self_attn.q_norm.weight"]
                    k = scale(B + "attn.hook_k_scale", k) * M.W[b + "self_attn.k_norm.weight"]
                q, k = q.transpose(0, 1), k.transpose(0, 1)
                q = q * cos[None] + rotate_half(q) * sin[None]
                k = k * cos[None] + rotate_half(k) * sin[None]
                return q, k

            z = attention(l, qk, v)
            a = torch.matmul(z, M.W[b + "self_attn.o_proj.weight"].t())
            if gemma:
                a = scale(B + "ln1_post.hook_scale", a) * gain(M.W[b + "post_attention_layernorm.weight"])
        hooks[B + "hook_attn_out"] = a
        x = x + a
        hooks[B + "hook_resid_mid"] = x
        # --- MLP input norm (the read hooks)
        if gpt2:
            n2 = scale(B + "ln2.hook_scale", x, centered=True)
            m_in = n2 * M.w(b + "ln_2.weight") + M.w(b + "ln_2.bias")
        else:
            n2 = scale(B + "ln2.hook_scale", x)
            ln2 = "pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight"
            m_in = n2 * gain(M.W[b + ln2])
        hooks[B + "ln2.hook_normalized"] = n2
        hooks[B + "mlp.hook_in"] = m_in
        # --- MLP: original, or the transcoder replacement at the write hook
        if frozen is None:
            if gpt2:
                m = gelu_tanh(torch.matmul(m_in, M.w(b + "mlp.c_fc.weight")) + M.w(b + "mlp.c_fc.bias"))
                m = torch.matmul(m, M.w(b + "mlp.c_proj.weight")) + M.w(b + "mlp.c_proj.bias")
            else:
                act = gelu_tanh if gemma else silu
                g = torch.matmul(m_in, M.W[b + "mlp.gate_proj.weight"].t())
                u = torch.matmul(m_in, M.W[b + "mlp.up_proj.weight"].t())
                m = torch.matmul(act(g) * u, M.W[b + "mlp.down_proj.weight"].t())
            hooks[B + "mlp.hook_out"] = m
            if gemma:
                m = scale(B + "ln2_post.hook_scale", m) * gain(M.W[b + "post_feedforward_layernorm.weight"])
            hooks[B + "hook_mlp_out"] = m
        else:
            w = replacement(tc, l, hooks, src, frozen)
            if tc.write_hook == "mlp.hook_out":
                hooks[B + "mlp.hook_out"] = w
                if gemma:  # writes through the frozen post-feed-forward norm
                    w = scale(B + "ln2_post.hook_scale", w) * gain(M.W[b + "post_feedforward_layernorm.weight"])
            hooks[B + "hook_mlp_out"] = w
        x = x + hooks[B + "hook_mlp_out"]
        hooks[B + "hook_resid_post"] = x
    # --- final norm and unembedding
    if gpt2:
        u = scale("ln_final.hook_scale", x, centered=True) * M.w("ln_f.weight") + M.w("ln_f.bias")
    else:
        u = scale("ln_final.hook_scale", x) * gain(M.W["model.norm.weight"])
    hooks["unembed.hook_in"] = u
    hooks["logits_pre_softcap"] = torch.matmul(u, M.unembed().t())
    return hooks


def read_value(tc: Transcoders, hooks: dict, l: int) -> torch.Tensor:
    return hooks[f"blocks.{l}.{tc.read_hook}"]


def skip_term(tc: Transcoders, l: int, x_read: torch.Tensor):
    """x·W_skipᵀ (a live linear path), or None."""
    Ws = tc.W_skip[l]
    return None if Ws is None else torch.matmul(x_read, Ws.t())


def replacement(tc: Transcoders, m: int, hooks: dict, src: Sources, frozen: dict) -> torch.Tensor:
    """The transcoder's output at layer m's write hook in the replacement model:
    b_dec[m] + Σ_{s: m ∈ writes(s)} acts_s·W_dec_s[:, m−s, :] + errs[m] + skip(read_m) + bos[m]
    (+ the zero probe whose gradient is the gradient at this write point)."""
    w = tc.b_dec[m] + src.errs[m] + frozen["bos"][m]
    for s in range(m + 1):
        if m in tc.writes(s):
            w = w + torch.matmul(src.acts[s], tc.W_dec[s][:, m - s, :])
    sk = skip_term(tc, m, read_value(tc, hooks, m))
    if sk is not None:
        w = w + sk
    if m in src.probes:
        w = w + src.probes[m]
    return w


def decompose(tc: Transcoders, hooks: dict, L: int):
    """From the original run: (pre-activations, acts, errs, bos) per layer.

    acts_s = act(read_s·W_encᵀ + b_enc) with row 0 zeroed; at each write layer m,
    err_full = write_m − (b_dec[m] + Σ acts·W_dec + skip); err = err_full with row 0 zeroed,
    bos = err_full at row 0 only (so b_dec + bos is the whole MLP output at position 0
    minus skip: a constant, never a node)."""
    pres, acts, errs, bos = {}, {}, {}, {}
    for s in range(L):
        pre = torch.matmul(read_value(tc, hooks, s), tc.W_enc[s].t()) + tc.b_enc[s]
        a = tc.act(s, pre).clone()
        a[0] = 0
        pres[s], acts[s] = pre, a
    for m in range(L):
        recon = tc.b_dec[m].expand(hooks["hook_embed"].shape).clone()
        for s in range(m + 1):
            if m in tc.writes(s):
                recon = recon + torch.matmul(acts[s], tc.W_dec[s][:, m - s, :])
        sk = skip_term(tc, m, read_value(tc, hooks, m))
        if sk is not None:
            recon = recon + sk
        full = hooks[f"blocks.{m}.{tc.write_hook}"] - recon
        errs[m] = full.clone()
        errs[m][0] = 0
        bos[m] = torch.zeros_like(full)
        bos[m][0] = full[0]
    return pres, acts, errs, bos


# ---------------------------------------------------------------------------------------
# Targets


def choose_logits(logits_last: torch.Tensor, max_n_logits=10, desired_logit_prob=0.95):
    """Softmax of the final (soft-capped) logits at the last position; top max_n_logits by
    probability (ties → lower id); the shortest prefix whose cumulative probability reaches
    desired_logit_prob (all max_n_logits if it never does). Not renormalized."""
    probs = torch.softmax(logits_last, dim=-1)
    order = torch.sort(probs, descending=True, stable=True).indices[:max_n_logits]
    p = probs[order]
    cum = torch.cumsum(p, dim=0)
    reach = (cum >= desired_logit_prob).nonzero()
    n = int(reach[0]) + 1 if len(reach) else len(order)
    return [int(i) for i in order[:n]], [float(v) for v in p[:n]]


def target_values(M: Model, tc: Transcoders, hooks: dict, feats, logit_ids) -> torch.Tensor:
    """[n_features + n_logits]: each feature's pre-activation W_enc·read + b_enc at its read
    hook; each logit's demeaned pre-softcap value u·W_U[k] − mean_v u·W_U[v] (last position)."""
    out = []
    for l, p, i in feats:
        out.append(torch.dot(read_value(tc, hooks, l)[p], tc.W_enc[l][i]) + tc.b_enc[l][i])
    lg = hooks["logits_pre_softcap"][-1]
    for k in logit_ids:
        out.append(lg[k] - lg.mean())
    return torch.stack(out)


# ---------------------------------------------------------------------------------------
# The graph


@dataclass
class Graph:
    ids: list
    n_layers: int
    feats: list  # [(layer, position, index)] in node order
    feat_acts: list
    logit_ids: list
    logit_probs: list
    A: torch.Tensor  # [N, N] float64
    pre: torch.Tensor  # [n_targets] target pre-activations (original model)
    c: torch.Tensor  # [n_targets] bias-only constants
    checks: dict
    rec: dict  # original-run hooks (for cross-checks)
    acts: dict


def layout(n_feat, L, T, n_logit):
    err0 = n_feat
    tok0 = err0 + L * T
    log0 = tok0 + T
    return {
        "n_features": n_feat,
        "n_errors": L * T,
        "n_tokens": T,
        "n_logits": n_logit,
        "error_offset": err0,
        "token_offset": tok0,
        "logit_offset": log0,
        "total": log0 + n_logit,
    }


def attribute(M: Model, tc: Transcoders, ids, max_n_logits=10, desired_logit_prob=0.95) -> Graph:
    L, T = M.L, len(ids)
    assert len(tc.W_enc) == L, f"transcoder has {len(tc.W_enc)} layers, model {L}"
    assert max(ids) < M.unembed().shape[0] and min(ids) >= 0, "token id outside the vocabulary"
    tok = embed(M, ids)

    # 1. original run, recording everything
    with torch.no_grad():
        rec = forward(M, tc, Sources(tok=tok))
        pres, acts, errs, bos = decompose(tc, rec, L)
    rec["bos"] = bos
    logits = rec["logits_pre_softcap"][-1]
    cap = M.cfg.get("final_logit_softcapping") if M.family == "gemma2" else None
    final = softcap(logits, cap) if cap else logits
    logit_ids, logit_probs = choose_logits(final, max_n_logits, desired_logit_prob)

    # 2. nodes
    feats, feat_acts = [], []
    for l in range(L):
        nz = (acts[l] != 0).nonzero().tolist()  # row-major: (position, index) ascending
        for p, i in nz:
            assert p >= 1
            feats.append((l, p, i))
            feat_acts.append(float(acts[l][p, i]))
    F = len(feats)
    lay = layout(F, L, T, len(logit_ids))
    N = lay["total"]
    pre = target_values(M, tc, rec, feats, logit_ids)

    # 3. the replacement model with recorded sources reproduces the original exactly
    src = Sources(tok=tok, acts=acts, errs=errs)
    with torch.no_grad():
        rep = forward(M, tc, src, frozen=rec)
        y_rep = target_values(M, tc, rep, feats, logit_ids)
    checks = {
        "replacement_vs_original_max_abs": max(
            float((rep[k] - rec[k]).abs().max())
            for k in rec
            if k.endswith(("hook_resid_post", "hook_resid_mid", "unembed.hook_in", "logits_pre_softcap"))
        ),
        "replacement_targets_max_abs": float((y_rep - pre).abs().max()),
    }

    # 4. gradients at the write points and the embedding, one backward per target
    tok_leaf = tok.clone().requires_grad_(True)
    probes = {m: torch.zeros(T, M.d, dtype=DT, requires_grad=True) for m in range(L)}
    hooks = forward(M, tc, Sources(tok=tok_leaf, acts=acts, errs=errs, probes=probes), frozen=rec)
    y = target_values(M, tc, hooks, feats, logit_ids)
    A = torch.zeros(N, N, dtype=DT)
    rows = list(range(F)) + list(range(lay["logit_offset"], N))
    leaves = [tok_leaf] + [probes[m] for m in range(L)]
    for t, row in enumerate(rows):
        g = torch.autograd.grad(y[t], leaves, retain_graph=True, allow_unused=True)
        g_tok = g[0] if g[0] is not None else torch.zeros_like(tok)
        g_w = [gi if gi is not None else torch.zeros(T, M.d, dtype=DT) for gi in g[1:]]
        # features: a · Σ_{m ∈ writes(s)} W_dec_s[i, m−s, :] · g_write[m][p]
        dec_grad = {  # [T, d_t]: W_dec_s[i, m−s, :]·g_write[m][p], summed over m ∈ writes(s)
            s: sum(torch.matmul(g_w[m], tc.W_dec[s][:, m - s, :].t()) for m in tc.writes(s)) for s in range(L)
        }
        for f, (s, p, i) in enumerate(feats):
            A[row, f] = feat_acts[f] * dec_grad[s][p, i]
        # errors (l, p) → column error_offset + l·T + p
        for l in range(L):
            A[row, lay["error_offset"] + l * T : lay["error_offset"] + (l + 1) * T] = (errs[l] * g_w[l]).sum(-1)
        # tokens
        A[row, lay["token_offset"] : lay["token_offset"] + T] = (tok * g_tok).sum(-1)

    # 5. bias-only constants: every source zeroed
    zero = Sources(
        tok=torch.zeros_like(tok),
        acts={l: torch.zeros_like(a) for l, a in acts.items()},
        errs={l: torch.zeros_like(e) for l, e in errs.items()},
    )
    with torch.no_grad():
        c = target_values(M, tc, forward(M, tc, zero, frozen=rec), feats, logit_ids)

    g = Graph(ids, L, feats, feat_acts, logit_ids, logit_probs, A, pre, c, checks, rec, acts)
    verify(M, tc, g, tok, acts, errs, lay)
    return g


# ---------------------------------------------------------------------------------------
# Checks (attribution.md §3): completeness, intervention consistency, causality


def completeness(A, rows, pre, c):
    """(max |Σ A + c − y| / |y|, max |Σ A + c − y| / (Σ|A| + |c|))."""
    R = A[rows]
    resid = (R.sum(-1) + c - pre).abs()
    rel_y = float((resid / pre.abs().clamp_min(1e-300)).max())
    rel_scale = float((resid / (R.abs().sum(-1) + c.abs())).max())
    return rel_y, rel_scale


def verify(M, tc, g: Graph, tok, acts, errs, lay):
    L, T, F = M.L, len(g.ids), len(g.feats)
    N = lay["total"]
    A = g.A
    rows = list(range(F)) + list(range(lay["logit_offset"], N))
    ck = g.checks
    assert ck["replacement_vs_original_max_abs"] < 1e-10, ck
    assert ck["replacement_targets_max_abs"] < 1e-10, ck

    # completeness
    rel_y, rel_scale = completeness(A, rows, g.pre, g.c)
    ck["completeness_max_rel"] = rel_y
    ck["completeness_max_rel_to_scale"] = rel_scale
    ck["min_abs_target_pre_activation"] = float(g.pre.abs().min())  # |y| can be ≪ Σ|A| (ReLU near 0)
    assert rel_y <= 1e-5 and rel_scale <= 1e-10, (rel_y, rel_scale)

    # zero rows / columns of the layout
    assert float(A[lay["error_offset"] : lay["logit_offset"]].abs().max()) == 0.0
    assert float(A[:, lay["logit_offset"] :].abs().max()) == 0.0
    for l in range(L):  # error nodes at position 0 have zero columns
        assert float(A[:, lay["error_offset"] + l * T].abs().max()) == 0.0

    # intervention consistency: zero each source in the replacement model, compare −A[:, s]
    def run(src):
        with torch.no_grad():
            return target_values(M, tc, forward(M, tc, src, frozen=g.rec), g.feats, g.logit_ids)

    base = run(Sources(tok=tok, acts=acts, errs=errs))
    worst = 0.0
    scale = A[rows].abs().sum(-1) + g.c.abs()
    for col in range(lay["logit_offset"]):
        a2 = dict(acts)
        e2 = dict(errs)
        t2 = tok
        if col < F:
            s, p, i = g.feats[col]
            a2[s] = acts[s].clone()
            a2[s][p, i] = 0
        elif col < lay["token_offset"]:
            l, p = divmod(col - lay["error_offset"], T)
            e2[l] = errs[l].clone()
            e2[l][p] = 0
        else:
            p = col - lay["token_offset"]
            t2 = tok.clone()
            t2[p] = 0
        delta = run(Sources(tok=t2, acts=a2, errs=e2)) - base
        worst = max(worst, float(((delta + A[rows, col]).abs() / scale).max()))
    ck["intervention_max_rel_to_scale"] = worst
    assert worst < 1e-10, worst

    # causality: no edge from position p to a target at position < p; none from layer ≥ l
    # into a feature target at layer l
    def pos_layer(col):
        if col < F:
            return g.feats[col][1], g.feats[col][0]
        if col < lay["token_offset"]:
            l, p = divmod(col - lay["error_offset"], T)
            return p, l
        return col - lay["token_offset"], -1

    for r in range(F):
        lt, pt, _ = g.feats[r]
        for col in range(lay["logit_offset"]):
            p, l = pos_layer(col)
            if p > pt or l >= lt:
                assert A[r, col] == 0, (r, col)
    # logits read at the last position: every source position is ≤ T−1, nothing to check
