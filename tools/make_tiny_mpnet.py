#!/usr/bin/env python3
"""Write the tiny random MPNet fixture and its reference activations.

    python tools/make_tiny_mpnet.py           (torch, transformers, tokenizers, sentence-transformers,
                                               safetensors; see tools/README.md)

Needs weights/all-mpnet-base-v2 (weights/fetch.sh all-mpnet-base-v2): the tiny model's
tokenizer.json is that model's own (BertNormalizer, BertPreTokenizer, WordPiece,
RobertaProcessing, the added tokens with <mask>'s lstrip) with a 600-entry subset of its
vocabulary, so the fixture tokenizes as all-mpnet-base-v2 does, on a small scale.

Writes
  tests/data/tiny-mpnet/      an MPNetForMaskedLM-style directory: config.json (model_type
                              mpnet), model.safetensors (BF16, "mpnet." prefix, plus an LM
                              head tensor ember must ignore), tokenizer.json,
                              tokenizer_config.json, special_tokens_map.json
  tests/data/tiny-mpnet-ref/  texts.json (texts, Hugging Face's ids, the position buckets
                              transformers computes for relative positions -300..300) and
                              activations.safetensors: every layer's hidden states of the
                              texts (packed, F32), the mean / cls pooled vectors
                              (sentence-transformers' Pooling) and the normalised mean.

Two heads of 32 (the tensor-core head size on the GPU), 160 tokens at most, and a text
that fills them: distances past 128, where the buckets saturate, are in the reference.
The weights are random, rounded to values BF16 and F16 both hold exactly; the relative
attention bias is drawn wide (std 1) so that a wrong bucket shows.
"""
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from sentence_transformers.sentence_transformer.modules import Pooling
from tokenizers import Tokenizer
from transformers import MPNetConfig, MPNetModel, PreTrainedTokenizerFast
from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/data/tiny-mpnet"
REF = ROOT / "tests/data/tiny-mpnet-ref"
MPNET = ROOT / "weights/all-mpnet-base-v2"
MAX_LEN = 160

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "",
    "a",
    "Hello, World! What's up?",
    "time flies like an arrow; fruit flies like a banana.",
    "unaffable people are rare 123 456",
    "don't <mask> split </s> specials <s> x",
    "a <mask>b <unk> c [UNK] d",
    "café déjà vu naïve résumé",
    " ".join(["the end of a very long text that goes on"] * 20),  # over 160 tokens: truncated
    "one two three four five six seven eight nine ten eleven twelve",
]


def tiny_vocab(full):
    """The specials where MPNet has them (<s> <pad> </s> <unk> first: position 1 is the
    padding id), single characters, their ## forms, the texts' words, common words, <mask>."""
    words = [w for w, _ in sorted(full.items(), key=lambda kv: kv[1])]
    head = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]"]
    chars = [w for w in words if len(w) == 1 and w.isascii() and w.isprintable()]
    subchars = ["##" + c for c in chars if ("##" + c) in full]
    wanted = set()
    for t in TEXTS:
        for w in t.lower().replace("'", " ' ").split():
            wanted.add(w.strip(".,!?;:'"))
    common = [w for w in words[2000:] if w.isalpha() and w.isascii()]
    vocab = head + chars + subchars
    seen = set(vocab) | {"<mask>"}
    for w in sorted(wanted) + ["##s", "##ed", "##ing", "##ly", "##er", "una", "##ffa", "##ble"] + common:
        if w and w in full and w not in seen and len(vocab) < 599:
            vocab.append(w)
            seen.add(w)
    return vocab + ["<mask>"]


