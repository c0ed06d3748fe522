"""Evaluation: task accuracies, transcoder quality, replacement-model agreement, and the
metrics report (metrics.json + metrics.md)."""

from __future__ import annotations

import torch

from tokenizer import PAD

DEMO_PROMPT = "The capital of state containing Dallas is"
DEMO_ANSWER = "Austin"


def answer_token(tok, prompt: str, answer: str) -> int:
    p = tok.encode(prompt)
    full = tok.encode(prompt + " " + answer)
    assert full[: len(p)] == p, (prompt, answer)
    return full[len(p)]


@torch.no_grad()
def last_logits(model, tok, prompts: list[str], batch: int = 256, mlp_override=None) -> torch.Tensor:
    """Final (soft-capped) logits at each prompt's last position, [N, V]."""
    outs = []
    for s in range(0, len(prompts), batch):
        seqs = [tok.encode(p, add_bos=True) for p in prompts[s:s + batch]]
        T = max(len(q) for q in seqs)
        ids = torch.full((len(seqs), T), PAD, dtype=torch.long)
        for r, q in enumerate(seqs):
            ids[r, : len(q)] = torch.tensor(q)
        logits = model(ids, mlp_override=mlp_override) if mlp_override else model(ids)
        last = torch.tensor([len(q) - 1 for q in seqs])
        outs.append(logits[torch.arange(len(seqs)), last])
    return torch.cat(outs)


def accuracy(model, tok, examples, mlp_override=None) -> dict:
    if not examples:
        return {"n": 0, "top1": None, "mean_p": None}
    prompts = [e.prompt for e in examples]
    tgt = torch.tensor([answer_token(tok, e.prompt, e.answer) for e in examples])
    lg = last_logits(model, tok, prompts, mlp_override=mlp_override)
    pr = torch.softmax(lg.double(), -1)
    top = lg.argmax(-1)
    return {"n": len(examples), "top1": round(float((top == tgt).double().mean()), 4),
            "mean_p": round(float(pr[torch.arange(len(tgt)), tgt].mean()), 4)}


def task_report(model, tok, examples) -> dict:
    out: dict = {}
    groups: dict[str, list] = {}
    for e in examples:
        key = e.family if e.family != "two_hop" else f"two_hop/{e.split}"
        if e.family != "two_hop" and e.split != "train":
            key = f"{e.family}/{e.split}"
        groups.setdefault(key, []).append(e)
    for k in sorted(groups):
        out[k] = accuracy(model, tok, groups[k])
    lg = last_logits(model, tok, [DEMO_PROMPT])[0]
    pr = torch.softmax(lg.double(), -1)
    a = answer_token(tok, DEMO_PROMPT, DEMO_ANSWER)
    top = torch.topk(pr, 5)
    out["demo_prompt"] = {
        "prompt": DEMO_PROMPT,
        "answer": " " + DEMO_ANSWER,
        "p_answer": round(float(pr[a]), 4),
        "top1_is_answer": bool(int(lg.argmax()) == a),
        "top5": [[tok.decode([int(i)]), round(float(v), 4)] for v, i in zip(top.values, top.indices)],
        "logit_lens": logit_lens(model, tok, DEMO_PROMPT, [" " + DEMO_ANSWER, " Texas"]),
    }
    return out


@torch.no_grad()
def logit_lens(model, tok, prompt: str, words: list[str]) -> list[dict]:
    """Final norm + unembedding applied to the residual after each layer, last position."""
    ids = tok.encode(prompt, add_bos=True)
    cache: dict = {}
    model(torch.tensor([ids]), cache=cache)
    E = model.model.embed_tokens.weight
    wid = {w: answer_token(tok, prompt, w.strip()) for w in words}
    rows = []
    for l in range(model.cfg.num_hidden_layers):
        lg = model.model.norm(cache[f"blocks.{l}.hook_resid_post"][0, -1]) @ E.t()
        rank = (lg[None, :] > lg[list(wid.values())][:, None]).sum(-1)
        rows.append({"layer": l, "top1": tok.decode([int(lg.argmax())]),
                     **{f"rank{w}": int(r) for w, r in zip(wid, rank)}})
    return rows


