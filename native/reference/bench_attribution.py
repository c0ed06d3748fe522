#!/usr/bin/python3
"""PyTorch side of bench/trace.ts: the attribution rows of given targets, computed the way
circuit-tracer computes them, in float32, timed, and checked against the engine's rows.

    /usr/bin/python3 native/reference/bench_attribution.py --model DIR --transcoders DIR
        --targets targets.json [--engine-rows engine-rows.f32] [--repeat 3] [--warmup 1]
        [--threads 2]

targets.json (written by bench/trace-child.ts): the token ids, the engine's active-feature
column space, the logit token ids and the feature batches in the order the engine ran them.
One JSON object on stdout's last line.

How (circuit-tracer's `AttributionContext`, written out with torch built-ins):

1. Setup (timed apart, not compared): one live float32 forward of the original model
   (native/reference/model.py) records every attention pattern and norm scale; the
   transcoders (native/reference/transcoders.py) give activations and errors (position 0
   zeroed); each write layer m gets, per position p, the matrix of source vectors written
   there: a·W_dec rows of the active features (CLT: every source layer s ≤ m).
2. Per batch of B targets, the replacement model is run forward on B replicas of the
   residual stream (`input_ids.expand(B, -1)` in circuit-tracer) with attention patterns and
   norm scales frozen (constants from step 1), every MLP replaced by a constant (its recorded
   output: transcoder reconstruction + error, detached) plus a zero "probe" whose gradient is
   the gradient at the write point, a live W_skip path where the transcoder has one, and a
   zero leaf at the embedding. The graph is kept (retain_graph) and reused by every batch of
   the same size, as circuit-tracer keeps its one batch_size graph; like circuit-tracer it
   spans every position (no truncation at the batch's last target position).
3. One `torch.autograd.grad` per batch seeds a [B, T, d] gradient at each read point that
   has targets (feature: its W_enc row at the transcoder's read hook, layer l, position p;
   logit: u_k − mean_v u_v at the final norm's output, last position) and returns the
   gradients at every probe and at the embedding. Autograd only walks from the highest
   seeded layer down, as circuit-tracer's backward from `resid_activations[last_layer]`.
4. Contraction: per write layer m and position p, [B, d] · [d, n_{m,p}] against the source
   vectors written there (index_add into the row), errors and tokens as row-wise dot
   products. Rows are over the engine's column space: [active features | errors l·T+p |
   tokens].

glibc malloc is tuned (`--malloc tuned`, see tune_malloc) so that large tensors are reused
rather than mapped afresh, as ONNX Runtime's arena reuses its buffers.

Timed per repeat: graph builds (step 2), backward (step 3), contraction (step 4); their sum
is compared with the engine's logits + features phases. Checks: the frozen replay
reproduces the recorded final-norm output; the logit choice and active feature set match
the engine's; rows agree with the engine's to float32 rounding (max |Δ| / max |row|).
"""

import argparse
import ctypes
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import model as reference  # noqa: E402
import transcoders as reference_tc  # noqa: E402
from tensorio import load_checkpoint, read_json  # noqa: E402


def now_ms() -> float:
    return time.perf_counter() * 1000.0


def tune_malloc() -> bool:
    """glibc: serve tensors up to 32 MiB from the heap and never trim it, so a freed [B, T, d]
    tensor is reused instead of being munmap'ed and mmap'ed again (page faults on every new
    tensor: on this VM a 16 MiB elementwise op took ~70 ms instead of ~2 ms). ONNX Runtime's
    arena allocator does the equivalent; for PyTorch the usual CPU advice is jemalloc or
    tcmalloc, which this Debian image does not ship."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    ok &= libc.mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1)
    ok &= libc.mallopt(M_TOP_PAD, 256 << 20)
    return bool(ok)


# ---------------------------------------------------------------------------------------
# Weights the frozen linear model needs (per family)


class Layer:
    """One layer's weights and recorded constants (attributes set by model_params / Setup)."""


