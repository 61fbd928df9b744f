#!/usr/bin/env python3
"""Randomly initialised BERTs of the bert-base and MiniLM-L6 shapes, saved as
model directories ember, transformers and sentence-transformers all read.

    python3 make_models.py OUT_DIR VOCAB_TXT

Runs on the GPU machine (torch and transformers there, no hub access). A fixed
seed makes the weights the same on every run. Each directory holds
config.json, model.safetensors (F32, as save_pretrained writes it), vocab.txt
(BERT's uncased vocabulary, 30522 entries) and tokenizer_config.json; the
MiniLM-shaped one also has the sentence-transformers modules of
all-MiniLM-L6-v2 (mean pooling, then Normalize).
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

SHAPES = {
    "bert-base-random": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "minilm-l6-random": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
}


def main() -> None:
    out, vocab = Path(sys.argv[1]), Path(sys.argv[2])
    for i, (name, shape) in enumerate(SHAPES.items()):
        d = out / name
        if (d / "model.safetensors").exists():
            print(f"make_models: {d} already there")
            continue
        torch.manual_seed(1234 + i)
        cfg = BertConfig(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
                         layer_norm_eps=1e-12, **shape)
        model = BertModel(cfg).eval()
        d.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)
        shutil.copy(vocab, d / "vocab.txt")
        (d / "tokenizer_config.json").write_text(json.dumps(
            {"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}))
        if name.startswith("minilm"):
            (d / "modules.json").write_text(json.dumps([
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
            (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, "do_lower_case": False}))
            (d / "1_Pooling").mkdir(exist_ok=True)
            (d / "1_Pooling" / "config.json").write_text(json.dumps({
                "word_embedding_dimension": shape["hidden_size"], "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False}))
            (d / "2_Normalize").mkdir(exist_ok=True)
        print(f"make_models: wrote {d} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters)")


if __name__ == "__main__":
    main()
