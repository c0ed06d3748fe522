"""README.md (model card) of resources/models/gemma2-demo, rendered from the metrics."""

from __future__ import annotations


def _p(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def render(rep: dict, cfg, tok) -> str:
    m = rep["model"]
    th = rep["two_hop"]
    d = rep["tasks"]["demo_prompt"]
    plt, clt = rep["transcoders"]["plt"], rep["transcoders"]["clt"]
    lens = "; ".join(f"layer {r['layer']}: top `{r['top1']}`, rank of ` Austin` {r['rank Austin']}, "
                     f"of ` Texas` {r['rank Texas']}" for r in d.get("logit_lens", []))

    def row(name: str, r: dict) -> str:
        fvu = ", ".join(f"{x['fvu']:.3f}" for x in r["per_layer"])
        l0 = ", ".join(f"{x['l0']:.1f}" for x in r["per_layer"])
        return (f"| {name} | {r['features_per_layer']} × {len(r['per_layer'])} | {fvu} | {l0} | "
                f"{_p(r['replacement_top1_agreement_heldout_prompts'])} |")

    return f"""# gemma2-demo — a toy Gemma-2 trained on synthetic text

**What this is.** A very small language model with the exact Gemma-2 architecture and file
formats, trained from scratch on a few thousand templated English sentences that this
repository generates itself, plus two sets of transcoders trained on its activations. It
ships with Circuit Workbench so that a first attribution graph can be made offline, within a
minute of installing, through the same code paths that real checkpoints (Gemma-2-2B with
GemmaScope / circuit-tracer transcoders) use.

**What it is not.** It is not a general language model and it knows nothing beyond its
templates: US states, their cities and capitals, countries with their languages and
capitals, antonyms, plurals, colours of things and single-digit additions. Outside those
sentence shapes its outputs are meaningless. Do not draw conclusions about real models
from its circuits; use it to learn the tool.

Built by `native/demo-model/main.py --seed {rep['seed']}` (plain PyTorch, one CPU thread, no
download; about a quarter of an hour; deterministic: the same seed and thread count give
byte-identical files). See `native/demo-model/README.md`.

## Model

| | |
|---|---|
| architecture | `Gemma2ForCausalLM` (`model_type: gemma2`), written from the formula block of `shared/docs/formats.md` |
| layers / hidden / MLP | {m['layers']} / {m['hidden']} / {m['intermediate']} (gated gelu-tanh) |
| attention | {m['heads']} query heads, {m['kv_heads']} kv heads (GQA), head_dim {m['head_dim']}, `query_pre_attn_scalar` {cfg.query_pre_attn_scalar}, RoPE θ {cfg.rope_theta:g}, scores soft-capped at {cfg.attn_logit_softcapping:g}, sliding window {cfg.sliding_window} on even layers |
| norms | `(1 + w)` RMSNorm, eps {cfg.rms_norm_eps:g}, pre and post norms around attention and MLP |
| embeddings | tied, input × √hidden; final logits soft-capped at {cfg.final_logit_softcapping:g} |
| vocabulary | {m['vocab']} tokens: Gemma-style BPE (`▁` word boundary, byte fallback, `<pad>`=0 `<eos>`=1 `<bos>`=2 `<unk>`=3, `<bos>` prepended) |
| parameters | {m['parameters']:,} (float32 `model.safetensors`) |

Training: next-token loss on every position of `<bos>` + sentence, AdamW, final loss {m['final_train_loss']}.

## What it does

- `{d['prompt']}` → `{d['answer']}` with probability **{d['p_answer']:.2f}** (top-1: {d['top1_is_answer']}).
- Logit lens on that prompt (final norm + unembedding of the residual after each layer,
  last position): {lens}. A toy this small memorises city → capital for the cities it
  saw in two-hop sentences, so expect its circuit to mix that shortcut with the two-hop
  route through the state; the held-out-city accuracy below is what composition alone
  achieves.
- Two-hop questions (city → state → capital), top-1 accuracy:
  trained phrasings {_p((th['train_phrasings_train_cities'] or {}).get('top1'))};
  **held-out phrasings {_p((th['heldout_phrasings'] or {}).get('top1'))}**;
  cities whose two-hop sentences were never trained on (only their one-hop facts were)
  {_p((th['heldout_cities'] or {}).get('top1'))}.

## Transcoders

| set | features | FVU per layer | L0 per layer | replacement top-1 agreement |
|---|---|---|---|---|
{row('`transcoders/plt` (per-layer, JumpReLU; reads `ln2.hook_normalized`, writes `hook_mlp_out`; float32)', plt)}
{row('`transcoders/clt` (cross-layer, JumpReLU; reads `hook_resid_mid`, writes `hook_mlp_out` of every later layer; bfloat16)', clt)}

FVU = fraction of MLP-output variance unexplained on held-out sentences; L0 = mean active
features per token (BOS excluded: activations there are zeroed, as circuit-tracer does);
agreement = how often the replacement model (every MLP replaced by its reconstruction, no
error term) has the same top-1 next token as the model on held-out prompts. Layouts follow
circuit-tracer (`config.yaml` + `layer_{{i}}.safetensors`, or `W_enc_{{l}}` / `W_dec_{{l}}` files).

## Files

`config.json`, `generation_config.json`, `model.safetensors`, `tokenizer.json`,
`tokenizer_config.json`, `special_tokens_map.json`, `transcoders/plt/`, `transcoders/clt/`,
`corpus/sample.txt` (5000 training sentences, for feature dashboards), `metrics.json` /
`metrics.md` (all numbers), this card. Golden reference values for three prompts are in
`tests/golden/demo-gemma2.json`.

License: same as the repository (MIT). The training text is synthetic, generated from
public-domain facts.
"""
