#!/usr/bin/env python3
"""Write two tiny random cross-encoders (BertForSequenceClassification) and their scores.

    python tools/make_tiny_cross_encoder.py   (torch venv: torch, transformers,
                                               sentence-transformers, numpy; run
                                               tools/make_tiny_bert.py's fixture first)

Writes tests/data/tiny-cross-encoder/ (num_labels 1, a reranker) and
tests/data/tiny-cross-encoder-3/ (num_labels 3, id2label contradiction / entailment /
neutral), each saved (BF16, as tiny-bert) by transformers' save_pretrained over tiny-bert's encoder with a
random pooler and classifier, tiny-bert's tokenizer files beside. And
tests/data/tiny-cross-encoder-ref/:
  pairs.json      the (query, text) pairs
  logits1.npy     BertForSequenceClassification's logits for the pairs, (n, 1) float32
                  (the tokenizer's pairs: [CLS] a [SEP] b [SEP], token types, truncation
                  longest first to 64 tokens)
  scores1.npy     sentence-transformers CrossEncoder(dir).predict(pairs): its default,
                  the sigmoid of the logit, (n, 1)
  logits3.npy     the 3-label model's logits, (n, 3)
  single3.npy     the 3-label model's logits for each query alone ([CLS] q [SEP]), (n, 3)
"""
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import CrossEncoder
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests/data/tiny-bert"
REF = ROOT / "tests/data/tiny-cross-encoder-ref"
LONG = " ".join(["the end of a very long text"] * 12)  # with a query, over 64 tokens: truncated
PAIRS = [
    ["what is the capital of france", "paris is the capital of france"],
    ["what is the capital of france", "the quick brown fox jumps over the lazy dog"],
    ["Hello, World!", "What's up?"],
    ["time flies like an arrow", "fruit flies like a banana."],
    ["café déjà vu", "naïve résumé 123 456"],
    ["a", "a"],
    ["long texts are cut longest first", LONG],
    [LONG, LONG + " again"],
]
LABELS3 = ["contradiction", "entailment", "neutral"]


def make(out, num_labels, seed):
    torch.manual_seed(seed)
    cfg = BertConfig.from_pretrained(TINY, num_labels=num_labels)
    cfg.architectures = ["BertForSequenceClassification"]
    if num_labels == 3:
        cfg.id2label = dict(enumerate(LABELS3))
        cfg.label2id = {v: k for k, v in cfg.id2label.items()}
    model = BertForSequenceClassification.from_pretrained(TINY, config=cfg, dtype=torch.float32).eval()
    with torch.no_grad():  # a pooler and classifier large enough that scores spread out
        model.bert.pooler.dense.weight.copy_(0.3 * torch.randn_like(model.bert.pooler.dense.weight))
        model.bert.pooler.dense.bias.copy_(0.1 * torch.randn_like(model.bert.pooler.dense.bias))
        model.classifier.weight.copy_(0.5 * torch.randn_like(model.classifier.weight))
        model.classifier.bias.copy_(0.1 * torch.randn_like(model.classifier.bias))
        for p in model.parameters():  # values BF16 holds exactly: the BF16 file is the F32 model
            p.copy_(p.to(torch.bfloat16).float())
    if out.exists():
        shutil.rmtree(out)
    model.to(torch.bfloat16).save_pretrained(out)  # as tiny-bert is stored, to keep the fixture small
    model.float()
    for f in ("vocab.txt", "tokenizer_config.json"):
        shutil.copyfile(TINY / f, out / f)
    return model


def logits(model, tok, a, b):
    enc = tok(a, b, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits.float().numpy()


def main():
    REF.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(TINY)
    qs, ds = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    m1 = make(ROOT / "tests/data/tiny-cross-encoder", 1, 20261128)
    m3 = make(ROOT / "tests/data/tiny-cross-encoder-3", 3, 20261129)
    l1 = logits(m1, tok, qs, ds)
    scores = CrossEncoder(str(ROOT / "tests/data/tiny-cross-encoder"), device="cpu", max_length=64,
                          model_kwargs={"dtype": torch.float32}).predict(PAIRS)
    assert np.allclose(scores, 1 / (1 + np.exp(-l1[:, 0])), atol=1e-6), (scores, l1)
    np.save(REF / "logits1.npy", l1.astype(np.float32))
    np.save(REF / "scores1.npy", np.asarray(scores, dtype=np.float32).reshape(-1, 1))
    np.save(REF / "logits3.npy", logits(m3, tok, qs, ds).astype(np.float32))
    np.save(REF / "single3.npy", logits(m3, tok, qs, None).astype(np.float32))
    (REF / "pairs.json").write_text(json.dumps(PAIRS, ensure_ascii=False, indent=1) + "\n")
    print("scores", np.round(scores, 4).tolist())
    print("logits3", np.round(np.load(REF / "logits3.npy"), 3).tolist()[:2])


if __name__ == "__main__":
    main()
