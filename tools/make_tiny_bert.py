#!/usr/bin/env python3
"""Write the tiny random BERT fixture and its reference activations.

    python tools/make_tiny_bert.py            (torch, transformers, sentence-transformers,
                                               safetensors; see tools/README.md)

Writes
  tests/data/tiny-bert/       a plain BertModel directory as Hugging Face saves it:
                              config.json, model.safetensors (BF16, "bert." prefix, plus
                              tensors ember must ignore), vocab.txt, tokenizer_config.json
  tests/data/tiny-bert-ref/   texts.json (texts, Hugging Face's ids) and
                              activations.safetensors: every layer's hidden states of the
                              texts (packed, F32) and the pooled vectors sentence-transformers'
                              Pooling module gives for cls / mean / max / mean_sqrt_len.

The weights are random but rounded to values that BF16 and F16 both hold exactly, so a
test can convert the file to F32 / F16 and expect bit-identical outputs. The vocabulary
is a 600-entry subset of bert-base-uncased's.
"""
import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file
from sentence_transformers.sentence_transformer.modules import Pooling
from transformers import AutoTokenizer, BertConfig, BertModel

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/data/tiny-bert"
REF = ROOT / "tests/data/tiny-bert-ref"
UNCASED_VOCAB = ROOT / "weights/all-MiniLM-L6-v2/vocab.txt"

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "",
    "a",
    "Hello, World! What's up?",
    "time flies like an arrow; fruit flies like a banana.",
    "unaffable people are rare 123 456",
    "don't [SEP] split [MASK] specials",
    "café déjà vu naïve résumé",
    " ".join(["the end of a very long text"] * 20),  # over 64 tokens: truncated
    "one two three four five six seven eight nine ten eleven twelve",
]


def tiny_vocab():
    words = UNCASED_VOCAB.read_text(encoding="utf-8").split("\n")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [w for w in words if len(w) == 1 and w.isascii() and w.isprintable()]
    subchars = ["##" + c for c in chars if ("##" + c) in words]
    wanted = set()
    for t in TEXTS:
        for w in t.lower().replace("'", " ' ").split():
            wanted.add(w.strip(".,!?;:'"))
    common = [w for w in words[1996:] if w.isalpha() and w.isascii()]
    vocab = specials + chars + subchars
    seen = set(vocab)
    for w in sorted(wanted) + ["##s", "##ed", "##ing", "##ly", "##er", "una", "##ffa", "##ble"] + common:
        if w and w not in seen and len(vocab) < 600:
            vocab.append(w)
            seen.add(w)
    return vocab


def exact_bf16_f16(t):
    """Round to BF16, then zero what F16 cannot hold exactly (|x| < 2^-14)."""
    t = t.to(torch.bfloat16).to(torch.float32)
    t[t.abs() < 2.0 ** -14] = 0.0
    return t


def main():
    torch.manual_seed(20261126)
    OUT.mkdir(parents=True, exist_ok=True)
    REF.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    (OUT / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (OUT / "tokenizer_config.json").write_text(json.dumps({
        "do_lower_case": True, "tokenize_chinese_chars": True, "strip_accents": None,
        "model_max_length": 64, "tokenizer_class": "BertTokenizer",
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
        "cls_token": "[CLS]", "mask_token": "[MASK]"}, indent=2) + "\n")
    config = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=64, type_vocab_size=2,
                        hidden_act="gelu", layer_norm_eps=1e-12, attn_implementation="eager")
    model = BertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias") or "LayerNorm" in name:
                p.copy_(0.1 * torch.randn_like(p))
            else:  # large enough that attention is far from uniform
                p.copy_(0.15 * torch.randn_like(p))
            p.copy_(exact_bf16_f16(p))
    cfg = config.to_dict()
    cfg["architectures"] = ["BertModel"]
    for k in ("attn_implementation", "_attn_implementation_autoset", "torch_dtype", "dtype"):
        cfg.pop(k, None)
    (OUT / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tensors = {"bert." + k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()
               if not k.endswith("position_ids")}
    # what BertForMaskedLM checkpoints also carry, which ember must ignore
    tensors["bert.embeddings.position_ids"] = torch.arange(64, dtype=torch.int64).unsqueeze(0)
    tensors["cls.predictions.bias"] = torch.zeros(len(vocab), dtype=torch.bfloat16)
    save_file(tensors, str(OUT / "model.safetensors"), metadata={"format": "pt"})

    tok = AutoTokenizer.from_pretrained(str(OUT))
    assert tok.backend_tokenizer is not None and len(tok) == len(vocab), "not the tokenizers-backed tokenizer"
    ids, hidden = [], [[] for _ in range(config.num_hidden_layers + 1)]
    pooled = {m: [] for m in ("cls", "mean", "max", "mean_sqrt_len")}
    poolers = {
        "cls": Pooling(64, pooling_mode="cls"),
        "mean": Pooling(64, pooling_mode="mean"),
        "max": Pooling(64, pooling_mode="max"),
        "mean_sqrt_len": Pooling(64, pooling_mode="mean_sqrt_len_tokens"),
    }
    with torch.no_grad():
        for text in TEXTS:
            enc = tok(text, truncation=True, max_length=64, return_tensors="pt")
            ids.append(enc["input_ids"][0].tolist())
            out = model(**enc, output_hidden_states=True)
            for l, h in enumerate(out.hidden_states):
                hidden[l].append(h[0])
            feats = {"token_embeddings": out.last_hidden_state, "attention_mask": enc["attention_mask"]}
            for m, p in poolers.items():
                pooled[m].append(p(dict(feats))["sentence_embedding"][0])
    acts = {"hidden.embeddings": torch.cat(hidden[0]).contiguous()}
    for l in range(config.num_hidden_layers):
        acts["hidden.layer%d" % l] = torch.cat(hidden[l + 1]).contiguous()
    for m, v in pooled.items():
        acts["pooled." + m] = torch.stack(v).contiguous()
    acts["pooled.mean.normalized"] = torch.nn.functional.normalize(acts["pooled.mean"], p=2, dim=1)
    save_file({k: v.float() for k, v in acts.items()}, str(REF / "activations.safetensors"))
    with open(REF / "texts.json", "w", encoding="utf-8") as f:
        f.write('{"texts": %s,\n "ids": [\n' % json.dumps(TEXTS, ensure_ascii=False))
        f.write(",\n".join("  " + json.dumps(i) for i in ids) + "\n]}\n")
    sizes = {p.name: p.stat().st_size for d in (OUT, REF) for p in d.iterdir()}
    print("wrote", OUT, REF, sizes)


if __name__ == "__main__":
    main()
