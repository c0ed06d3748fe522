"""A Gemma-style SentencePiece-BPE tokenizer, trained on the corpus and written as a
Hugging Face tokenizer.json.

Gemma conventions reproduced here:
  * normalizer replaces ' ' with '▁' (no dummy prefix: "The cat" -> "The", "▁cat");
  * no pre-tokenizer: BPE runs over the whole normalized string; merges are only learned
    inside '▁'-delimited words, so they never cross a word boundary;
  * byte fallback: a character outside the vocabulary becomes its UTF-8 bytes <0xNN>;
  * digits are never merged (each digit is one token, as in Gemma);
  * special tokens <pad>=0, <eos>=1, <bos>=2, <unk>=3; <bos> is prepended by the
    TemplateProcessing post-processor; the 256 byte tokens follow at ids 4..259.
"""

from __future__ import annotations

import json
from collections import Counter

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]
PAD, EOS, BOS, UNK = 0, 1, 2, 3
SP = "\u2581"  # ▁


def _words(text: str) -> list[str]:
    """Split a normalized string into '▁'-prefixed words (the first may lack the '▁')."""
    s = text.replace(" ", SP)
    out: list[str] = []
    cur = ""
    for ch in s:
        if ch == SP and cur:
            out.append(cur)
            cur = ""
        cur += ch
    if cur:
        out.append(cur)
    return out


def _mergeable(a: str, b: str) -> bool:
    """Digits and punctuation stay single-character tokens; letters (and '▁') merge."""
    return all(ch.isalpha() or ch == SP for ch in a + b)


