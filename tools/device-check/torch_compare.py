#!/usr/bin/env python3
"""ember against PyTorch (transformers' BertModel) on the same weights.

    python3 torch_compare.py DEVCHECK_BIN RESULTS_JSONL MODEL_DIR [MODEL_DIR...]

For each model: random id sequences of mixed lengths (1, 2, tile edges, 128,
256, 512, ... up to the model's limit), the reference hidden states from
PyTorch in fp32 (each sequence alone: no padding) and in fp16, then ember
(ember-devcheck embed) in fp32, fp16 and bf16. Prints max |diff| of the hidden
states against PyTorch fp32 and the smallest cosine of the mean-pooled
vectors, with PyTorch fp16's own numbers beside them for scale. Appends one
JSON line per (model, engine, dtype) to RESULTS_JSONL. Exit status 1 when
ember fp32 is off by more than 1e-3 or an fp16/bf16 pooled cosine is under
0.999.

DEVCHECK_DEVICE=cpu runs PyTorch and ember on the CPU instead (a dry run of
this script where there is no GPU; ember's CPU path is fp32 whatever the
dtype asked).
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import BertModel

torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 reference is true fp32
torch.backends.cudnn.allow_tf32 = False
DEVICE = os.environ.get("DEVCHECK_DEVICE", "cuda")


def sequences(max_len: int, vocab: int, seed: int):
    rng = np.random.default_rng(seed)
    lengths = [n for n in (1, 2, 3, 15, 16, 17, 31, 63, 64, 65, 100, 127, 128, 129, 255, 256, 300, 511, 512)
               if n <= max_len]
    lengths += list(rng.integers(1, max_len + 1, size=8))
    seqs = []
    for n in lengths:
        ids = rng.integers(min(1000, vocab // 2), vocab, size=n).tolist()  # past [unused] entries
        ids[0] = 101
        if n > 1:
            ids[-1] = 102
        seqs.append(ids)
    return seqs


def mean_pool(h: np.ndarray, lens):
    out, t = [], 0
    for n in lens:
        out.append(h[t : t + n].mean(axis=0))
        t += n
    return np.stack(out)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float((num / den).min())


def main() -> int:
    devcheck, results = sys.argv[1], sys.argv[2]
    ok = True
    for model_dir in sys.argv[3:]:
        name = Path(model_dir).name
        if not (Path(model_dir) / "config.json").exists():
            print(f"\n{name}: no model at {model_dir}: FAIL")
            ok = False
            continue
        cfg = json.loads((Path(model_dir) / "config.json").read_text())
        max_len = min(512, cfg["max_position_embeddings"])
        st_cfg = Path(model_dir) / "sentence_bert_config.json"
        if st_cfg.exists():  # ember keeps to sentence-transformers' limit (MiniLM: 256)
            max_len = min(max_len, json.loads(st_cfg.read_text()).get("max_seq_length") or max_len)
        seqs = sequences(max_len, cfg["vocab_size"], seed=len(name))
        lens = [len(s) for s in seqs]
        model = BertModel.from_pretrained(model_dir, attn_implementation="eager",
                                          add_pooling_layer=False).float().to(DEVICE).eval()
        ref = {}
        for label, dtype in (("torch fp32", torch.float32), ("torch fp16", torch.float16)):
            m = model.to(dtype)
            with torch.no_grad():
                hs = [m(input_ids=torch.tensor([s], device=DEVICE)).last_hidden_state[0].float().cpu().numpy()
                      for s in seqs]
            ref[label] = np.concatenate(hs)
        del model
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
        base = ref["torch fp32"]
        base_pooled = mean_pool(base, lens)
        rows = [("torch fp16", ref["torch fp16"])]
        with tempfile.TemporaryDirectory() as tmp:
            ids_file = os.path.join(tmp, "ids.txt")
            Path(ids_file).write_text("\n".join(" ".join(map(str, s)) for s in seqs) + "\n")
            for dt in ("fp32", "fp16", "bf16"):
                out = os.path.join(tmp, f"out-{dt}.bin")
                subprocess.run([devcheck, "embed", model_dir, "--ids", ids_file, "--out", out, "--dtype", dt,
                                "--pooling", "mean", "--normalize", "0"] +
                               (["--device", "cpu"] if DEVICE == "cpu" else []), check=True)
                raw = np.fromfile(out, dtype="<f4")
                C = base.shape[1]
                pooled = raw[: len(seqs) * C].reshape(len(seqs), C)
                hidden = raw[len(seqs) * C :].reshape(-1, C)
                assert hidden.shape == base.shape, (hidden.shape, base.shape)
                # ember's own mean pooling must agree with pooling its hidden states
                assert np.abs(pooled - mean_pool(hidden, lens)).max() < 1e-3 * max(1.0, np.abs(pooled).max())
                rows.append((f"ember {dt}", hidden))
        print(f"\n{name}: {len(seqs)} sequences, {sum(lens)} tokens (lengths {min(lens)}-{max(lens)}), "
              f"against PyTorch fp32 (max |hidden| {np.abs(base).max():.2f})")
        print(f"  {'engine':<12} {'max |diff| hidden':>18} {'mean |diff|':>12} {'min cos pooled':>15}  verdict")
        for label, h in rows:
            diff = np.abs(h - base)
            cos = min_cosine(mean_pool(h, lens), base_pooled)
            if label == "ember fp32":
                verdict = "ok" if diff.max() <= 1e-3 else "FAIL (> 1e-3)"
            elif label.startswith("ember"):
                verdict = "ok" if cos >= 0.999 else "FAIL (cos < 0.999)"
            else:
                verdict = "(reference)"
            ok &= not verdict.startswith("FAIL")
            print(f"  {label:<12} {diff.max():>18.3e} {diff.mean():>12.3e} {cos:>15.6f}  {verdict}")
            with open(results, "a") as f:
                f.write(json.dumps({"check": "torch_compare", "model": name, "engine": label,
                                    "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
                                    "min_pooled_cosine": cos, "verdict": verdict}) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
