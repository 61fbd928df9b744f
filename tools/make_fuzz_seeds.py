#!/usr/bin/env python3
"""The fuzz targets' seed corpora (tests/fuzz/corpus/TARGET/*): small valid
inputs the fuzzers mutate from. Standard library only:

    python3 tools/make_fuzz_seeds.py

Parts of one input are separated by "\\n--8<--\\n" (tests/fuzz/fuzz_util.h).
"""
import gzip
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fuzz" / "corpus"
TINY = ROOT / "tests" / "data" / "tiny-bert"
SEP = b"\n--8<--\n"


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def micro_bert():
    """config.json and model.safetensors of a BERT with hidden 8: every
    tensor the loader looks for, a few hundred bytes, zeros."""
    C, FF, V, P, TV, L = 8, 16, 12, 16, 2, 1
    cfg = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": C, "num_hidden_layers": L,
           "num_attention_heads": 2, "intermediate_size": FF, "vocab_size": V, "max_position_embeddings": P,
           "type_vocab_size": TV, "hidden_act": "gelu", "layer_norm_eps": 1e-12}
    shapes = {"embeddings.word_embeddings.weight": [V, C], "embeddings.position_embeddings.weight": [P, C],
              "embeddings.token_type_embeddings.weight": [TV, C], "embeddings.LayerNorm.weight": [C],
              "embeddings.LayerNorm.bias": [C]}
    for l in range(L):
        p = f"encoder.layer.{l}."
        for n in ("query", "key", "value"):
            shapes[p + f"attention.self.{n}.weight"] = [C, C]
            shapes[p + f"attention.self.{n}.bias"] = [C]
        shapes.update({p + "attention.output.dense.weight": [C, C], p + "attention.output.dense.bias": [C],
                       p + "attention.output.LayerNorm.weight": [C], p + "attention.output.LayerNorm.bias": [C],
                       p + "intermediate.dense.weight": [FF, C], p + "intermediate.dense.bias": [FF],
                       p + "output.dense.weight": [C, FF], p + "output.dense.bias": [C],
                       p + "output.LayerNorm.weight": [C], p + "output.LayerNorm.bias": [C]})
    header, off = {}, 0
    for name, shape in shapes.items():
        n = 4
        for s in shape:
            n *= s
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header).encode()
    return json.dumps(cfg).encode(), struct.pack("<Q", len(h)) + h + bytes(off)


def main():
    texts = [(0x03, "Hello, wörld! How are you?".encode()), (0x0B, b"the quick brown fox|jumps over the lazy dog"),
             (0x07, "日本語のテキスト and emoji 🙂🙂 café naïve".encode()), (0x01, b"bad \xff\xfe bytes \xc3("),
             (0x0F, b"[CLS] [SEP] [MASK] [PAD] literal"), (0x02, b"a" * 300), (0x00, b"")]
    for i, (flags, text) in enumerate(texts):
        write("tokenize", f"seed{i}", bytes([flags, i * 11 % 256]) + text)

    vocab = (TINY / "vocab.txt").read_bytes()
    write("tokenizer_files", "vocab", b"\x01" + vocab + SEP + (TINY / "tokenizer_config.json").read_bytes())
    words = vocab.decode().split("\n")[:120]
    special = lambda t: {"id": t, "type_id": 0}
    tj = {"version": "1.0",
          "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True} for i, t in enumerate(words[:5]) if t.startswith("[")],
          "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                         "strip_accents": None, "lowercase": True},
          "pre_tokenizer": {"type": "BertPreTokenizer"},
          "post_processor": {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": special("[CLS]")}, {"Sequence": {"id": "A", "type_id": 0}},
                                        {"SpecialToken": special("[SEP]")}],
                             "pair": [{"SpecialToken": special("[CLS]")}, {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": special("[SEP]")}, {"Sequence": {"id": "B", "type_id": 1}},
                                      {"SpecialToken": {"id": "[SEP]", "type_id": 1}}]},
          "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                    "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(words) if t}}}
    write("tokenizer_files", "json", b"\x00" + json.dumps(tj).encode())

    cfg, st = micro_bert()
    write("model_files", "micro", cfg + SEP + st)
    write("model_files", "micro_modules", cfg + SEP + st + SEP + json.dumps(
        [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
         {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]).encode())

    bodies = [(0, {"inputs": ["hello world", "time flies"], "normalize": False, "truncate": True}),
              (1, {"inputs": "hello"}), (2, {"inputs": ["hello world"], "add_special_tokens": False}),
              (3, {"input": ["a", "b"], "encoding_format": "base64", "dimensions": 8}),
              (4, {"query": ["fox"], "k": 3, "return_text": True}), (0, {"inputs": [[101, 2000, 102]]}),
              (3, {"input": "x", "model": "m"})]
    for i, (route, body) in enumerate(bodies):
        write("request", f"seed{i}", bytes([route]) + json.dumps(body).encode())

    write("lines", "text", b"one\ntwo\r\n\nthree without newline")
    write("lines", "jsonl", b'{"text": "hello"}\n{"text": 3}\n[1,2]\n{"text": "\\u00e9\\ud83d\\ude42"}\n')
    write("lines", "gzip", gzip.compress(b"a\nb\n", mtime=0) + gzip.compress(b"c\n", mtime=0))

    write("manifest", "empty", b"{}")
    print(f"wrote {OUT} (the manifest target's int8_run seed is an ember embed output, kept as committed)")


if __name__ == "__main__":
    main()
