"""Writing and reading the files: safetensors (no external package), config.json,
circuit-tracer transcoder folders, and the corpus sample. Every writer is byte-stable:
tensors sorted by name, JSON with sorted keys and a fixed layout."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import numpy as np
import torch

_DT = {torch.float32: ("F32", 4), torch.bfloat16: ("BF16", 2), torch.float16: ("F16", 2),
       torch.int64: ("I64", 8), torch.int32: ("I32", 4)}
_RDT = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
        "I64": torch.int64, "I32": torch.int32}


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def write_safetensors(path: str, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    header: dict = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name]
        dt, size = _DT[t.dtype]
        b = _tensor_bytes(t)
        assert len(b) == t.numel() * size
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = dict(sorted((metadata or {"format": "pt"}).items()))
    h = json.dumps(header, separators=(",", ":"), sort_keys=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # pad like the reference writer
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path: str) -> dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    buf = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dt = _RDT[info["dtype"]]
        if dt == torch.bfloat16:
            arr = np.frombuffer(buf[b:e], dtype="<i2").copy()
            t = torch.from_numpy(arr).view(torch.bfloat16)
        else:
            npdt = {torch.float32: "<f4", torch.float16: "<f2", torch.int64: "<i8", torch.int32: "<i4"}[dt]
            t = torch.from_numpy(np.frombuffer(buf[b:e], dtype=npdt).copy())
        out[name] = t.reshape(info["shape"])
    return out


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: str, obj, indent: int | None = 2) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent, sort_keys=True)
        f.write("\n")


def write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def export_model(model, out: str) -> None:
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(out, "model.safetensors"), sd, {"format": "pt"})
    write_json(os.path.join(out, "config.json"), model.cfg.hf_dict())
    write_json(os.path.join(out, "generation_config.json"),
               {"_from_model_config": True, "bos_token_id": 2, "cache_implementation": "hybrid",
                "eos_token_id": 1, "pad_token_id": 0})


def export_plt(plt, out: str, model_name: str, dtype: torch.dtype = torch.float32) -> None:
    """circuit-tracer transcoder_set folder: config.yaml + layer_{i}.safetensors."""
    os.makedirs(out, exist_ok=True)
    names = []
    for l, tc in enumerate(plt.layers):
        p = tc.export_params()
        tensors = {
            "W_enc": p["W_enc"], "W_dec": p["W_dec"], "b_enc": p["b_enc"], "b_dec": p["b_dec"],
            "activation_function.threshold": p["threshold"],
        }
        tensors = {k: v.to(dtype).contiguous() for k, v in tensors.items()}
        fn = f"layer_{l}.safetensors"
        write_safetensors(os.path.join(out, fn), tensors, {"format": "pt"})
        names.append(fn)
    lines = [
        f"model_name: {model_name}",
        "model_kind: transcoder_set",
        "feature_input_hook: ln2.hook_normalized",
        "feature_output_hook: hook_mlp_out",
        "scan: gemma2-demo-plt",
        "transcoders:",
    ] + [f"  - {n}" for n in names]
    write_text(os.path.join(out, "config.yaml"), "\n".join(lines) + "\n")


def export_clt(clt, out: str, model_name: str, dtype: torch.dtype = torch.bfloat16) -> None:
    """circuit-tracer cross_layer_transcoder folder: config.yaml + W_enc_{l} / W_dec_{l}."""
    os.makedirs(out, exist_ok=True)
    p = clt.export_params()
    L = len(p["W_enc"])
    for l in range(L):
        enc = {f"W_enc_{l}": p["W_enc"][l], f"b_enc_{l}": p["b_enc"][l],
               f"b_dec_{l}": p["b_dec"][l], f"threshold_{l}": p["threshold"][l]}
        write_safetensors(os.path.join(out, f"W_enc_{l}.safetensors"),
                          {k: v.to(dtype).contiguous() for k, v in enc.items()}, {"format": "pt"})
        write_safetensors(os.path.join(out, f"W_dec_{l}.safetensors"),
                          {f"W_dec_{l}": p["W_dec"][l].to(dtype).contiguous()}, {"format": "pt"})
    lines = [
        f"model_name: {model_name}",
        "model_kind: cross_layer_transcoder",
        "feature_input_hook: hook_resid_mid",
        "feature_output_hook: hook_mlp_out",
        "scan: gemma2-demo-clt",
    ]
    write_text(os.path.join(out, "config.yaml"), "\n".join(lines) + "\n")