def model_params(cfg: dict, W: dict) -> dict:
    """Norm gains/biases, value and output projections as y = x·Wᵀ (+ b), per layer."""
    mt = cfg["model_type"]
    out = {"family": mt, "layers": []}
    if mt == "gpt2":
        pre = "transformer." if "transformer.wte.weight" in W else ""
        g = lambda n: W[pre + n]  # noqa: E731
        d, H = cfg["n_embd"], cfg["n_head"]
        out.update(d=d, H=H, KV=H, hd=d // H, L=cfg["n_layer"], center=True)
        for l in range(cfg["n_layer"]):
            b = f"h.{l}."
            lay = Layer()
            lay.g1, lay.b1 = g(b + "ln_1.weight"), g(b + "ln_1.bias")
            lay.Wv = g(b + "attn.c_attn.weight")[:, 2 * d :].t().contiguous()  # Conv1D [in, out]
            lay.bv = g(b + "attn.c_attn.bias")[2 * d :]
            lay.Wo = g(b + "attn.c_proj.weight").t().contiguous()
            lay.bo = g(b + "attn.c_proj.bias")
            lay.g1post = None
            lay.g2, lay.b2 = g(b + "ln_2.weight"), g(b + "ln_2.bias")
            lay.g2post = None
            out["layers"].append(lay)
        out["final"] = (g("ln_f.weight"), g("ln_f.bias"))
        out["unembed"] = g("wte.weight")
        return out
    gemma = mt == "gemma2"
    gain = (lambda w: 1.0 + w) if gemma else (lambda w: w)
    d, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    out.update(d=d, H=H, KV=KV, hd=cfg.get("head_dim") or d // H, L=cfg["num_hidden_layers"], center=False)
    for l in range(cfg["num_hidden_layers"]):
        b = f"model.layers.{l}."
        lay = Layer()
        lay.g1, lay.b1 = gain(W[b + "input_layernorm.weight"]), None
        lay.Wv, lay.bv = W[b + "self_attn.v_proj.weight"], None
        lay.Wo, lay.bo = W[b + "self_attn.o_proj.weight"], None
        lay.g1post = gain(W[b + "post_attention_layernorm.weight"]) if gemma else None
        ln2 = "pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight"
        lay.g2, lay.b2 = gain(W[b + ln2]), None
        lay.g2post = gain(W[b + "post_feedforward_layernorm.weight"]) if gemma else None
        out["layers"].append(lay)
    out["final"] = (gain(W["model.norm.weight"]), None)
    tied = cfg.get("tie_word_embeddings") or "lm_head.weight" not in W
    out["unembed"] = W["model.embed_tokens.weight"] if tied else W["lm_head.weight"]
    return out


def frozen_norm(x, scale, gain, bias, center):
    """Norm with a recorded scale [T] (a constant): center (LayerNorm) · scale · gain (+ bias)."""
    if center:
        x = x - x.mean(dim=-1, keepdim=True)
    y = x * scale[:, None]
    if gain is not None:
        y = y * gain
    if bias is not None:
        y = y + bias
    return y


# ---------------------------------------------------------------------------------------
# Setup: recorded forward, transcoders, source vectors


class Setup:
    def __init__(self, cfg, W, tcraw, targets):
        self.P = P = model_params(cfg, W)
        ids = targets["token_ids"]
        self.T = T = len(ids)
        self.L, self.d = P["L"], P["d"]
        self.H, self.KV, self.hd = P["H"], P["KV"], P["hd"]
        tcc = tcraw["config"]
        self.read_hook = tcc["feature_input_hook"]
        self.write_hook = tcc["feature_output_hook"]
        self.clt = tcc["model_kind"] == "cross_layer_transcoder"
        self.gemma = P["family"] == "gemma2"
        self.through_post = self.gemma and self.write_hook == "mlp.hook_out"
        tcl = tcraw["layers"]

        with torch.no_grad():
            _pre, logits, rec = reference.forward(cfg, W, ids)
            acts, errs = reference_tc.run(tcraw, rec)
        self.rec = rec
        self.final_logits = logits[-1]
        self.tok = rec["hook_embed"]
        self.pos = rec.get("hook_pos_embed")
        G = self.H // self.KV
        for l, lay in enumerate(P["layers"]):
            B = f"blocks.{l}."
            lay.P = rec[B + "attn.hook_pattern"].reshape(self.KV, G, T, T).contiguous()
            lay.s1 = rec[B + "ln1.hook_scale"]
            lay.s2 = rec[B + "ln2.hook_scale"]
            lay.s1post = rec.get(B + "ln1_post.hook_scale")
            lay.s2post = rec.get(B + "ln2_post.hook_scale")
            Ws = None if self.clt else tcl[l].get("W_skip")
            lay.Wskip = Ws
            read = rec[B + self.read_hook]
            # the MLP as a constant: its recorded output minus the (live) skip term
            const = rec[B + self.write_hook]
            if Ws is not None:
                const = const - torch.matmul(read, Ws.t())
            lay.write_const = const
        self.s_final = rec["ln_final.hook_scale"]
        self.errs = errs

        # Column space: the engine's active features (its order), errors, tokens.
        c = targets["columns"]
        self.n_columns, self.err_off, self.tok_off = c["n_columns"], c["error_offset"], c["token_offset"]
        a = targets["active"]
        self.feat_layer, self.feat_pos, self.feat_index = a["layer"], a["position"], a["index"]
        n = len(self.feat_layer)
        eng_act = torch.tensor(a["activation"], dtype=torch.float32)
        triples = zip(self.feat_layer, self.feat_pos, self.feat_index)
        own = torch.stack([acts[l][p, i] for l, p, i in triples]) if n else torch.zeros(0)
        self.mismatched = set(int(k) for k in torch.nonzero(own == 0).flatten())
        both = own != 0
        rel = (own - eng_act).abs() / eng_act.abs().clamp_min(1e-30)
        self.activation_max_rel = float(rel[both].max()) if both.any() else 0.0
        own_total = sum(int((acts[l][1:] != 0).sum()) for l in range(self.L))
        self.active_counts = {"engine": n, "torch": own_total, "engine_not_torch": len(self.mismatched)}

        # Per write layer m, per position p: (columns, [n, d] source vectors a·W_dec).
        self.blocks = [[] for _ in range(self.L)]
        per = {}
        for k in range(n):
            s, p, i = self.feat_layer[k], self.feat_pos[k], self.feat_index[k]
            dec = tcl[s]["W_dec"][i]  # PLT [d]; CLT [L − s, d]
            for j, m in enumerate(range(s, self.L) if self.clt else [s]):
                vec = dec[j] if self.clt else dec
                per.setdefault((m, p), ([], []))
                per[(m, p)][0].append(k)
                per[(m, p)][1].append(own[k] * vec)
        for (m, p), (cols, vecs) in sorted(per.items()):
            self.blocks[m].append((p, torch.tensor(cols, dtype=torch.long), torch.stack(vecs).contiguous()))

        # Read vectors of the targets.
        self.W_enc = [t["W_enc"] for t in tcl]  # [d_t, d]
        U = P["unembed"]
        self.unembed_mean = U.mean(dim=0)
        self.U = U

    def read_value(self, l, x_pre, x_mid):
        lay = self.P["layers"][l]
        h = self.read_hook
        if h == "hook_resid_pre":
            return x_pre
        if h == "hook_resid_mid":
            return x_mid
        if h == "ln2.hook_normalized":
            return frozen_norm(x_mid, lay.s2, None, None, self.P["center"])
        if h == "mlp.hook_in":
            return frozen_norm(x_mid, lay.s2, lay.g2, lay.b2, self.P["center"])
        raise ValueError(f"unsupported read hook {h}")

    def choose_logits(self, max_n, desired):
        probs = torch.softmax(self.final_logits.double(), dim=-1)
        order = torch.sort(probs, descending=True, stable=True).indices[:max_n]
        cum = torch.cumsum(probs[order], 0)
        reach = (cum >= desired).nonzero()
        n = int(reach[0]) + 1 if len(reach) else len(order)
        return [int(i) for i in order[:n]]


# ---------------------------------------------------------------------------------------
# The frozen replacement model on B replicas, and one backward per batch


class Graph:
    """The frozen model run forward on B replicas of the residual stream (autograd graph kept)."""

    def __init__(self, S: Setup, B: int):
        T, d, L = S.T, S.d, S.L
        H, KV, hd = S.H, S.KV, S.hd
        center = S.P["center"]
        self.B = B
        self.emb = torch.zeros(B, T, d, requires_grad=True)  # gradient at the embedding
        x = S.tok + self.emb
        if S.pos is not None:
            x = x + S.pos  # a constant
        self.probes, self.reads = [], []
        for l in range(L):
            lay = S.P["layers"][l]
            x_pre = x
            h = frozen_norm(x, lay.s1, lay.g1, lay.b1, center)
            v = F.linear(h, lay.Wv, lay.bv).view(B, T, KV, hd).permute(0, 2, 1, 3).unsqueeze(2)
            z = torch.matmul(lay.P, v)  # [KV, G, T, T] · [B, KV, 1, T, hd] → [B, KV, G, T, hd]
            z = z.reshape(B, H, T, hd).transpose(1, 2).reshape(B, T, H * hd)
            a = F.linear(z, lay.Wo, lay.bo)
            if lay.g1post is not None:
                a = frozen_norm(a, lay.s1post, lay.g1post, None, False)
            x = x + a
            read = S.read_value(l, x_pre, x)
            self.reads.append(read)
            probe = torch.zeros(B, T, d, requires_grad=True)
            self.probes.append(probe)
            w = lay.write_const + probe
            if lay.Wskip is not None:
                w = w + torch.matmul(read, lay.Wskip.t())
            if S.through_post:
                w = frozen_norm(w, lay.s2post, lay.g2post, None, False)
            x = x + w
        g, b = S.P["final"]
        self.final = frozen_norm(x, S.s_final, g, b, center)


def run_batch(S: Setup, graph: Graph, batch, rows_out, timings):
    """batch: list of ('feature', k) or ('logit', token_id); rows_out [B, n_columns] (filled)."""
    T, d, B = S.T, S.d, graph.B
    t0 = now_ms()
    seeds = {}  # read point → [B, T, d] seed
    for b, (kind, k) in enumerate(batch):
        if kind == "logit":
            key, p, vec = "final", T - 1, S.U[k] - S.unembed_mean
        else:
            key, p, vec = S.feat_layer[k], S.feat_pos[k], S.W_enc[S.feat_layer[k]][S.feat_index[k]]
        if key not in seeds:
            seeds[key] = torch.zeros(B, T, d)
        seeds[key][b, p] = vec
    outputs = [graph.final if key == "final" else graph.reads[key] for key in seeds]
    inputs = [graph.emb] + graph.probes
    grads = torch.autograd.grad(outputs, inputs, list(seeds.values()), retain_graph=True, allow_unused=True)
    t1 = now_ms()
    rows_out.zero_()
    if grads[0] is not None:
        rows_out[:, S.tok_off : S.tok_off + T] = (grads[0] * S.tok).sum(-1)
    for m in range(S.L):
        gm = grads[1 + m]
        if gm is None:
            continue  # above the highest seeded layer: zero
        rows_out[:, S.err_off + m * T : S.err_off + (m + 1) * T] = (gm * S.errs[m]).sum(-1)
        for p, cols, V in S.blocks[m]:
            rows_out.index_add_(1, cols, torch.matmul(gm[:, p, :], V.t()))
    t2 = now_ms()
    timings["backward_ms"] += t1 - t0
    timings["contraction_ms"] += t2 - t1


def run_all(S: Setup, batches, keep_rows: bool):
    timings = {"build_ms": 0.0, "backward_ms": 0.0, "contraction_ms": 0.0, "batches": []}
    graphs = {}
    rows = []
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t_start = now_ms()
    for batch in batches:
        B = len(batch)
        tb = now_ms()
        if B not in graphs:
            t = now_ms()
            graphs[B] = Graph(S, B)
            timings["build_ms"] += now_ms() - t
        out = torch.empty(B, S.n_columns)
        run_batch(S, graphs[B], batch, out, timings)
        timings["batches"].append({"B": B, "ms": now_ms() - tb})
        if keep_rows:
            rows.append(out)
    timings["total_ms"] = now_ms() - t_start
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    timings["cpu_ms"] = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) * 1000.0
    del graphs
    return timings, (torch.cat(rows) if keep_rows else None)


# ---------------------------------------------------------------------------------------


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--transcoders", required=True)
    ap.add_argument("--targets", required=True)
    ap.add_argument("--engine-rows")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--malloc", choices=("tuned", "default"), default="tuned")
    args = ap.parse_args(argv)
    malloc_tuned = tune_malloc() if args.malloc == "tuned" else False
    torch.set_num_threads(args.threads)
    targets = read_json(args.targets)

    t0 = now_ms()
    cfg = read_json(os.path.join(args.model, "config.json"))
    W = load_checkpoint(args.model)
    tcraw = reference_tc.load(args.transcoders)
    load_ms = now_ms() - t0

    t0 = now_ms()
    S = Setup(cfg, W, tcraw, targets)
    setup_ms = now_ms() - t0

    logit_ids = targets["logits"]["token_id"]
    batches = []
    for b in targets["batches"]:
        if b["kind"] == "logits":
            batches.append([("logit", k) for k in logit_ids])
        else:
            batches.append([("feature", k) for k in b["features"]])

    # The frozen replay reproduces the recorded forward (one replica).
    with torch.no_grad():
        g1 = Graph(S, 1)
        replay = float((g1.final[0] - S.rec["unembed.hook_in"]).abs().max())
        replay_scale = float(S.rec["unembed.hook_in"].abs().max())
        del g1

    runs = []
    rows = None
    for r in range(args.warmup + args.repeat):
        last = r == args.warmup + args.repeat - 1
        timings, got = run_all(S, batches, keep_rows=last)
        if r >= args.warmup:
            runs.append(timings)
        if last:
            rows = got

    verify = None
    if args.engine_rows and rows is not None:
        eng = torch.from_numpy(np.fromfile(args.engine_rows, dtype="<f4").reshape(rows.shape[0], -1).copy())
        assert eng.shape == rows.shape, (eng.shape, rows.shape)
        keep = torch.ones(rows.shape[1], dtype=torch.bool)
        for k in S.mismatched:
            keep[k] = False
        diff = (rows - eng).abs()[:, keep].max(dim=1).values
        scale = eng.abs()[:, keep].max(dim=1).values.clamp_min(1e-30)
        rel = diff / scale
        worst = int(rel.argmax())
        verify = {
            "rows": int(rows.shape[0]),
            "max_rel_to_row_scale": float(rel.max()),
            "mean_rel_to_row_scale": float(rel.mean()),
            "worst_row": worst,
            "columns_excluded": int((~keep).sum()),
        }

    torch_logits = S.choose_logits(targets["settings"]["maxNLogits"], targets["settings"]["desiredLogitProb"])
    result = {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "malloc": "tuned" if malloc_tuned else "default",
        "load_ms": load_ms,
        "setup_ms": setup_ms,
        "frozen_replay_max_abs": replay,
        "frozen_replay_scale": replay_scale,
        "logit_choice_matches": torch_logits == list(logit_ids),
        "active": S.active_counts,
        "activation_max_rel": S.activation_max_rel,
        "runs": runs,
        "verify": verify,
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
