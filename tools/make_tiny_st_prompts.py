#!/usr/bin/env python3
"""Write two tiny random sentence-transformers models that declare prompts, and their embeddings.

    python tools/make_tiny_st_prompts.py      (torch venv: torch, sentence-transformers, numpy;
                                               run tools/make_tiny_bert.py's fixture first)

Both are saved by sentence-transformers itself over the tiny BERT of tests/data/tiny-bert/
(Transformer, Pooling (mean), Normalize), with config_sentence_transformers.json's
prompts {"query": "query: ", "passage": "passage: ", "empty": ""}:
  tests/data/tiny-st-prompts/          include_prompt true, default_prompt_name "query"
  tests/data/tiny-st-prompts-exclude/  include_prompt false (the prompt's tokens, [CLS]
                                       with them, left out of the mean), no default prompt
  tests/data/tiny-st-prompts-cls/      include_prompt false with CLS pooling: the vector is
                                       the first token after the prompt
And tests/data/tiny-st-prompts-ref/:
  texts.json    the texts and, per case, the encode() arguments
  <dir>.<case>.npy   model.encode(texts, **args): (n, 64) float32, for each case below
"""
import json
import shutil
from pathlib import Path

import numpy as np
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests/data/tiny-bert"
REF = ROOT / "tests/data/tiny-st-prompts-ref"
PROMPTS = {"query": "query: ", "passage": "passage: ", "empty": ""}

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "",
    "a",
    "Hello, World! What's up?",
    "café déjà vu naïve résumé",
    " ".join(["the end of a very long text"] * 20),  # over 64 tokens with the prompt: truncated
]

# case name -> encode() keyword arguments
CASES = {
    "default": {},
    "query": {"prompt_name": "query"},
    "passage": {"prompt_name": "passage"},
    "custom": {"prompt": "Represent this sentence for searching relevant passages: "},
    "none": {"prompt": ""},
}


def build(out: Path, include_prompt: bool, default_prompt_name, pooling_mode="mean"):
    transformer = Transformer(str(TINY), max_seq_length=64)
    pooling = Pooling(64, pooling_mode=pooling_mode, include_prompt=include_prompt)
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu",
                                prompts=PROMPTS, default_prompt_name=default_prompt_name).eval()
    if out.exists():
        shutil.rmtree(out)
    model.save(str(out))
    shutil.copyfile(TINY / "model.safetensors", out / "model.safetensors")
    (out / "README.md").unlink(missing_ok=True)
    saved = SentenceTransformer(str(out), device="cpu", model_kwargs={"dtype": torch.float32}).eval()
    assert saved.prompts.get("query") == "query: ", saved.prompts
    assert saved.default_prompt_name == default_prompt_name
    assert saved[1].include_prompt == include_prompt
    for case, args in CASES.items():
        emb = saved.encode(TEXTS, convert_to_numpy=True, **args)
        assert emb.shape == (len(TEXTS), 64)
        np.save(REF / f"{out.name}.{case}.npy", emb.astype(np.float32))


def main():
    REF.mkdir(parents=True, exist_ok=True)
    build(ROOT / "tests/data/tiny-st-prompts", True, "query")
    build(ROOT / "tests/data/tiny-st-prompts-exclude", False, None)
    build(ROOT / "tests/data/tiny-st-prompts-cls", False, None, "cls")
    (REF / "texts.json").write_text(json.dumps({
        "texts": TEXTS, "prompts": PROMPTS, "cases": CASES,
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