# ---------------------------------------------------------------------------------------
# transcoders and the replacement model

def plt_override(plt_p):
    """mlp_override for Gemma2.forward: every hook_mlp_out replaced by the PLT's
    reconstruction (no error term); position 0 (BOS) keeps the true MLP output, which the
    attribution convention treats as a constant."""
    from transcoders import plt_apply

    def f(l: int, c: dict) -> torch.Tensor:
        _, rec = plt_apply(plt_p[l], c[f"blocks.{l}.ln2.hook_normalized"])
        rec = rec.clone()
        rec[:, 0] = c[f"blocks.{l}.hook_mlp_out"][:, 0]
        return rec
    return f


def clt_override(clt_p):
    from transcoders import clt_decode, clt_encode
    state: list[torch.Tensor] = []

    def f(l: int, c: dict) -> torch.Tensor:
        if l == 0:
            state.clear()
        a = clt_encode(clt_p, l, c[f"blocks.{l}.hook_resid_mid"])
        a = a.clone()
        a[:, 0] = 0
        state.append(a)
        rec = clt_decode(clt_p, state, l).clone()
        rec[:, 0] = c[f"blocks.{l}.hook_mlp_out"][:, 0]
        return rec
    return f


@torch.no_grad()
def transcoder_quality(model, tok, sentences: list[str], plt_p, clt_p) -> dict:
    """Per layer FVU and L0 on the given sentences (BOS excluded), from the true hooks."""
    from transcoders import clt_decode, clt_encode, plt_apply
    L = model.cfg.num_hidden_layers
    seqs = [tok.encode(s, add_bos=True) for s in sentences]
    T = max(len(q) for q in seqs)
    ids = torch.full((len(seqs), T), PAD, dtype=torch.long)
    for r, q in enumerate(seqs):
        ids[r, : len(q)] = torch.tensor(q)
    mask = ids != PAD
    mask[:, 0] = False
    cache: dict = {}
    model(ids, cache=cache)
    res = {"plt": [], "clt": []}
    clt_acts = []
    for l in range(L):
        clt_acts.append(clt_encode(clt_p, l, cache[f"blocks.{l}.hook_resid_mid"]))
    for l in range(L):
        y = cache[f"blocks.{l}.hook_mlp_out"][mask].double()
        var = ((y - y.mean(0)) ** 2).sum()
        a, rec = plt_apply(plt_p[l], cache[f"blocks.{l}.ln2.hook_normalized"])
        res["plt"].append({
            "layer": l,
            "fvu": round(float(((y - rec[mask].double()) ** 2).sum() / var), 4),
            "l0": round(float((a[mask] > 0).sum(-1).double().mean()), 2),
        })
        rc = clt_decode(clt_p, clt_acts, l)
        res["clt"].append({
            "layer": l,
            "fvu": round(float(((y - rc[mask].double()) ** 2).sum() / var), 4),
            "l0": round(float((clt_acts[l][mask] > 0).sum(-1).double().mean()), 2),
        })
    return res


@torch.no_grad()
def dead_fractions(plt_p, clt_p, acts: dict) -> dict:
    from transcoders import clt_encode, plt_apply
    out = {"plt": [], "clt": []}
    for l in range(len(plt_p)):
        a, _ = plt_apply(plt_p[l], acts["ln2.hook_normalized"][l])
        out["plt"].append(round(float(((a > 0).sum(0) == 0).double().mean()), 4))
        a = clt_encode(clt_p, l, acts["hook_resid_mid"][l])
        out["clt"].append(round(float(((a > 0).sum(0) == 0).double().mean()), 4))
    return out


@torch.no_grad()
def agreement(model, tok, prompts: list[str], override) -> dict:
    """Top-1 agreement of the replacement model with the original at the last position."""
    a = last_logits(model, tok, prompts).argmax(-1)
    b = last_logits(model, tok, prompts, mlp_override=override).argmax(-1)
    return {"n": len(prompts), "top1_agreement": round(float((a == b).double().mean()), 4)}


