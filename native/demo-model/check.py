#!/usr/bin/python3
"""Checks of a built demo model (run after main.py):

    /usr/bin/python3 native/demo-model/check.py resources/models/gemma2-demo tests/golden/demo-gemma2.json

1. tokenizer: the Python BPE (re-read from tokenizer.json) and `@huggingface/tokenizers`
   (node, the package the app uses) give the same ids and decode back, on the corpus sample,
   the golden prompts and a few odd strings (byte fallback, double spaces, digits);
2. independent forward pass: native/reference (a separate implementation of formats.md,
   its own safetensors reader and transcoder code) recomputes logits, every hook and both
   transcoder sets' activations / errors for the golden prompts; all must match the golden
   file within float32 rounding;
3. file formats: safetensors headers, config.yaml keys, tensor names and shapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import tokenizer as tkz  # noqa: E402


def check_tokenizer(model_dir: str, golden: dict) -> None:
    tok = tkz.from_tokenizer_json(os.path.join(model_dir, "tokenizer.json"))
    with open(os.path.join(model_dir, "corpus", "sample.txt"), encoding="utf-8") as f:
        texts = [ln.rstrip("\n") for ln in f if ln.strip()]
    texts += [c["prompt"] for c in golden["cases"]]
    texts += ["Café naïve 東京 🙂", "two  spaces and a trailing space ", " leading space",
              "12345 + 678 = 13023", "Dallas,Texas;Austin!", "UPPER lower MiXeD", "tab\tand\nnewline"]
    cases = [{"text": t, "ids": tok.encode(t, add_bos=True)} for t in texts]
    for c in golden["cases"]:
        assert tok.encode(c["prompt"], add_bos=True) == c["token_ids"], c["prompt"]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cases, f)
        path = f.name
    r = subprocess.run(["node", os.path.join(HERE, "check_tokenizer.mjs"), model_dir, path],
                       capture_output=True, text=True, cwd=ROOT)
    os.unlink(path)
    print(r.stdout.strip())
    if r.returncode != 0:
        print(r.stderr)
        raise SystemExit("tokenizer check failed")
    sp = tkz.SP
    for w in ["Austin", "Dallas", "Texas"]:
        assert (sp + w) in tok.vocab, f"'{sp}{w}' is not one token"
    print("tokenizer: OK")


def check_reference(model_dir: str, golden: dict) -> None:
    sys.path.insert(0, os.path.join(ROOT, "native", "reference"))
    import model as ref_model  # noqa: E402
    import transcoders as ref_tc  # noqa: E402
    from tensorio import load_checkpoint, read_json  # noqa: E402

    cfg = read_json(os.path.join(model_dir, "config.json"))
    W = load_checkpoint(model_dir)
    tcs = {n: ref_tc.load(os.path.join(model_dir, "transcoders", n)) for n in ("plt", "clt")}
    worst = {}

    def cmp(name: str, ref: torch.Tensor, gold) -> None:
        g = torch.tensor(gold["data"] if isinstance(gold, dict) else gold, dtype=torch.float32).reshape(ref.shape)
        scale = max(1.0, float(ref.abs().max()))
        err = float((ref.float() - g).abs().max()) / scale
        key = name.split(".")[-1] if name.startswith("blocks.") else name
        worst[key] = max(worst.get(key, 0.0), err)

    for case in golden["cases"]:
        ids = case["token_ids"]
        pre, logits, hooks = ref_model.forward(cfg, W, ids)
        cmp("logits", logits, case["logits"])
        cmp("logits_pre_softcap", pre, case["logits_pre_softcap"])
        assert set(hooks) == set(case["hooks"]), sorted(set(hooks) ^ set(case["hooks"]))
        for k, v in hooks.items():
            cmp(k, v, case["hooks"][k])
        for n, tc in tcs.items():
            acts, errs = ref_tc.run(tc, hooks)
            for l in acts:
                cmp(f"{n}.activations", acts[l], case["transcoders"][n]["activations"][str(l)])
                cmp(f"{n}.reconstruction_error", errs[l], case["transcoders"][n]["reconstruction_error"][str(l)])
        top = int(logits[-1].argmax())
        print(f"  reference: {case['prompt']!r} -> top-1 id {top}")
    for k in sorted(worst):
        print(f"  max |reference − golden| / max(1, max|ref|)  {k:32s} {worst[k]:.2e}")
    bad = {k: v for k, v in worst.items() if v > 2e-4}
    if bad:
        raise SystemExit(f"reference mismatch: {bad}")
    print("independent reference (native/reference): OK")


def check_sliding_window() -> None:
    """The demo config's window (4096) never binds on short prompts, so check the code path
    on a random model with window 3 against native/reference."""
    sys.path.insert(0, os.path.join(ROOT, "native", "reference"))
    import model as ref_model  # noqa: E402
    from tensorio import load_checkpoint  # noqa: E402

    import export
    from gemma2 import Gemma2, Gemma2Config
    cfg = Gemma2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                       query_pre_attn_scalar=8, sliding_window=3)
    m = Gemma2(cfg)
    m.init_weights(torch.Generator().manual_seed(1))
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(2)) * 0.3)
            elif "proj" in n:
                p.mul_(20)  # large scores so that the soft-cap matters
    with tempfile.TemporaryDirectory() as d:
        export.export_model(m, d)
        W = load_checkpoint(d)
        ids = [2, 5, 9, 11, 40, 7, 3, 60, 12]
        pre, logits, hooks = ref_model.forward(json.load(open(os.path.join(d, "config.json"))), W, ids)
        cache: dict = {}
        with torch.no_grad():
            mine, mine_pre = m(torch.tensor([ids]), cache=cache, return_pre_softcap=True)
    assert torch.allclose(mine[0], logits, atol=1e-4, rtol=1e-4), float((mine[0] - logits).abs().max())
    p0 = cache["blocks.0.attn.hook_pattern"][0]
    i = torch.arange(len(ids))[:, None]
    j = torch.arange(len(ids))[None, :]
    assert bool((p0[:, (i - j) >= 3] == 0).all()) and bool((p0[:, ((i - j) >= 0) & ((i - j) < 3)] > 0).all())
    p1 = cache["blocks.1.attn.hook_pattern"][0]
    assert bool((p1[:, len(ids) - 1, 0] > 0).all())
    for l in range(2):
        assert torch.allclose(cache[f"blocks.{l}.attn.hook_pattern"][0], hooks[f"blocks.{l}.attn.hook_pattern"], atol=1e-5)
    print(f"sliding window (window 3, even layers) vs reference: OK (max |Δlogit| {float((mine[0] - logits).abs().max()):.1e})")


def check_files(model_dir: str) -> None:
    import export
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    assert cfg["model_type"] == "gemma2" and cfg["architectures"] == ["Gemma2ForCausalLM"]
    L, d = cfg["num_hidden_layers"], cfg["hidden_size"]
    sd = export.read_safetensors(os.path.join(model_dir, "model.safetensors"))
    names = {"model.embed_tokens.weight", "model.norm.weight"}
    for i in range(L):
        for p in ("q", "k", "v", "o"):
            names.add(f"model.layers.{i}.self_attn.{p}_proj.weight")
        for p in ("gate", "up", "down"):
            names.add(f"model.layers.{i}.mlp.{p}_proj.weight")
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            names.add(f"model.layers.{i}.{n}.weight")
    assert set(sd) == names, sorted(set(sd) ^ names)
    for i in range(L):
        t = export.read_safetensors(os.path.join(model_dir, "transcoders", "plt", f"layer_{i}.safetensors"))
        d_t = t["b_enc"].shape[0]
        assert set(t) == {"W_enc", "W_dec", "b_enc", "b_dec", "activation_function.threshold"}
        assert t["W_enc"].shape == (d_t, d) and t["W_dec"].shape == (d_t, d) and t["b_dec"].shape == (d,)
        e = export.read_safetensors(os.path.join(model_dir, "transcoders", "clt", f"W_enc_{i}.safetensors"))
        w = export.read_safetensors(os.path.join(model_dir, "transcoders", "clt", f"W_dec_{i}.safetensors"))
        d_c = e[f"b_enc_{i}"].shape[0]
        assert set(e) == {f"W_enc_{i}", f"b_enc_{i}", f"b_dec_{i}", f"threshold_{i}"}
        assert e[f"W_enc_{i}"].shape == (d_c, d) and w[f"W_dec_{i}"].shape == (d_c, L - i, d)
    print("file layout: OK")


def main(argv) -> int:
    model_dir = argv[0] if argv else os.path.join(ROOT, "resources", "models", "gemma2-demo")
    gpath = argv[1] if len(argv) > 1 else os.path.join(ROOT, "tests", "golden", "demo-gemma2.json")
    torch.set_num_threads(1)
    with open(gpath) as f:
        golden = json.load(f)
    check_files(model_dir)
    check_sliding_window()
    check_tokenizer(model_dir, golden)
    check_reference(model_dir, golden)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
