#!/usr/bin/python3
"""Golden reference values for the tiny fixtures.

    /usr/bin/python3 native/reference/golden.py FIXTURES_DIR OUT_DIR [fixture ...]

Reads FIXTURES_DIR/<fixture>/ (written by tests/fixtures/generate.ts), runs the plain
PyTorch float32 reference (model.py, transcoders.py) on the prompts in prompts.json, and
writes OUT_DIR/<fixture>.json in the format of tests/golden/README.md.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import model  # noqa: E402
import selftest  # noqa: E402
import transcoders  # noqa: E402
from tensorio import load_checkpoint, read_json, sha256_tree  # noqa: E402

FIXTURES = ["tiny-gpt2", "tiny-llama", "tiny-gemma2", "tiny-qwen3"]
MAX_BYTES = 1_000_000


def f32_list(t: torch.Tensor) -> list:
    """Flat row-major values, each the shortest decimal that round-trips its float32."""
    arr = t.detach().to(torch.float32).contiguous().numpy().reshape(-1)
    assert np.isfinite(arr).all(), "non-finite value"
    return [float(repr(v)) for v in arr]


def packed(t: torch.Tensor) -> dict:
    return {"shape": list(t.shape), "data": f32_list(t)}


def self_checks(cfg, hooks, L, T):
    """Identities between the recorded hooks (catch bookkeeping slips in the reference)."""
    close = lambda a, b: torch.allclose(a, b, atol=1e-5, rtol=1e-5)  # noqa: E731
    for l in range(L):
        B = f"blocks.{l}."
        assert close(hooks[B + "hook_resid_mid"], hooks[B + "hook_resid_pre"] + hooks[B + "hook_attn_out"])
        assert close(hooks[B + "hook_resid_post"], hooks[B + "hook_resid_mid"] + hooks[B + "hook_mlp_out"])
        if l + 1 < L:
            assert torch.equal(hooks[B + "hook_resid_post"], hooks[f"blocks.{l + 1}.hook_resid_pre"])
        p = hooks[B + "attn.hook_pattern"]
        assert bool((torch.triu(p, diagonal=1) == 0).all()), "causal mask"
        if cfg["model_type"] == "gemma2" and l % 2 == 0:
            w = cfg["sliding_window"]
            i = torch.arange(T)[:, None]
            j = torch.arange(T)[None, :]
            assert bool((p[:, (i - j) >= w] == 0).all()), "sliding window"
            assert bool((p[:, ((i - j) >= 0) & ((i - j) < w)] > 0).all())
        if cfg["model_type"] == "gemma2" and l % 2 == 1 and T > cfg["sliding_window"]:
            assert bool((p[:, T - 1, 0] > 0).all()), "odd layers are global"
        n = hooks[B + "ln2.hook_normalized"]
        if cfg["model_type"] != "gpt2":
            assert torch.allclose((n * n).mean(-1), torch.ones(T), atol=1e-4)
        assert hooks[B + "mlp.hook_out"].shape == (T, n.shape[1])


def run_fixture(fx_dir: str, name: str) -> dict:
    root = os.path.join(fx_dir, name)
    cfg = read_json(os.path.join(root, "config.json"))
    W = load_checkpoint(root)
    prompts = read_json(os.path.join(root, "prompts.json"))
    tc_dir = os.path.join(root, "transcoders")
    tcs = {n: transcoders.load(os.path.join(tc_dir, n)) for n in sorted(os.listdir(tc_dir))} if os.path.isdir(tc_dir) else {}
    L = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    cases = []
    stats = {}
    for ids in prompts["cases"]:
        assert ids[0] == prompts["bos"]
        check = {}
        pre, logits, hooks = model.forward(cfg, W, ids, check)
        T = len(ids)
        self_checks(cfg, hooks, L, T)
        stats["max|score| pre-cap"] = max(stats.get("max|score| pre-cap", 0), check.get("max_abs_score_precap", 0))
        stats["max|logit| pre-cap"] = max(stats.get("max|logit| pre-cap", 0), pre.abs().max().item())
        stats["max|logits - pre|"] = max(stats.get("max|logits - pre|", 0), (logits - pre).abs().max().item())
        case = {
            "token_ids": ids,
            "logits": packed(logits)["data"],
            "logits_pre_softcap": packed(pre)["data"],
            "hooks": {k: packed(v) for k, v in hooks.items()},
            "transcoders": {},
        }
        V = logits.shape[1]
        case["logits"] = [case["logits"][t * V : (t + 1) * V] for t in range(T)]
        case["logits_pre_softcap"] = [case["logits_pre_softcap"][t * V : (t + 1) * V] for t in range(T)]
        for tn, tc in tcs.items():
            acts, errs = transcoders.run(tc, hooks)
            frac = [float((a[1:] != 0).float().mean()) for a in acts.values()]
            stats[f"{tn} active fraction"] = stats.get(f"{tn} active fraction", []) + [round(f, 3) for f in frac]
            rel = [
                float(errs[l][1:].norm() / hooks[f"blocks.{l}.{tc['config']['feature_output_hook']}"][1:].norm())
                for l in errs
            ]
            stats[f"{tn} |err|/|out|"] = stats.get(f"{tn} |err|/|out|", []) + [round(r, 2) for r in rel]
            case["transcoders"][tn] = {
                "activations": {str(l): packed(a) for l, a in acts.items()},
                "reconstruction_error": {str(l): packed(e) for l, e in errs.items()},
            }
        if not case["transcoders"]:
            del case["transcoders"]
        cases.append(case)
    if cfg["model_type"] == "llama":
        stats["llama3 rope branches"] = sorted(model.rope_inv_freq.branches)
    print(f"{name}: " + "; ".join(f"{k} {v}" for k, v in stats.items()), file=sys.stderr)
    return {
        "generator": "native/reference/golden.py",
        "checkpoint": name,
        "checkpoint_sha256": sha256_tree(root),
        "dtype": "float32",
        "cases": cases,
    }


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    fx_dir, out_dir, names = argv[0], argv[1], argv[2:] or FIXTURES
    torch.set_num_threads(1)
    selftest.main()
    os.makedirs(out_dir, exist_ok=True)
    for name in names:
        doc = run_fixture(fx_dir, name)
        text = json.dumps(doc, separators=(",", ":")) + "\n"
        assert len(text) < MAX_BYTES, f"{name}: golden JSON is {len(text)} bytes"
        path = os.path.join(out_dir, f"{name}.json")
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {path} ({len(text)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