@torch.no_grad()
def token_agreement(model, tok, sentences: list[str], override) -> float:
    """Top-1 agreement at every non-BOS position of the given sentences."""
    seqs = [tok.encode(s, add_bos=True) for s in sentences]
    T = max(len(q) for q in seqs)
    ids = torch.full((len(seqs), T), PAD, dtype=torch.long)
    for r, q in enumerate(seqs):
        ids[r, : len(q)] = torch.tensor(q)
    mask = ids != PAD
    mask[:, 0] = False
    a = model(ids).argmax(-1)
    b = model(ids, mlp_override=override).argmax(-1)
    return round(float((a[mask] == b[mask]).double().mean()), 4)


def n_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def full_report(model, tok, examples, plt_p, clt_p, train_acts, hp, *, n_transcoder_tokens,
                lm_history, seed) -> dict:
    cfg = model.cfg
    held = [e for e in examples if e.split != "train"]
    held_sent = [e.text + "." for e in held]
    held_prompts = [e.prompt for e in held]
    tasks = task_report(model, tok, examples)
    q = transcoder_quality(model, tok, held_sent, plt_p, clt_p)
    dead = dead_fractions(plt_p, clt_p, train_acts)
    rep = {
        "seed": seed,
        "model": {
            "architecture": "Gemma2ForCausalLM",
            "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size,
            "intermediate": cfg.intermediate_size, "heads": cfg.num_attention_heads,
            "kv_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim,
            "vocab": cfg.vocab_size, "parameters": n_params(model),
            "final_train_loss": lm_history[-1]["loss"],
        },
        "hyperparameters": hp,
        "tasks": tasks,
        "two_hop": {
            "train_phrasings_train_cities": tasks.get("two_hop/train"),
            "heldout_phrasings": tasks.get("two_hop/heldout_phrasing"),
            "heldout_cities": tasks.get("two_hop/heldout_city"),
            "heldout_cities_heldout_phrasings": tasks.get("two_hop/heldout_city_phrasing"),
        },
        "transcoders": {},
        "eval_set": {"held_out_sentences": len(held_sent),
                     "transcoder_training_tokens": n_transcoder_tokens},
    }
    for name, p, ov in (("plt", plt_p, plt_override(plt_p)), ("clt", clt_p, clt_override(clt_p))):
        per_layer = q[name]
        for l, row in enumerate(per_layer):
            row["dead_fraction"] = dead[name][l]
        d_t = (p[0]["W_enc"].shape[0] if name == "plt" else p["W_enc"][0].shape[0])
        agr = agreement(model, tok, held_prompts, ov)
        rep["transcoders"][name] = {
            "features_per_layer": int(d_t),
            "per_layer": per_layer,
            "replacement_top1_agreement_heldout_prompts": agr["top1_agreement"],
            "replacement_top1_agreement_heldout_tokens": token_agreement(model, tok, held_sent, ov),
            "replacement_two_hop_heldout_phrasing_top1":
                accuracy(model, tok, [e for e in examples if e.split == "heldout_phrasing"], ov)["top1"],
            "replacement_demo_p_answer": round(float(torch.softmax(
                last_logits(model, tok, [DEMO_PROMPT], mlp_override=ov)[0].double(), -1)[
                answer_token(tok, DEMO_PROMPT, DEMO_ANSWER)]), 4),
            "n_heldout_prompts": agr["n"],
        }
    return rep


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def markdown(rep: dict) -> str:
    m = rep["model"]
    t = rep["tasks"]
    th = rep["two_hop"]
    d = t["demo_prompt"]
    lines = [
        "# gemma2-demo — metrics",
        "",
        f"Seed {rep['seed']}. Gemma-2 architecture, {m['layers']} layers, hidden {m['hidden']}, "
        f"{m['heads']} heads / {m['kv_heads']} kv heads × {m['head_dim']}, MLP {m['intermediate']}, "
        f"vocab {m['vocab']}, {m['parameters']:,} parameters; final training loss {m['final_train_loss']}.",
        "",
        "## Demo prompt",
        "",
        f"`{d['prompt']}` → top-1 is `{d['answer']}`: **{d['top1_is_answer']}**, "
        f"p({d['answer']!r}) = **{d['p_answer']:.3f}**. Top 5: "
        + ", ".join(f"`{s!r}` {p:.3f}" for s, p in d["top5"]),
        "",
        "## Two-hop question (city → state → capital), next-token top-1 accuracy",
        "",
        "| set | n | top-1 | mean p(answer) |",
        "|---|---|---|---|",
    ]
    names = {
        "train_phrasings_train_cities": "trained phrasings, trained cities (seen sentences)",
        "heldout_phrasings": "held-out phrasings, trained cities",
        "heldout_cities": "held-out cities (their two-hop sentences never trained), trained phrasings",
        "heldout_cities_heldout_phrasings": "held-out cities and held-out phrasings",
    }
    for k, label in names.items():
        r = th.get(k) or {}
        lines.append(f"| {label} | {r.get('n')} | {_fmt(r.get('top1'))} | {_fmt(r.get('mean_p'))} |")
    lines += ["", "## Other families (top-1 on the final word; `/heldout` = sentences withheld from training)", "",
              "| family | n | top-1 | mean p(answer) |", "|---|---|---|---|"]
    for k in sorted(t):
        if k == "demo_prompt" or k.startswith("two_hop/"):
            continue
        r = t[k]
        lines.append(f"| {k} | {r['n']} | {_fmt(r['top1'])} | {_fmt(r['mean_p'])} |")
    lines += ["", "## Transcoders", "",
              f"Measured on {rep['eval_set']['held_out_sentences']} held-out sentences (BOS excluded); "
              f"trained on {rep['eval_set']['transcoder_training_tokens']:,} tokens per layer. "
              "FVU = fraction of hook_mlp_out variance unexplained; L0 = mean active features per token; "
              "dead = never active on 4000 training sentences. Replacement model = every MLP output "
              "replaced by the transcoder reconstruction, no error term (BOS keeps its true MLP output).", ""]
    for name, label in (("plt", "Per-layer transcoders (reads ln2.hook_normalized)"),
                        ("clt", "Cross-layer transcoder (reads hook_resid_mid)")):
        r = rep["transcoders"][name]
        lines += [f"### {label}, {r['features_per_layer']} features per layer", "",
                  "| layer | FVU | L0 | dead |", "|---|---|---|---|"]
        for row in r["per_layer"]:
            lines.append(f"| {row['layer']} | {row['fvu']:.4f} | {row['l0']:.2f} | {row['dead_fraction']:.3f} |")
        lines += ["",
                  f"- replacement top-1 agreement, held-out prompts (last position, n={r['n_heldout_prompts']}): "
                  f"**{r['replacement_top1_agreement_heldout_prompts']:.4f}**",
                  f"- replacement top-1 agreement, every position of the held-out sentences: "
                  f"{r['replacement_top1_agreement_heldout_tokens']:.4f}",
                  f"- replacement model's two-hop accuracy on held-out phrasings: "
                  f"{_fmt(r['replacement_two_hop_heldout_phrasing_top1'])}",
                  f"- replacement model's p(' Austin') on the demo prompt: {r['replacement_demo_p_answer']:.4f}",
                  ""]
    return "\n".join(lines) + "\n"


def summary_line(rep: dict) -> str:
    d = rep["tasks"]["demo_prompt"]
    th = rep["two_hop"]
    parts = [f"demo p={d['p_answer']:.3f} top1={d['top1_is_answer']}",
             f"2hop heldout-phrasing {_fmt((th['heldout_phrasings'] or {}).get('top1'))}",
             f"heldout-city {_fmt((th['heldout_cities'] or {}).get('top1'))}"]
    for name in ("plt", "clt"):
        r = rep["transcoders"][name]
        parts.append(f"{name} fvu {[row['fvu'] for row in r['per_layer']]} l0 {[row['l0'] for row in r['per_layer']]} "
                     f"agree {r['replacement_top1_agreement_heldout_prompts']}")
    return " | ".join(parts)
