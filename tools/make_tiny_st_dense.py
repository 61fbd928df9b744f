#!/usr/bin/env python3
"""Write a tiny random sentence-transformers model with Dense modules, and its embeddings.

    python tools/make_tiny_st_dense.py        (torch venv: torch, sentence-transformers, numpy;
                                               run tools/make_tiny_bert.py's fixture first)

Writes tests/data/tiny-st-dense/, a SentenceTransformer saved by sentence-transformers
itself over the tiny BERT of tests/data/tiny-bert/: Transformer, Pooling (mean),
2_Dense (64 -> 48, Tanh, with bias), 3_Dense (48 -> 32, Identity, no bias), Normalize —
each Dense as sentence-transformers saves it (config.json, model.safetensors). The root
model.safetensors is tiny-bert's own (BF16; the values are the same), to keep the
fixture small. And tests/data/tiny-st-dense-ref/:
  texts.json       the texts
  embeddings.npy   model.encode(texts): (n, 32) float32, through Normalize
  unnormalized.npy the same model without its Normalize module
"""
import json
import shutil
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests/data/tiny-bert"
OUT = ROOT / "tests/data/tiny-st-dense"
REF = ROOT / "tests/data/tiny-st-dense-ref"

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "",
    "a",
    "Hello, World! What's up?",
    "time flies like an arrow; fruit flies like a banana.",
    "café déjà vu naïve résumé",
    " ".join(["the end of a very long text"] * 20),  # over 64 tokens: truncated
]


def main():
    torch.manual_seed(20261128)
    transformer = Transformer(str(TINY), max_seq_length=64)
    pooling = Pooling(64, pooling_mode="mean")
    dense1 = Dense(64, 48, bias=True, activation_function=torch.nn.Tanh())
    dense2 = Dense(48, 32, bias=False, activation_function=torch.nn.Identity())
    with torch.no_grad():  # weights large enough that Tanh is far from linear
        dense1.linear.weight.copy_(0.4 * torch.randn_like(dense1.linear.weight))
        dense1.linear.bias.copy_(0.2 * torch.randn_like(dense1.linear.bias))
        dense2.linear.weight.copy_(0.3 * torch.randn_like(dense2.linear.weight))
    model = SentenceTransformer(modules=[transformer, pooling, dense1, dense2, Normalize()], device="cpu").eval()
    if OUT.exists():
        shutil.rmtree(OUT)
    model.save(str(OUT))
    shutil.copyfile(TINY / "model.safetensors", OUT / "model.safetensors")
    for junk in ("README.md",):
        (OUT / junk).unlink(missing_ok=True)

    # what ember reads back is what is checked: load the saved directory again
    # in fp32, as ember computes (the weights file is BF16, which transformers would keep)
    saved = SentenceTransformer(str(OUT), device="cpu", model_kwargs={"dtype": torch.float32}).eval()
    assert next(saved[0].parameters()).dtype == torch.float32
    modules = [type(m).__name__ for m in saved]
    assert modules == ["Transformer", "Pooling", "Dense", "Dense", "Normalize"], modules
    assert (OUT / "2_Dense/model.safetensors").exists() and (OUT / "3_Dense/model.safetensors").exists()
    emb = saved.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=False)
    raw = SentenceTransformer(modules=list(saved)[:-1], device="cpu").eval().encode(TEXTS, convert_to_numpy=True)
    assert emb.shape == (len(TEXTS), 32) and raw.shape == emb.shape
    REF.mkdir(parents=True, exist_ok=True)
    np.save(REF / "embeddings.npy", emb.astype(np.float32))
    np.save(REF / "unnormalized.npy", raw.astype(np.float32))
    (REF / "texts.json").write_text(json.dumps({
        "texts": TEXTS, "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    sizes = {str(p.relative_to(ROOT)): p.stat().st_size for d in (OUT, REF) for p in d.rglob("*") if p.is_file()}
    print(json.dumps(sizes, indent=1))


if __name__ == "__main__":
    main()
