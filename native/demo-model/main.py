#!/usr/bin/python3
"""Build the embedded demo model end to end, deterministically from a seed.

    /usr/bin/python3 native/demo-model/main.py --seed 0 --out resources/models/gemma2-demo \
        --golden tests/golden/demo-gemma2.json

Steps: corpus -> tokenizer -> Gemma-2 LM -> activations -> PLT + CLT -> metrics -> golden.
Progress goes to stdout; wall-clock times are printed but never written into the output
files (so a re-run with the same seed reproduces them byte for byte).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import corpus  # noqa: E402
import export  # noqa: E402
import golden  # noqa: E402
import metrics  # noqa: E402
import modelcard  # noqa: E402
import tokenizer as tkz  # noqa: E402
import train  # noqa: E402
import transcoders as tcs  # noqa: E402
from gemma2 import Gemma2, Gemma2Config  # noqa: E402

MODEL_NAME = "circuit-workbench/gemma2-demo"

# sizes and schedules (the defaults are what resources/models/gemma2-demo was built with)
DEFAULTS = dict(
    bpe_merges=1800, hidden=128, intermediate=512, layers=4, heads=4, kv_heads=2, head_dim=32,
    lm_steps=500, lm_batch=128, lm_lr=4e-3,
    act_sentences=12000,
    plt_features=512, plt_steps=1200, plt_batch=1024, plt_lr=2e-3, plt_l0=4e-4,
    clt_features=512, clt_steps=1200, clt_batch=1024, clt_lr=2e-3, clt_l0=4e-4,
    pre_coef=1e-4, jump_eps=0.05,
)


def set_determinism(seed: int, threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)


def build_tokenizer(texts: list[str], probs: list[float], merges: int) -> tkz.BPETokenizer:
    wc: Counter[str] = Counter()
    for t, p in zip(texts, probs):
        for w in tkz._words(t):
            wc[w] += p
    counts = {w: max(1, int(round(c * 1e6))) for w, c in sorted(wc.items())}
    # names that must be one token when preceded by a space: every state, city and capital
    # word, every country / language / colour / antonym / plural word
    must: list[str] = []
    names = []
    for s, cap, cities in corpus.STATES:
        names += [s, cap] + cities
    for c, lang, cap in corpus.COUNTRIES:
        names += [c, lang, cap]
    for a, b in corpus.ANTONYMS + corpus.PLURALS:
        names += [a, b]
    names += [c for _, c in corpus.COLORS]
    for n in names:
        for w in n.split(" "):
            sw = tkz.SP + w
            if sw not in must:
                must.append(sw)
    tok = tkz.BPETokenizer.train(counts, merges, must_be_single=must)
    tok.pad_vocab(128)
    return tok


@torch.no_grad()
def collect_activations(model, tok, sentences: list[str], batch: int = 512):
    """Hook values at every non-BOS, non-pad position: ln2.hook_normalized, hook_resid_mid
    and hook_mlp_out per layer, each [N, d]."""
    L = model.cfg.num_hidden_layers
    keys = ["ln2.hook_normalized", "hook_resid_mid", "hook_mlp_out"]
    out = {k: [[] for _ in range(L)] for k in keys}
    for s in range(0, len(sentences), batch):
        seqs = [tok.encode(t, add_bos=True) for t in sentences[s:s + batch]]
        ids, mask = train.make_batch(seqs, list(range(len(seqs))))
        cache: dict = {}
        model(ids, cache=cache)
        m = mask.clone()
        m[:, 0] = False  # BOS excluded
        for k in keys:
            for l in range(L):
                out[k][l].append(cache[f"blocks.{l}.{k}"][m].float())
    return {k: [torch.cat(v) for v in out[k]] for k in keys}


def load_model(model_dir: str) -> Gemma2:
    import json
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = Gemma2Config.from_hf(json.load(f))
    model = Gemma2(cfg)
    sd = export.read_safetensors(os.path.join(model_dir, "model.safetensors"))
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    model.eval()
    return model


def load_plt(folder: str, L: int) -> list[dict]:
    out = []
    for l in range(L):
        t = export.read_safetensors(os.path.join(folder, f"layer_{l}.safetensors"))
        out.append({"W_enc": t["W_enc"].float(), "W_dec": t["W_dec"].float(), "b_enc": t["b_enc"].float(),
                    "b_dec": t["b_dec"].float(), "threshold": t["activation_function.threshold"].float()})
    return out


def load_clt(folder: str, L: int) -> dict:
    p: dict = {"W_enc": [], "b_enc": [], "b_dec": [], "threshold": [], "W_dec": []}
    for l in range(L):
        e = export.read_safetensors(os.path.join(folder, f"W_enc_{l}.safetensors"))
        d = export.read_safetensors(os.path.join(folder, f"W_dec_{l}.safetensors"))
        p["W_enc"].append(e[f"W_enc_{l}"].float())
        p["b_enc"].append(e[f"b_enc_{l}"].float())
        p["b_dec"].append(e[f"b_dec_{l}"].float())
        p["threshold"].append(e[f"threshold_{l}"].float())
        p["W_dec"].append(d[f"W_dec_{l}"].float())
    return p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="resources/models/gemma2-demo")
    ap.add_argument("--golden", default="tests/golden/demo-gemma2.json",
                    help="golden JSON path ('' to skip)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (results depend on it; 1 is fastest on a shared 2-core machine)")
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)
    ap.add_argument("--card-only", action="store_true",
                    help="only re-render README.md (the model card) from an existing --out")
    args = ap.parse_args(argv)
    hp = {k: getattr(args, k) for k in DEFAULTS}
    if args.card_only:
        import json
        with open(os.path.join(args.out, "metrics.json")) as f:
            rep = json.load(f)
        tok = tkz.from_tokenizer_json(os.path.join(args.out, "tokenizer.json"))
        cfg = load_model(args.out).cfg
        export.write_text(os.path.join(args.out, "README.md"), modelcard.render(rep, cfg, tok))
        return 0
    set_determinism(args.seed, args.threads)
    out = args.out
    os.makedirs(out, exist_ok=True)
    t_start = time.time()
    times: dict[str, float] = {}

    def log(msg: str) -> None:
        print(f"[{time.time() - t_start:7.1f}s] {msg}", flush=True)

    # 1. corpus ----------------------------------------------------------------------------
    examples = corpus.build_examples(args.seed)
    texts, probs = corpus.training_pool(examples)
    log(f"corpus: {len(examples)} distinct sentences, {len(texts)} for training")

    # 2. tokenizer -------------------------------------------------------------------------
    tok = build_tokenizer(texts, probs, hp["bpe_merges"])
    export.write_json(os.path.join(out, "tokenizer.json"), tok.tokenizer_json())
    export.write_json(os.path.join(out, "tokenizer_config.json"), tok.tokenizer_config())
    export.write_json(os.path.join(out, "special_tokens_map.json"), tok.special_tokens_map())
    log(f"tokenizer: vocab {len(tok.vocab)}, {len(tok.merges)} merges")

    # 3. language model --------------------------------------------------------------------
    cfg = Gemma2Config(vocab_size=len(tok.vocab), hidden_size=hp["hidden"],
                       intermediate_size=hp["intermediate"], num_hidden_layers=hp["layers"],
                       num_attention_heads=hp["heads"], num_key_value_heads=hp["kv_heads"],
                       head_dim=hp["head_dim"], query_pre_attn_scalar=hp["head_dim"])
    model = Gemma2(cfg)
    model.init_weights(torch.Generator().manual_seed(args.seed * 7919 + 3))
    seqs = train.encode_all(tok, texts)
    t0 = time.time()
    lm_hist = train.train_lm(model, seqs, probs, steps=hp["lm_steps"], batch=hp["lm_batch"],
                             lr=hp["lm_lr"], seed=args.seed, log=log)
    times["lm"] = time.time() - t0
    export.export_model(model, out)
    model = load_model(out)  # from here on, only the files as written
    log(f"lm trained in {times['lm']:.0f}s; exported")

    # 4. transcoders -----------------------------------------------------------------------
    gen = torch.Generator().manual_seed(args.seed * 7919 + 5)
    pidx = torch.multinomial(torch.tensor(probs, dtype=torch.float64), hp["act_sentences"],
                             replacement=True, generator=gen).tolist()
    acts = collect_activations(model, tok, [texts[i] for i in pidx])
    n_tok = acts["hook_mlp_out"][0].shape[0]
    log(f"activations: {n_tok} tokens per layer (BOS excluded)")
    t0 = time.time()
    plt = tcs.train_plt(acts["ln2.hook_normalized"], acts["hook_mlp_out"], hp["plt_features"],
                        steps=hp["plt_steps"], batch=hp["plt_batch"], lr=hp["plt_lr"],
                        l0_coef=hp["plt_l0"], pre_coef=hp["pre_coef"], eps=hp["jump_eps"],
                        seed=args.seed, log=log)
    times["plt"] = time.time() - t0
    export.export_plt(plt, os.path.join(out, "transcoders", "plt"), MODEL_NAME, torch.float32)
    t0 = time.time()
    clt = tcs.train_clt(acts["hook_resid_mid"], acts["hook_mlp_out"], hp["clt_features"],
                        steps=hp["clt_steps"], batch=hp["clt_batch"], lr=hp["clt_lr"],
                        l0_coef=hp["clt_l0"], pre_coef=hp["pre_coef"], eps=hp["jump_eps"],
                        seed=args.seed, log=log)
    times["clt"] = time.time() - t0
    export.export_clt(clt, os.path.join(out, "transcoders", "clt"), MODEL_NAME, torch.bfloat16)
    del acts
    L = cfg.num_hidden_layers
    plt_p = load_plt(os.path.join(out, "transcoders", "plt"), L)
    clt_p = load_clt(os.path.join(out, "transcoders", "clt"), L)
    train_acts_for_dead = collect_activations(model, tok, [texts[i] for i in pidx[:4000]])
    log(f"transcoders trained (plt {times['plt']:.0f}s, clt {times['clt']:.0f}s); exported")

    # 5. metrics, corpus sample, model card, golden ------------------------------------------
    rep = metrics.full_report(model, tok, examples, plt_p, clt_p, train_acts_for_dead, hp,
                              n_transcoder_tokens=n_tok, lm_history=lm_hist, seed=args.seed)
    export.write_json(os.path.join(out, "metrics.json"), rep)
    export.write_text(os.path.join(out, "metrics.md"), metrics.markdown(rep))
    rng = random.Random(args.seed * 1000 + 31)
    sample = [e.text + "." for e in examples if e.split == "train"]
    rng.shuffle(sample)
    export.write_text(os.path.join(out, "corpus", "sample.txt"), "\n".join(sample[:5000]) + "\n")
    export.write_text(os.path.join(out, "README.md"), modelcard.render(rep, cfg, tok))
    log("metrics written")
    if args.golden:
        rel = os.path.relpath(os.path.abspath(out), os.path.abspath(os.path.join(HERE, "..", "..")))
        n = golden.write_golden(args.golden, model, tok, plt_p, clt_p, out, rel)
        log(f"golden: {args.golden} ({n} bytes)")
    times["total"] = time.time() - t_start
    log("done: " + ", ".join(f"{k} {v:.0f}s" for k, v in times.items()))
    print(metrics.summary_line(rep), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