def tiny_tokenizer():
    spec = json.loads((MPNET / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tiny_vocab(spec["model"]["vocab"])
    ids = {w: i for i, w in enumerate(vocab)}
    spec["model"]["vocab"] = ids
    spec["added_tokens"] = [dict(a, id=ids[a["content"]]) for a in spec["added_tokens"] if a["content"] in ids]
    post = spec["post_processor"]
    post["sep"] = ["</s>", ids["</s>"]]
    post["cls"] = ["<s>", ids["<s>"]]
    spec["truncation"] = None
    spec["padding"] = None
    (OUT / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    cfg = json.loads((MPNET / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = MAX_LEN
    cfg.pop("name_or_path", None)
    (OUT / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (OUT / "special_tokens_map.json").write_bytes((MPNET / "special_tokens_map.json").read_bytes())
    return vocab


def exact_bf16_f16(t):
    """Round to BF16, then zero what F16 cannot hold exactly (|x| < 2^-14)."""
    t = t.to(torch.bfloat16).to(torch.float32)
    t[t.abs() < 2.0 ** -14] = 0.0
    return t


def main():
    torch.manual_seed(20261128)
    OUT.mkdir(parents=True, exist_ok=True)
    REF.mkdir(parents=True, exist_ok=True)
    vocab = tiny_tokenizer()
    config = MPNetConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=MAX_LEN + 2, relative_attention_num_buckets=32,
                         hidden_act="gelu", layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                         attn_implementation="eager")
    model = MPNetModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias") or "LayerNorm" in name:
                p.copy_(0.1 * torch.randn_like(p))
            elif "relative_attention_bias" in name:
                p.copy_(torch.randn_like(p))
            else:  # large enough that attention is far from uniform
                p.copy_(0.15 * torch.randn_like(p))
            p.copy_(exact_bf16_f16(p))
    cfg = config.to_dict()
    cfg["architectures"] = ["MPNetForMaskedLM"]
    for k in ("attn_implementation", "_attn_implementation_autoset", "torch_dtype", "dtype"):
        cfg.pop(k, None)
    (OUT / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tensors = {"mpnet." + k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()
               if not k.endswith("position_ids")}
    # what MPNetForMaskedLM checkpoints also carry, which ember must ignore
    tensors["lm_head.bias"] = torch.zeros(len(vocab), dtype=torch.bfloat16)
    save_file(tensors, str(OUT / "model.safetensors"), metadata={"format": "pt"})

    tok = PreTrainedTokenizerFast(tokenizer_file=str(OUT / "tokenizer.json"), model_max_length=MAX_LEN,
                                  bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                  unk_token="[UNK]", pad_token="<pad>", mask_token="<mask>")
    raw = Tokenizer.from_file(str(OUT / "tokenizer.json"))
    ids, hidden = [], [[] for _ in range(config.num_hidden_layers + 1)]
    pooled = {m: [] for m in ("cls", "mean")}
    poolers = {"cls": Pooling(64, pooling_mode="cls"), "mean": Pooling(64, pooling_mode="mean")}
    with torch.no_grad():
        for text in TEXTS:
            enc = tok(text, truncation=True, max_length=MAX_LEN, return_tensors="pt")
            one = enc["input_ids"][0].tolist()
            whole = raw.encode(text).ids
            assert one == whole[:MAX_LEN - 1] + [whole[-1]] if len(whole) > MAX_LEN else one == whole, text
            ids.append(one)
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_hidden_states=True)
            for l, h in enumerate(out.hidden_states):
                hidden[l].append(h[0])
            feats = {"token_embeddings": out.last_hidden_state, "attention_mask": enc["attention_mask"]}
            for m, p in poolers.items():
                pooled[m].append(p(dict(feats))["sentence_embedding"][0])
    assert max(len(i) for i in ids) == MAX_LEN and sum(len(i) > 129 for i in ids) >= 1
    acts = {"hidden.embeddings": torch.cat(hidden[0]).contiguous()}
    for l in range(config.num_hidden_layers):
        acts["hidden.layer%d" % l] = torch.cat(hidden[l + 1]).contiguous()
    for m, v in pooled.items():
        acts["pooled." + m] = torch.stack(v).contiguous()
    acts["pooled.mean.normalized"] = torch.nn.functional.normalize(acts["pooled.mean"], p=2, dim=1)
    save_file({k: v.float() for k, v in acts.items()}, str(REF / "activations.safetensors"))
    rel = torch.arange(-300, 301)
    buckets = MPNetEncoder.relative_position_bucket(rel, num_buckets=32, max_distance=128).tolist()
    with open(REF / "texts.json", "w", encoding="utf-8") as f:
        f.write('{"texts": %s,\n "ids": [\n' % json.dumps(TEXTS, ensure_ascii=False))
        f.write(",\n".join("  " + json.dumps(i) for i in ids) + "\n],\n")
        f.write(' "bucket_from": -300,\n "buckets": %s}\n' % json.dumps(buckets))
    sizes = {p.name: p.stat().st_size for d in (OUT, REF) for p in d.iterdir()}
    print("wrote", OUT, REF, sizes)


if __name__ == "__main__":
    main()
