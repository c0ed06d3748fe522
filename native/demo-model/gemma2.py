"""A Gemma-2 decoder written from the formula block of shared/docs/formats.md.

    RMS(x; w) = x / sqrt(mean(x²) + eps) · (1 + w)          # float32
    x = E[ids] · sqrt(hidden)
    per layer: h = RMS(x; input_ln); q,k,v; RoPE; s = q·kᵀ / sqrt(query_pre_attn_scalar)
               s = 50·tanh(s/50); causal (+window); x = x + RMS(softmax(s)·v·Woᵀ; post_attention_ln)
               m = down(gelu_tanh(gate(RMS(x; pre_ff_ln))) ⊙ up(·)); x = x + RMS(m; post_ff_ln)
    logits = 30·tanh(RMS(x; norm)·Eᵀ / 30)

Parameter names are the Hugging Face ones (`model.layers.{i}.self_attn.q_proj.weight`, …),
so `state_dict()` is exactly what goes into model.safetensors.

`forward(ids, cache=..., mlp_override=...)` can record every hook of tests/golden/README.md
and can replace each layer's hook_mlp_out (used for the replacement model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Gemma2Config:
    vocab_size: int = 2048
    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    query_pre_attn_scalar: float = 32
    attn_logit_softcapping: float = 50.0
    final_logit_softcapping: float = 30.0
    sliding_window: int = 4096
    max_position_embeddings: int = 8192
    layer_types: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.layer_types:
            self.layer_types = ["sliding_attention" if i % 2 == 0 else "full_attention"
                                for i in range(self.num_hidden_layers)]

    def hf_dict(self) -> dict:
        return {
            "architectures": ["Gemma2ForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "attn_logit_softcapping": self.attn_logit_softcapping,
            "bos_token_id": 2,
            "cache_implementation": "hybrid",
            "eos_token_id": 1,
            "final_logit_softcapping": self.final_logit_softcapping,
            "head_dim": self.head_dim,
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_activation": "gelu_pytorch_tanh",
            "hidden_size": self.hidden_size,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "layer_types": self.layer_types,
            "max_position_embeddings": self.max_position_embeddings,
            "model_type": "gemma2",
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "pad_token_id": 0,
            "query_pre_attn_scalar": self.query_pre_attn_scalar,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "sliding_window": self.sliding_window,
            "tie_word_embeddings": True,
            "torch_dtype": "float32",
            "transformers_version": "4.44.0",
            "use_cache": True,
            "vocab_size": self.vocab_size,
        }

    @classmethod
    def from_hf(cls, d: dict) -> "Gemma2Config":
        return cls(
            vocab_size=d["vocab_size"], hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"], num_hidden_layers=d["num_hidden_layers"],
            num_attention_heads=d["num_attention_heads"], num_key_value_heads=d["num_key_value_heads"],
            head_dim=d["head_dim"], rms_norm_eps=d["rms_norm_eps"], rope_theta=d["rope_theta"],
            query_pre_attn_scalar=d["query_pre_attn_scalar"],
            attn_logit_softcapping=d["attn_logit_softcapping"],
            final_logit_softcapping=d["final_logit_softcapping"],
            sliding_window=d["sliding_window"],
            max_position_embeddings=d["max_position_embeddings"],
            layer_types=list(d.get("layer_types") or []),
        )


class RMSNorm(nn.Module):
    """Gemma RMSNorm: x / sqrt(mean(x²)+eps) · (1 + w), weight initialised to 0."""

    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(d))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() * self.scale(x) * (1.0 + self.weight.float())


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(T: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    pos = torch.arange(T, dtype=torch.float32)
    f = torch.outer(pos, inv_freq)
    emb = torch.cat((f, f), dim=-1)
    return emb.cos(), emb.sin()


class Layer(nn.Module):
    def __init__(self, cfg: Gemma2Config, idx: int):
        super().__init__()
        d, H, KV, hd = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.cfg, self.idx = cfg, idx
        self.sliding = cfg.layer_types[idx] == "sliding_attention"
        self.input_layernorm = RMSNorm(d, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(d, cfg.rms_norm_eps)
        self.pre_feedforward_layernorm = RMSNorm(d, cfg.rms_norm_eps)
        self.post_feedforward_layernorm = RMSNorm(d, cfg.rms_norm_eps)
        self.self_attn = nn.Module()
        self.self_attn.q_proj = nn.Linear(d, H * hd, bias=False)
        self.self_attn.k_proj = nn.Linear(d, KV * hd, bias=False)
        self.self_attn.v_proj = nn.Linear(d, KV * hd, bias=False)
        self.self_attn.o_proj = nn.Linear(H * hd, d, bias=False)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(d, cfg.intermediate_size, bias=False)
        self.mlp.up_proj = nn.Linear(d, cfg.intermediate_size, bias=False)
        self.mlp.down_proj = nn.Linear(cfg.intermediate_size, d, bias=False)

    def mask(self, T: int, device=None) -> torch.Tensor:
        i = torch.arange(T, device=device)[:, None]
        j = torch.arange(T, device=device)[None, :]
        m = j <= i
        if self.sliding:
            m = m & (i - j < self.cfg.sliding_window)
        return m

    def attention(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                  cache: dict | None, pfx: str) -> torch.Tensor:
        cfg = self.cfg
        B, T, _ = x.shape
        H, KV, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        a = self.self_attn
        q = a.q_proj(x).view(B, T, H, hd).transpose(1, 2)
        k = a.k_proj(x).view(B, T, KV, hd).transpose(1, 2)
        v = a.v_proj(x).view(B, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = H // KV
        k = k.repeat_interleave(rep, dim=1)  # query head j uses kv head j // rep
        v = v.repeat_interleave(rep, dim=1)
        s = torch.matmul(q, k.transpose(-1, -2)) * (cfg.query_pre_attn_scalar ** -0.5)
        c = cfg.attn_logit_softcapping
        s = c * torch.tanh(s / c)
        s = s.masked_fill(~self.mask(T, x.device), float("-inf"))
        p = torch.softmax(s.float(), dim=-1)
        if cache is not None:
            cache[pfx + "attn.hook_pattern"] = p
        o = torch.matmul(p, v).transpose(1, 2).reshape(B, T, H * hd)
        return a.o_proj(o)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: dict | None = None,
                mlp_override: Callable[[int, dict], torch.Tensor] | None = None) -> torch.Tensor:
        pfx = f"blocks.{self.idx}."
        rec = cache is not None or mlp_override is not None
        c: dict = {} if rec else None  # per-layer scratch
        if rec:
            c[pfx + "hook_resid_pre"] = x
            c[pfx + "ln1.hook_scale"] = self.input_layernorm.scale(x)[..., 0]
            c[pfx + "ln1.hook_normalized"] = x * self.input_layernorm.scale(x)
        h = self.input_layernorm(x)
        attn = self.attention(h, cos, sin, c, pfx)
        if rec:
            c[pfx + "ln1_post.hook_scale"] = self.post_attention_layernorm.scale(attn)[..., 0]
        attn_out = self.post_attention_layernorm(attn)
        x = x + attn_out
        if rec:
            c[pfx + "hook_attn_out"] = attn_out
            c[pfx + "hook_resid_mid"] = x
            s2 = self.pre_feedforward_layernorm.scale(x)
            c[pfx + "ln2.hook_scale"] = s2[..., 0]
            c[pfx + "ln2.hook_normalized"] = x * s2
        m_in = self.pre_feedforward_layernorm(x)
        m = self.mlp.down_proj(F.gelu(self.mlp.gate_proj(m_in), approximate="tanh") * self.mlp.up_proj(m_in))
        if rec:
            c[pfx + "mlp.hook_in"] = m_in
            c[pfx + "mlp.hook_out"] = m
            c[pfx + "ln2_post.hook_scale"] = self.post_feedforward_layernorm.scale(m)[..., 0]
        mlp_out = self.post_feedforward_layernorm(m)
        if rec:
            c[pfx + "hook_mlp_out"] = mlp_out
        if mlp_override is not None:
            mlp_out = mlp_override(self.idx, c)
        x = x + mlp_out
        if rec:
            c[pfx + "hook_resid_post"] = x
            if cache is not None:
                cache.update(c)
        return x


class Gemma2(nn.Module):
    def __init__(self, cfg: Gemma2Config):
        super().__init__()
        self.cfg = cfg
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.model.layers = nn.ModuleList([Layer(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.model.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def init_weights(self, gen: torch.Generator) -> None:
        d = self.cfg.hidden_size
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("layernorm.weight") or name == "model.norm.weight":
                    p.zero_()
                elif name == "model.embed_tokens.weight":
                    p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(d))
                else:
                    std = 0.02
                    if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                        std = 0.02 / math.sqrt(2 * self.cfg.num_hidden_layers)
                    p.copy_(torch.randn(p.shape, generator=gen) * std)

    def forward(self, ids: torch.Tensor, cache: dict | None = None,
                mlp_override: Callable[[int, dict], torch.Tensor] | None = None,
                return_pre_softcap: bool = False):
        cfg = self.cfg
        B, T = ids.shape
        E = self.model.embed_tokens.weight
        x = E[ids] * torch.tensor(cfg.hidden_size ** 0.5, dtype=E.dtype)
        if cache is not None:
            cache["hook_embed"] = x
        cos, sin = rope_cos_sin(T, cfg.head_dim, cfg.rope_theta)
        for layer in self.model.layers:
            x = layer(x, cos, sin, cache, mlp_override)
        if cache is not None:
            cache["ln_final.hook_scale"] = self.model.norm.scale(x)[..., 0]
        h = self.model.norm(x)
        if cache is not None:
            cache["unembed.hook_in"] = h
        pre = h @ E.t()
        c = cfg.final_logit_softcapping
        logits = c * torch.tanh(pre / c)
        if return_pre_softcap:
            return logits, pre
        return logits
