"""Language-model training loop (CPU, deterministic given the seed)."""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from tokenizer import BOS, PAD


def encode_all(tok, texts: list[str]) -> list[list[int]]:
    return [tok.encode(t, add_bos=True) for t in texts]


def make_batch(seqs: list[list[int]], idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(seqs[i]) for i in idx)
    ids = torch.full((len(idx), T), PAD, dtype=torch.long)
    for r, i in enumerate(idx):
        s = seqs[i]
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, ids != PAD


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def train_lm(model, seqs: list[list[int]], probs: list[float], *, steps: int, batch: int, lr: float,
             seed: int, log=print, warmup: int = 150, weight_decay: float = 0.01) -> list[dict]:
    gen = torch.Generator().manual_seed(seed * 7919 + 1)
    p = torch.tensor(probs, dtype=torch.float64)
    decay, no_decay = [], []
    for n, prm in model.named_parameters():
        (no_decay if n.endswith("norm.weight") else decay).append(prm)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-8)
    history = []
    t0 = time.time()
    run = 0.0
    model.train()
    chunk = 8  # sample 8 batches at once and group them by length (less padding)
    pending: list[list[int]] = []
    for step in range(steps):
        if not pending:
            draw = torch.multinomial(p, batch * chunk, replacement=True, generator=gen).tolist()
            draw.sort(key=lambda i: (len(seqs[i]), i))
            groups = [draw[k * batch:(k + 1) * batch] for k in range(chunk)]
            order = torch.randperm(chunk, generator=gen).tolist()
            pending = [groups[k] for k in order]
        idx = pending.pop()
        ids, mask = make_batch(seqs, idx)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, warmup)
        logits = model(ids[:, :-1])
        tgt = ids[:, 1:]
        tgt = tgt.masked_fill(~mask[:, 1:], -100)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run = loss.item() if step == 0 else 0.98 * run + 0.02 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            el = time.time() - t0
            log(f"  lm step {step:5d}/{steps}  loss {run:.4f}  lr {opt.param_groups[0]['lr']:.2e}  {el:6.0f}s")
            history.append({"step": step, "loss": round(run, 5)})
    model.eval()
    assert tgt is not None and BOS == 2
    return history
