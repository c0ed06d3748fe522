"""Readers for the files the fixtures are made of, written from the format descriptions in
shared/docs/formats.md (no safetensors / numpy.load / yaml libraries): safetensors (single
and sharded), .npy / .npz (zipfile), Hugging Face config.json and the small YAML subset of
circuit-tracer transcoder configs. Everything comes out as float32 torch tensors.
"""

import ast
import hashlib
import json
import os
import struct
import zipfile

import numpy as np
import torch

# safetensors dtype -> (numpy little-endian dtype of the stored bits, bytes per element)
_ST_DTYPES = {
    "F64": ("<f8", 8),
    "F32": ("<f4", 4),
    "F16": ("<f2", 2),
    "BF16": ("<u2", 2),  # decoded below: f32 bits = u16 << 16
    "I64": ("<i8", 8),
    "I32": ("<i4", 4),
    "I16": ("<i2", 2),
    "I8": ("i1", 1),
    "U8": ("u1", 1),
    "BOOL": ("u1", 1),
}


def _to_float32(raw: bytes, dtype: str, shape) -> torch.Tensor:
    np_dtype, _ = _ST_DTYPES[dtype]
    arr = np.frombuffer(raw, dtype=np_dtype)
    if dtype == "BF16":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    else:
        arr = arr.astype(np.float32)
    return torch.from_numpy(arr.copy()).reshape(tuple(shape))


def read_safetensors(path: str) -> dict:
    """{name: float32 tensor}; also checks the layout rules (contiguous, no holes)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    header.pop("__metadata__", None)
    out = {}
    expected = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dtype, shape = info["dtype"], info["shape"]
        begin, end = info["data_offsets"]
        count = 1
        for s in shape:
            count *= s
        assert begin == expected, f"{path}: hole or overlap before {name}"
        assert end - begin == count * _ST_DTYPES[dtype][1], f"{path}: bad size of {name}"
        assert base + end <= len(blob), f"{path}: {name} outside the file"
        expected = end
        out[name] = _to_float32(blob[base + begin : base + end], dtype, shape)
    return out


def load_checkpoint(model_dir: str) -> dict:
    """All tensors of a Hugging Face checkpoint folder (model.safetensors or sharded)."""
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(model_dir, "model.safetensors.index.json")) as f:
        index = json.load(f)
    out = {}
    for shard in sorted(set(index["weight_map"].values())):
        tensors = read_safetensors(os.path.join(model_dir, shard))
        for name, t in tensors.items():
            assert index["weight_map"].get(name) == shard, f"{name} not mapped to {shard}"
            out[name] = t
    assert set(out) == set(index["weight_map"]), "index and shards disagree"
    return out


def read_npy(raw: bytes) -> torch.Tensor:
    assert raw[:6] == b"\x93NUMPY", "not an npy file"
    major = raw[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", raw[8:10])
        start = 10
    else:
        (hlen,) = struct.unpack("<I", raw[8:12])
        start = 12
    header = ast.literal_eval(raw[start : start + hlen].decode("latin1"))
    assert not header["fortran_order"], "fortran order not supported"
    descr = header["descr"]
    assert descr in ("<f4", "<f8", "<f2"), f"unsupported npy dtype {descr}"
    data = np.frombuffer(raw[start + hlen :], dtype=descr).astype(np.float32)
    return torch.from_numpy(data.copy()).reshape(tuple(header["shape"]))


def read_npz(path: str) -> dict:
    out = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename
            assert name.endswith(".npy"), f"{path}: unexpected member {name}"
            out[name[: -len(".npy")]] = read_npy(z.read(info))
    return out


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def read_simple_yaml(path: str) -> dict:
    """The YAML subset of transcoder configs: `key: scalar` lines and `key:` + `  - item` lists."""
    out = {}
    current_list = None
    with open(path) as f:
        for line in f:
            line = line.split(" #")[0].rstrip()
            if not line or line.lstrip().startswith("#"):
                continue
            if line.lstrip().startswith("- "):
                assert current_list is not None, f"{path}: list item outside a list"
                current_list.append(_scalar(line.lstrip()[2:]))
                continue
            key, _, value = line.partition(":")
            value = value.strip()
            if value == "":
                current_list = []
                out[key.strip()] = current_list
            else:
                current_list = None
                out[key.strip()] = _scalar(value)
    return out


def _scalar(s: str):
    s = s.strip()
    if s.startswith('"') and s.endswith('"'):
        return json.loads(s)
    if s.startswith("'") and s.endswith("'"):
        return s[1:-1]
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    if s in ("true", "True"):
        return True
    if s in ("false", "False"):
        return False
    if s in ("null", "~"):
        return None
    return s


def sha256_tree(root: str) -> dict:
    """sha256 of every file under root, by its /-separated relative path (sorted)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            with open(path, "rb") as fh:
                out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return dict(sorted(out.items()))
