"""JumpReLU transcoders: a per-layer set (PLT, GemmaScope-style, reads ln2.hook_normalized)
and a cross-layer transcoder (CLT, reads hook_resid_mid, layer l's features write to every
layer m >= l). Both write hook_mlp_out.

Training (as in GemmaScope / Anthropic's CLT work):
  * JumpReLU a = pre·H(pre − θ), θ = exp(log θ) learned per feature; the threshold gets a
    straight-through gradient through a rectangle kernel of bandwidth ε (Rajamanoharan et
    al. 2024), the input gets the ordinary gradient where the feature is on;
  * loss = normalized MSE + λ·L0 (L0 via the same straight-through step) + a small
    pre-activation penalty λ_p·Σ relu(θ − pre)·‖d_i‖ that keeps features from dying;
  * λ ramps up linearly over the first 20% of the steps; Adam; decoder rows (a CLT
    feature's decoder over all its output layers together) renormalised to unit norm after
    every step;
  * inputs and targets are divided by one scalar per layer during training so their
    mean squared norm is d; the scalars are folded back into W_enc / W_dec / b_dec when
    exporting, so the exported files act on raw hook values;
  * BOS (position 0) is excluded from training data, and activations there are zeroed.
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn


def _kernel(u: torch.Tensor) -> torch.Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, log_theta, eps):
        theta = log_theta.exp()
        ctx.save_for_backward(pre, theta)
        ctx.eps = eps
        ctx.lt_shape = log_theta.shape
        return pre * (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, g):
        pre, theta = ctx.saved_tensors
        eps = ctx.eps
        on = (pre > theta).to(pre.dtype)
        g_pre = g * on
        # d a / d θ ≈ −(θ/ε)·K((pre−θ)/ε); chain rule through θ = exp(log θ) adds a factor θ
        g_theta = -(theta / eps) * _kernel((pre - theta) / eps) * g
        g_log = (g_theta * theta).sum_to_size(ctx.lt_shape)
        return g_pre, g_log, None


class Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, log_theta, eps):
        theta = log_theta.exp()
        ctx.save_for_backward(pre, theta)
        ctx.eps = eps
        ctx.lt_shape = log_theta.shape
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, g):
        pre, theta = ctx.saved_tensors
        eps = ctx.eps
        g_theta = -(1.0 / eps) * _kernel((pre - theta) / eps) * g
        g_log = (g_theta * theta).sum_to_size(ctx.lt_shape)
        return None, g_log, None


class PLTLayer(nn.Module):
    """One GemmaScope-style transcoder, trained on normalized data."""

    def __init__(self, d: int, d_t: int, gen: torch.Generator):
        super().__init__()
        w = torch.randn(d_t, d, generator=gen)
        w = w / w.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w.clone())
        we = torch.randn(d_t, d, generator=gen)
        self.W_enc = nn.Parameter(we / we.norm(dim=1, keepdim=True))
        self.b_enc = nn.Parameter(torch.zeros(d_t))
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.log_theta = nn.Parameter(torch.full((d_t,), float(torch.log(torch.tensor(0.5)))))
        self.s_in = 1.0
        self.s_out = 1.0

    def export_params(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {
                "W_enc": (self.W_enc / self.s_in).float().clone(),
                "b_enc": self.b_enc.float().clone(),
                "W_dec": (self.W_dec * self.s_out).float().clone(),
                "b_dec": (self.b_dec * self.s_out).float().clone(),
                "threshold": self.log_theta.exp().float().clone(),
            }


class PLT(nn.Module):
    def __init__(self, L: int, d: int, d_t: int, gen: torch.Generator):
        super().__init__()
        self.layers = nn.ModuleList([PLTLayer(d, d_t, gen) for _ in range(L)])


class CLT(nn.Module):
    """Cross-layer transcoder, trained on normalized data (one scalar per layer)."""

    def __init__(self, L: int, d: int, d_t: int, gen: torch.Generator):
        super().__init__()
        self.L, self.d, self.d_t = L, d, d_t
        self.W_enc = nn.ParameterList()
        self.b_enc = nn.ParameterList()
        self.log_theta = nn.ParameterList()
        self.W_dec = nn.ParameterList()
        for l in range(L):
            we = torch.randn(d_t, d, generator=gen)
            self.W_enc.append(nn.Parameter(we / we.norm(dim=1, keepdim=True)))
            self.b_enc.append(nn.Parameter(torch.zeros(d_t)))
            self.log_theta.append(nn.Parameter(torch.full((d_t,), float(torch.log(torch.tensor(0.5))))))
            wd = torch.randn(d_t, L - l, d, generator=gen)
            wd = wd / wd.flatten(1).norm(dim=1)[:, None, None]
            self.W_dec.append(nn.Parameter(wd))
        self.b_dec = nn.Parameter(torch.zeros(L, d))
        self.s_in = [1.0] * L
        self.s_out = [1.0] * L

    def export_params(self) -> dict[str, list[torch.Tensor]]:
        out: dict[str, list[torch.Tensor]] = {"W_enc": [], "b_enc": [], "b_dec": [], "threshold": [], "W_dec": []}
        with torch.no_grad():
            for l in range(self.L):
                out["W_enc"].append((self.W_enc[l] / self.s_in[l]).float().clone())
                out["b_enc"].append(self.b_enc[l].float().clone())
                out["threshold"].append(self.log_theta[l].exp().float().clone())
                out["b_dec"].append((self.b_dec[l] * self.s_out[l]).float().clone())
                so = torch.tensor(self.s_out[l:], dtype=torch.float32)[None, :, None]
                out["W_dec"].append((self.W_dec[l] * so).float().clone())
        return out


# ---------------------------------------------------------------------------------------
# training

def _scale(x: torch.Tensor) -> float:
    """Scalar s with mean(|x/s|²) = d."""
    return float((x.pow(2).sum(-1).mean() / x.shape[-1]).sqrt())


def train_plt(X: list[torch.Tensor], Y: list[torch.Tensor], d_t: int, *, steps: int, batch: int,
              lr: float, l0_coef: float, pre_coef: float, eps: float, seed: int, log=print) -> PLT:
    """X[l], Y[l]: [N, d] hook values at non-BOS positions for layer l."""
    L, d = len(X), X[0].shape[1]
    gen = torch.Generator().manual_seed(seed * 7919 + 101)
    plt = PLT(L, d, d_t, gen)
    Xn, Yn = [], []
    for l, tc in enumerate(plt.layers):
        tc.s_in, tc.s_out = _scale(X[l]), _scale(Y[l])
        Xn.append(X[l] / tc.s_in)
        Yn.append(Y[l] / tc.s_out)
        with torch.no_grad():
            tc.b_dec.copy_(Yn[l].mean(0))
    # stack layers: one batched model
    W_enc = nn.Parameter(torch.stack([tc.W_enc.data for tc in plt.layers]))  # [L, d_t, d]
    W_dec = nn.Parameter(torch.stack([tc.W_dec.data for tc in plt.layers]))  # [L, d_t, d]
    b_enc = nn.Parameter(torch.stack([tc.b_enc.data for tc in plt.layers]))  # [L, d_t]
    b_dec = nn.Parameter(torch.stack([tc.b_dec.data for tc in plt.layers]))  # [L, d]
    log_t = nn.Parameter(torch.stack([tc.log_theta.data for tc in plt.layers]))  # [L, d_t]
    Xs, Ys = torch.stack(Xn), torch.stack(Yn)  # [L, N, d]
    var = Ys.var(0, unbiased=False).sum(-1) if False else ((Ys - Ys.mean(1, keepdim=True)) ** 2).sum(-1).mean(1)  # [L]
    opt = torch.optim.Adam([W_enc, W_dec, b_enc, b_dec, log_t], lr=lr, betas=(0.9, 0.999))
    N = Xs.shape[1]
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(0, N, (batch,), generator=gen)
        x, y = Xs[:, idx], Ys[:, idx]  # [L, B, d]
        pre = torch.baddbmm(b_enc[:, None, :], x, W_enc.transpose(1, 2))  # [L, B, d_t]
        a = JumpReLU.apply(pre, log_t[:, None, :], eps)
        rec = torch.baddbmm(b_dec[:, None, :], a, W_dec)
        mse = ((rec - y) ** 2).sum(-1).mean(1) / var  # [L] normalized
        l0 = Step.apply(pre, log_t[:, None, :], eps).sum(-1).mean(1)  # [L]
        theta = log_t.exp()[:, None, :]
        pre_pen = torch.relu(theta - pre).sum(-1).mean(1)
        ramp = min(1.0, step / max(1, 0.2 * steps))
        loss = (mse + ramp * l0_coef * l0 + pre_coef * pre_pen).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for g in opt.param_groups:
            g["lr"] = lr if step < 0.8 * steps else lr * (1 - (step - 0.8 * steps) / (0.2 * steps + 1))
        opt.step()
        with torch.no_grad():
            W_dec.div_(W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))
        if step % 200 == 0 or step == steps - 1:
            log(f"  plt step {step:5d}/{steps}  fvu {[round(v, 3) for v in mse.tolist()]}  "
                f"l0 {[round(v, 1) for v in l0.tolist()]}  {time.time() - t0:5.0f}s")
    with torch.no_grad():
        for l, tc in enumerate(plt.layers):
            tc.W_enc.copy_(W_enc[l])
            tc.W_dec.copy_(W_dec[l])
            tc.b_enc.copy_(b_enc[l])
            tc.b_dec.copy_(b_dec[l])
            tc.log_theta.copy_(log_t[l])
    return plt


def train_clt(X: list[torch.Tensor], Y: list[torch.Tensor], d_t: int, *, steps: int, batch: int,
              lr: float, l0_coef: float, pre_coef: float, eps: float, seed: int, log=print) -> CLT:
    """X[l] = hook_resid_mid, Y[l] = hook_mlp_out at layer l (same token rows)."""
    L, d = len(X), X[0].shape[1]
    gen = torch.Generator().manual_seed(seed * 7919 + 202)
    clt = CLT(L, d, d_t, gen)
    clt.s_in = [_scale(x) for x in X]
    clt.s_out = [_scale(y) for y in Y]
    Xs = torch.stack([X[l] / clt.s_in[l] for l in range(L)])
    Ys = torch.stack([Y[l] / clt.s_out[l] for l in range(L)])
    with torch.no_grad():
        clt.b_dec.copy_(Ys.mean(1))
    var = ((Ys - Ys.mean(1, keepdim=True)) ** 2).sum(-1).mean(1)  # [L]
    W_enc = nn.Parameter(torch.stack([w.data for w in clt.W_enc]))
    b_enc = nn.Parameter(torch.stack([b.data for b in clt.b_enc]))
    log_t = nn.Parameter(torch.stack([t.data for t in clt.log_theta]))
    W_dec = [nn.Parameter(w.data.clone()) for w in clt.W_dec]
    b_dec = nn.Parameter(clt.b_dec.data.clone())
    opt = torch.optim.Adam([W_enc, b_enc, log_t, b_dec] + W_dec, lr=lr, betas=(0.9, 0.999))
    N = Xs.shape[1]
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(0, N, (batch,), generator=gen)
        x, y = Xs[:, idx], Ys[:, idx]
        pre = torch.baddbmm(b_enc[:, None, :], x, W_enc.transpose(1, 2))  # [L, B, d_t]
        a = JumpReLU.apply(pre, log_t[:, None, :], eps)
        rec = [b_dec[m].expand(batch, d) for m in range(L)]
        for l in range(L):
            out = (a[l] @ W_dec[l].reshape(d_t, -1)).view(batch, L - l, d)
            for j in range(L - l):
                rec[l + j] = rec[l + j] + out[:, j]
        rec_t = torch.stack(rec)
        mse = ((rec_t - y) ** 2).sum(-1).mean(1) / var
        l0 = Step.apply(pre, log_t[:, None, :], eps).sum(-1).mean(1)
        # decoder norm of each feature (over all its output layers) weights the pre-act penalty
        theta = log_t.exp()[:, None, :]
        pre_pen = torch.relu(theta - pre).sum(-1).mean(1)
        ramp = min(1.0, step / max(1, 0.2 * steps))
        loss = (mse + ramp * l0_coef * l0 + pre_coef * pre_pen).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for g in opt.param_groups:
            g["lr"] = lr if step < 0.8 * steps else lr * (1 - (step - 0.8 * steps) / (0.2 * steps + 1))
        opt.step()
        with torch.no_grad():
            for w in W_dec:
                w.div_(w.flatten(1).norm(dim=1).clamp_min(1e-8)[:, None, None])
        if step % 200 == 0 or step == steps - 1:
            log(f"  clt step {step:5d}/{steps}  fvu {[round(v, 3) for v in mse.tolist()]}  "
                f"l0 {[round(v, 1) for v in l0.tolist()]}  {time.time() - t0:5.0f}s")
    with torch.no_grad():
        for l in range(L):
            clt.W_enc[l].copy_(W_enc[l])
            clt.b_enc[l].copy_(b_enc[l])
            clt.log_theta[l].copy_(log_t[l])
            clt.W_dec[l].copy_(W_dec[l])
        clt.b_dec.copy_(b_dec)
    return clt


# ---------------------------------------------------------------------------------------
# applying exported (raw-space) parameters: used for metrics, golden values and the
# replacement model, always from the files as written

def jumprelu(pre: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    return pre * (pre > theta).to(pre.dtype)


def plt_apply(p: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [..., d] at ln2.hook_normalized -> (activations [..., d_t], reconstruction [..., d])."""
    pre = x @ p["W_enc"].t() + p["b_enc"]
    a = jumprelu(pre, p["threshold"])
    return a, a @ p["W_dec"] + p["b_dec"]


def clt_encode(p: dict[str, list[torch.Tensor]], l: int, x: torch.Tensor) -> torch.Tensor:
    pre = x @ p["W_enc"][l].t() + p["b_enc"][l]
    return jumprelu(pre, p["threshold"][l])


def clt_decode(p: dict[str, list[torch.Tensor]], acts: list[torch.Tensor], m: int) -> torch.Tensor:
    """recon[m] = b_dec[m] + Σ_{s≤m} a_s · W_dec_s[:, m−s, :]."""
    out = p["b_dec"][m]
    for s in range(m + 1):
        out = out + acts[s] @ p["W_dec"][s][:, m - s, :]
    return out