class BPETokenizer:
    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]):
        self.vocab = vocab
        self.inv = {i: t for t, i in vocab.items()}
        self.merges = merges
        self.ranks = {m: i for i, m in enumerate(merges)}
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, word_counts: dict[str, int], n_merges: int,
              must_be_single: list[str] | None = None) -> "BPETokenizer":
        """Classic BPE over integer word counts ('▁'-prefixed words). Ties are broken by
        the pair's strings, so the result does not depend on hashing. Words in
        `must_be_single` (e.g. '▁Austin') get whatever merges they still need appended
        after the frequency-ranked ones."""
        words = sorted(word_counts)
        chars = sorted({ch for wd in words for ch in wd} | {SP})
        vocab: dict[str, int] = {}
        for s in SPECIALS:
            vocab[s] = len(vocab)
        for b in range(256):
            vocab[f"<0x{b:02X}>"] = len(vocab)
        for ch in chars:
            if ch not in vocab:
                vocab[ch] = len(vocab)
        segs = {wd: list(wd) for wd in words}
        merges: list[tuple[str, str]] = []
        pairs: Counter[tuple[str, str]] = Counter()
        where: dict[tuple[str, str], set[str]] = {}

        def add(wd: str, sign: int) -> None:
            sg = segs[wd]
            f = word_counts[wd] * sign
            for i in range(len(sg) - 1):
                p = (sg[i], sg[i + 1])
                if _mergeable(*p):
                    pairs[p] += f
                    if sign > 0:
                        where.setdefault(p, set()).add(wd)

        for wd in words:
            add(wd, 1)
        while len(merges) < n_merges:
            live = [(c, p) for p, c in pairs.items() if c > 0]
            if not live:
                break
            c, best = max(live)
            if c < 2:
                break
            merges.append(best)
            new = best[0] + best[1]
            if new not in vocab:
                vocab[new] = len(vocab)
            for wd in sorted(where.get(best, ())):
                sg = segs[wd]
                add(wd, -1)
                i, out = 0, []
                while i < len(sg):
                    if i < len(sg) - 1 and sg[i] == best[0] and sg[i + 1] == best[1]:
                        out.append(new)
                        i += 2
                    else:
                        out.append(sg[i])
                        i += 1
                segs[wd] = out
                add(wd, 1)
        tok = cls(vocab, merges)
        for w in must_be_single or []:
            while True:
                sg = tok._bpe_word(w)
                if len(sg) <= 1:
                    break
                pair = (sg[0], sg[1])
                merges.append(pair)
                new = pair[0] + pair[1]
                if new not in vocab:
                    vocab[new] = len(vocab)
                tok = cls(vocab, merges)
        return cls(vocab, merges)

    def pad_vocab(self, multiple: int) -> None:
        """Append Gemma-style <unusedN> tokens until the vocabulary size is a multiple."""
        n = 0
        while len(self.vocab) % multiple:
            self.vocab[f"<unused{n}>"] = len(self.vocab)
            n += 1
        self.inv = {i: t for t, i in self.vocab.items()}

    def _bpe_word(self, word: str) -> list[str]:
        sg = list(word)
        while len(sg) > 1:
            best_rank = None
            best_i = -1
            for i in range(len(sg) - 1):
                r = self.ranks.get((sg[i], sg[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best_rank, best_i = r, i
            if best_rank is None:
                break
            a, b = self.merges[best_rank]
            out = []
            i = 0
            while i < len(sg):
                if i < len(sg) - 1 and sg[i] == a and sg[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(sg[i])
                    i += 1
            sg = out
        return sg

    def _word_ids(self, word: str) -> list[int]:
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        ids: list[int] = []
        for piece in self._bpe_word(word):
            if piece in self.vocab:
                ids.append(self.vocab[piece])
            else:  # byte fallback
                for b in piece.encode("utf-8"):
                    ids.append(self.vocab[f"<0x{b:02X}>"])
        self._cache[word] = ids
        return ids

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        ids = [BOS] if add_bos else []
        for wd in _words(text):
            ids.extend(self._word_ids(wd))
        return ids

    def tokens(self, ids: list[int]) -> list[str]:
        return [self.inv[i] for i in ids]

    def decode(self, ids: list[int]) -> str:
        out = bytearray()
        for i in ids:
            t = self.inv[i]
            if i < len(SPECIALS):
                continue
            if t.startswith("<0x") and len(t) == 6:
                out.append(int(t[3:5], 16))
            else:
                out.extend(t.replace(SP, " ").encode("utf-8"))
        return out.decode("utf-8", errors="replace")

    # --- Hugging Face files -------------------------------------------------------------
    def tokenizer_json(self) -> dict:
        added = [
            {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, s in enumerate(SPECIALS)
        ]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SP},
            "pre_tokenizer": None,
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "<bos>", "type_id": 1}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"<bos>": {"id": "<bos>", "ids": [BOS], "tokens": ["<bos>"]}},
            },
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": SP}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ]},
            "model": {
                "type": "BPE", "dropout": None, "unk_token": "<unk>",
                "continuing_subword_prefix": None, "end_of_word_suffix": None,
                "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                "vocab": self.vocab,
                "merges": [f"{a} {b}" for a, b in self.merges],
            },
        }

    @staticmethod
    def tokenizer_config() -> dict:
        return {
            "add_bos_token": True,
            "add_eos_token": False,
            "added_tokens_decoder": {
                str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                         "single_word": False, "special": True}
                for i, s in enumerate(SPECIALS)
            },
            "bos_token": "<bos>",
            "clean_up_tokenization_spaces": False,
            "eos_token": "<eos>",
            "model_max_length": 8192,
            "pad_token": "<pad>",
            "padding_side": "left",
            "sp_model_kwargs": {},
            "spaces_between_special_tokens": False,
            "tokenizer_class": "GemmaTokenizer",
            "unk_token": "<unk>",
            "use_default_system_prompt": False,
        }

    @staticmethod
    def special_tokens_map() -> dict:
        return {
            "bos_token": {"content": "<bos>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
            "eos_token": {"content": "<eos>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
            "pad_token": {"content": "<pad>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
            "unk_token": {"content": "<unk>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        }


def dump_json(obj: dict, path: str, indent: int | None = 2) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def from_tokenizer_json(path: str) -> BPETokenizer:
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    m = d["model"]
    merges = [tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in m["merges"]]
    return BPETokenizer(dict(m["vocab"]), merges)
