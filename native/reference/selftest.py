#!/usr/bin/python3
"""Checks of the reference's building blocks against torch built-ins and hand-computed
values. Run by golden.py before it writes anything; also standalone:

    /usr/bin/python3 native/reference/selftest.py
"""

import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import model  # noqa: E402
import transcoders  # noqa: E402
from tensorio import _to_float32, read_npy, read_safetensors  # noqa: E402


def check_activations():
    x = torch.linspace(-6, 6, 241)
    assert torch.allclose(model.gelu_tanh(x), F.gelu(x, approximate="tanh"), atol=1e-6)
    assert torch.allclose(model.silu(x), F.silu(x), atol=1e-6)
    assert torch.allclose(model.softcap(torch.tensor([0.0, 50.0, 1e6]), 50.0), torch.tensor([0.0, 50 * math.tanh(1), 50.0]))


def check_norms():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 32, generator=g) * 3 + 1
    w = torch.randn(32, generator=g)
    b = torch.randn(32, generator=g)
    xc, s = model.layernorm_parts(x, 1e-5)
    assert torch.allclose(xc * s[:, None] * w + b, F.layer_norm(x, (32,), w, b, 1e-5), atol=1e-5)
    s = model.rms_scale(x, 1e-6)
    assert torch.allclose(s, torch.rsqrt(x.pow(2).mean(-1) + 1e-6))


def check_rope():
    # half-split RoPE = rotating the pairs (x[i], x[i + d/2]) by pos·inv_freq[i]
    hd, T = 8, 6
    p = {"theta": 10000.0, "rope_type": "default"}
    cos, sin = model.rope_cos_sin(T, hd, p)
    x = torch.randn(2, T, hd, generator=torch.Generator().manual_seed(1))
    y = model.apply_rope(x, cos, sin)
    for t in range(T):
        for i in range(hd // 2):
            ang = t * 10000.0 ** (-2 * i / hd)
            a, b = x[:, t, i], x[:, t, i + hd // 2]
            assert torch.allclose(y[:, t, i], a * math.cos(ang) - b * math.sin(ang), atol=1e-5)
            assert torch.allclose(y[:, t, i + hd // 2], a * math.sin(ang) + b * math.cos(ang), atol=1e-5)
    # llama3 scaling on the tiny-llama parameters: one frequency per branch
    p = {
        "theta": 500000.0,
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 256,
    }
    inv = model.rope_inv_freq(8, p)
    raw = [500000.0 ** (-i / 4) for i in range(4)]
    wl1 = 2 * math.pi / raw[1]
    s = (256 / wl1 - 1) / 3
    want = [raw[0], (1 - s) * raw[1] / 8 + s * raw[1], raw[2] / 8, raw[3] / 8]
    assert 0 < s < 1
    assert torch.allclose(inv, torch.tensor(want, dtype=torch.float64), rtol=1e-12)


def check_attention():
    T = 6
    q = torch.randn(4, T, 8, generator=torch.Generator().manual_seed(2))
    k = torch.randn(2, T, 8, generator=torch.Generator().manual_seed(3))
    v = torch.randn(2, T, 8, generator=torch.Generator().manual_seed(4))
    out, p = model.attention(q, k, v, scale=0.5, attn_softcap=5.0, window=3)
    for h in range(4):
        kv = h // 2
        for i in range(T):
            js = [j for j in range(T) if 0 <= i - j < 3]
            sc = torch.stack([5.0 * torch.tanh((q[h, i] @ k[kv, j]) * 0.5 / 5.0) for j in js])
            pr = torch.softmax(sc, 0)
            row = torch.zeros(T)
            row[js] = pr
            assert torch.allclose(p[h, i], row, atol=1e-6)
            assert torch.allclose(out[i, h * 8 : (h + 1) * 8], pr @ v[kv, js], atol=1e-5)


def check_topk():
    pre = torch.tensor([[0.5, 2.0, 2.0, -1.0, 2.0, 0.1], [-3.0, -2.0, -1.0, -0.5, -4.0, -5.0]])
    a = transcoders.topk_relu(pre, 2)
    assert a.tolist() == [[0.0, 2.0, 2.0, 0.0, 0.0, 0.0], [0.0] * 6]


def check_readers():
    bits = np.array([0x3F80, 0xC000, 0x0000, 0x3EAB], dtype="<u2").tobytes()
    v = _to_float32(bits, "BF16", [4])
    assert v.tolist() == [1.0, -2.0, 0.0, struct.unpack("<f", struct.pack("<I", 0x3EAB0000))[0]]
    h = np.array([1.5, -0.25, 65504.0], dtype="<f2").tobytes()
    assert _to_float32(h, "F16", [3]).tolist() == [1.5, -0.25, 65504.0]
    with tempfile.TemporaryDirectory() as d:
        arr = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
        np.save(os.path.join(d, "a.npy"), arr)
        with open(os.path.join(d, "a.npy"), "rb") as f:
            assert torch.equal(read_npy(f.read()), torch.from_numpy(arr))
        # a hand-written safetensors file with an F16 and an F32 tensor
        import json

        hdr = {
            "a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
            "b": {"dtype": "F32", "shape": [1, 2], "data_offsets": [4, 12]},
            "__metadata__": {"format": "pt"},
        }
        js = json.dumps(hdr).encode()
        body = np.array([1, 2], dtype="<f2").tobytes() + np.array([3, 4], dtype="<f4").tobytes()
        with open(os.path.join(d, "x.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(js)) + js + body)
        t = read_safetensors(os.path.join(d, "x.safetensors"))
        assert t["a"].tolist() == [1.0, 2.0] and t["b"].tolist() == [[3.0, 4.0]]


def main():
    for fn in (check_activations, check_norms, check_rope, check_attention, check_topk, check_readers):
        fn()
    print("reference selftest ok", file=sys.stderr)


if __name__ == "__main__":
    main()
