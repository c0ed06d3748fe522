#!/usr/bin/python3
"""Golden attribution graphs (reference: attribution.py, float64 PyTorch + autograd).

    /usr/bin/python3 native/reference/attribution_golden.py FIXTURES_DIR OUT_DIR [FIXTURE/SET ...]
    /usr/bin/python3 native/reference/attribution_golden.py [FIXTURES_DIR] OUT_DIR \\
        --model DIR --transcoders DIR [--prompt-ids 2,651,6037] [--name NAME]

First form: for each FIXTURE/SET (default: all of DEFAULT_SETS) reads
FIXTURES_DIR/<fixture>/ and its transcoders/<set>/ (written by tests/fixtures/generate.ts),
takes the first prompt case of prompts.json and writes OUT_DIR/attribution-<fixture>-<set>.json.
Second form: any model folder (config.json + safetensors) and transcoder folder (PLT
config.yaml + layer files, or CLT layout); the prompt is token ids (no tokenizer; include
the BOS id yourself), default the first case of DIR/prompts.json; the output is
OUT_DIR/attribution-<NAME>.json (NAME default <model folder>-<transcoder folder>).

Options: --max-n-logits 10, --desired-logit-prob 0.95, --max-bytes 1500000.
Every file is checked before it is written: completeness (Σ_s A[t,s] + c_t = pre-activation),
intervention consistency for every source column, causality, replacement = original, and the
float64 active-feature set / logit choice agree with the float32 reference (model.py +
transcoders.py), with the margins printed to stderr.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import attribution as attr  # noqa: E402
import model as ref  # noqa: E402
import transcoders as tcio  # noqa: E402
from tensorio import load_checkpoint, read_json, sha256_tree  # noqa: E402

DEFAULT_SETS = ["tiny-gemma2/plt", "tiny-gemma2/clt", "tiny-llama/plt-skip", "tiny-gpt2/plt", "tiny-qwen3/plt-topk"]


def g9(v: float) -> float:
    """~9 significant digits (the adjacency)."""
    return float(f"{v:.9g}")


def full(t) -> list:
    """Every digit of a float64 (shortest round-trip repr)."""
    return [float(v) for v in t]


# ---------------------------------------------------------------------------------------
# float32 cross-check: the discrete choices (active features, logits) and their margins


def float32_crosscheck(model_dir, tc_dir, ids, g: attr.Graph, tc64: attr.Transcoders, args) -> dict:
    cfg = read_json(os.path.join(model_dir, "config.json"))
    W = load_checkpoint(model_dir)
    tc = tcio.load(tc_dir)
    _pre, logits, hooks = ref.forward(cfg, W, ids)
    acts32, _errs = tcio.run(tc, hooks)
    out = {}
    # same active set
    act64 = {l: g.acts[l] != 0 for l in g.acts}
    mism = sum(int((acts32[l] != 0).ne(act64[l]).sum()) for l in act64)
    assert mism == 0, f"float32 and float64 disagree on {mism} active features"
    out["float32_max_abs_activation_diff"] = max(float((acts32[l].double() - g.acts[l]).abs().max()) for l in act64)
    # margins of the activation decision (pos ≥ 1)
    margin = float("inf")
    for l in range(len(tc64.W_enc)):
        pre = (torch.matmul(attr.read_value(tc64, g.rec, l), tc64.W_enc[l].t()) + tc64.b_enc[l])[1:]
        if tc64.act_kind == "jumprelu":
            margin = min(margin, float((pre - tc64.threshold[l]).abs().min()))
        elif tc64.act_kind == "relu":
            margin = min(margin, float(pre.abs().min()))
        else:  # topk: gap between the k-th and (k+1)-th, and the k-th vs 0 (ReLU after)
            srt = torch.sort(pre, dim=-1, descending=True).values
            k = tc64.k
            margin = min(margin, float((srt[:, k - 1] - srt[:, k]).min()), float(srt[:, :k].abs().min()))
    out["activation_decision_margin"] = margin
    # same logits
    cap = cfg.get("final_logit_softcapping") if cfg["model_type"] == "gemma2" else None
    ids32, _p32 = attr.choose_logits(logits[-1].double(), args.max_n_logits, args.desired_logit_prob)
    assert ids32 == g.logit_ids, f"float32 logit choice {ids32} != float64 {g.logit_ids}"
    probs = sorted(torch.softmax(logits[-1].double(), -1).tolist(), reverse=True)
    n = len(g.logit_ids)
    cum = sum(probs[:n])
    out["logit_choice_float32"] = {
        "cumulative_probability": cum,
        "prob_gap_at_cut": probs[n - 1] - probs[n] if n < len(probs) else None,
        # the smallest gap between consecutive chosen logits (their order is the node order)
        "min_prob_gap_within": min((probs[j] - probs[j + 1] for j in range(n - 1)), default=None),
        "final_softcap": cap,
    }
    return out


# ---------------------------------------------------------------------------------------


def build(model_dir, tc_dir, ids, name, args, checkpoint_label, set_label) -> dict:
    M = attr.load_model(model_dir)
    tc = attr.load_transcoders(tc_dir)
    g = attr.attribute(M, tc, ids, args.max_n_logits, args.desired_logit_prob)
    g.checks.update(float32_crosscheck(model_dir, tc_dir, ids, g, tc, args))
    L, T, F = M.L, len(ids), len(g.feats)
    lay = attr.layout(F, L, T, len(g.logit_ids))
    rows = list(range(F)) + list(range(lay["logit_offset"], lay["total"]))
    adjacency = [[g9(v) for v in row] for row in g.A.tolist()]
    # completeness with the stored (rounded) adjacency
    A9 = torch.tensor(adjacency, dtype=torch.float64)
    g.checks["completeness_max_rel_rounded"], _ = attr.completeness(A9, rows, g.pre, g.c)
    return {
        "generator": "native/reference/attribution_golden.py",
        "name": name,
        "checkpoint": checkpoint_label,
        "transcoder_set": set_label,
        "checkpoint_sha256": sha256_tree(model_dir),
        "transcoder_sha256": sha256_tree(tc_dir),
        "dtype": "float64",
        "params": {"max_n_logits": args.max_n_logits, "desired_logit_prob": args.desired_logit_prob},
        "transcoder": {
            "kind": tc.kind,
            "feature_input_hook": tc.read_hook,
            "feature_output_hook": tc.write_hook,
            "activation": tc.act_kind,
        },
        "token_ids": list(ids),
        "n_layers": L,
        "n_positions": T,
        "features": {
            "layer": [f[0] for f in g.feats],
            "position": [f[1] for f in g.feats],
            "index": [f[2] for f in g.feats],
            "activation": full(g.feat_acts),
        },
        "logits": {"token_id": g.logit_ids, "probability": full(g.logit_probs)},
        "layout": lay,
        # rows = targets, columns = sources, [features | errors l·T+p | tokens | logits]
        "adjacency": adjacency,
        # the target rows (features, then logits) and, in that order, their values
        "target_rows": rows,
        "target_pre_activation": full(g.pre.tolist()),
        "target_bias_constant": full(g.c.tolist()),
        "checks": g.checks,
    }


def write(doc: dict, out_dir: str, max_bytes: int) -> None:
    text = json.dumps(doc, separators=(",", ":")) + "\n"
    assert len(text) < max_bytes, f"{doc['name']}: {len(text)} bytes (limit {max_bytes}; see --max-bytes)"
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"attribution-{doc['name']}.json")
    with open(path, "w") as f:
        f.write(text)
    ck = doc["checks"]
    lay = doc["layout"]
    print(
        f"{doc['name']}: T={doc['n_positions']} features={lay['n_features']} logits={lay['n_logits']} "
        f"N={lay['total']}; completeness rel {ck['completeness_max_rel']:.2e} "
        f"(to scale {ck['completeness_max_rel_to_scale']:.2e}, rounded {ck['completeness_max_rel_rounded']:.2e}); "
        f"intervention {ck['intervention_max_rel_to_scale']:.2e}; replacement {ck['replacement_vs_original_max_abs']:.2e}; "
        f"activation margin {ck['activation_decision_margin']:.3g}; logits cum p "
        f"{ck['logit_choice_float32']['cumulative_probability']:.4f}; wrote {path} ({len(text)} bytes)",
        file=sys.stderr,
    )


def parse_ids(s: str) -> list:
    return [int(x) for x in s.replace(",", " ").split()]


def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help="FIXTURES_DIR OUT_DIR [FIXTURE/SET ...], or [FIXTURES_DIR] OUT_DIR with --model")
    ap.add_argument("--model")
    ap.add_argument("--transcoders")
    ap.add_argument("--prompt-ids", nargs="+")
    ap.add_argument("--name")
    ap.add_argument("--max-n-logits", type=int, default=10)
    ap.add_argument("--desired-logit-prob", type=float, default=0.95)
    ap.add_argument("--max-bytes", type=int, default=1_500_000)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    if args.model:
        if not args.transcoders:
            ap.error("--model needs --transcoders")
        out_dir = args.paths[-1]
        if args.prompt_ids:
            ids = parse_ids(" ".join(args.prompt_ids))
        else:
            pj = os.path.join(args.model, "prompts.json")
            if not os.path.exists(pj):
                ap.error("no --prompt-ids and no prompts.json in the model folder")
            ids = read_json(pj)["cases"][0]
        mname = os.path.basename(os.path.normpath(args.model))
        tname = os.path.basename(os.path.normpath(args.transcoders))
        name = args.name or f"{mname}-{tname}"
        doc = build(args.model, args.transcoders, ids, name, args, mname, tname)
        write(doc, out_dir, args.max_bytes)
        return 0

    if len(args.paths) < 2:
        ap.error("FIXTURES_DIR OUT_DIR required")
    fx_dir, out_dir, sets = args.paths[0], args.paths[1], args.paths[2:] or DEFAULT_SETS
    for s in sets:
        fixture, tname = s.split("/")
        root = os.path.join(fx_dir, fixture)
        prompts = read_json(os.path.join(root, "prompts.json"))
        ids = prompts["cases"][0]
        assert ids[0] == prompts["bos"]
        doc = build(root, os.path.join(root, "transcoders", tname), ids, f"{fixture}-{tname}", args, fixture, tname)
        write(doc, out_dir, args.max_bytes)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
