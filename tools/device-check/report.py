#!/usr/bin/env python3
"""The device check's throughput table, in Markdown, from the JSON lines of
ember-devcheck bench / bench-ids and st_bench.py.

    python3 report.py RESULTS_JSONL CARD_NAME > results.md

Also checks the floors of issue 3 (H100, fp16):
  - bert-base shape, 128 tokens per sequence: >= 2.5 M tokens/s;
  - all-MiniLM-L6-v2 on STS-B sentences (a realistic length mix): >= 10 M
    tokens/s (best batch size and thread count; tokenization included);
  - all-MiniLM-L6-v2 on STS-B sentences: >= 3x sentence-transformers fp16,
    same GPU, same inputs (compared at each batch size).
"""
import json
import sys
from collections import defaultdict
from pathlib import Path


def fmt(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k"


def main() -> None:
    path = Path(sys.argv[1])
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.startswith("{")] if path.exists() else []
    card = sys.argv[2]
    bench = [r for r in rows if "tokens_per_s" in r]
    by_key = defaultdict(dict)
    for r in bench:
        inp = Path(r["input"]).stem if "/" in r["input"] or r["input"].endswith(".txt") else r["input"]
        engine = r["engine"] + (f" x{r['threads']} threads" if r.get("threads", 1) > 1 else "")
        by_key[(r["model"], inp, r["batch"])][engine] = r
    engines = sorted({e for v in by_key.values() for e in v}, key=lambda e: (not e.startswith("ember"), e))
    print(f"### Throughput on {card} (fp16)\n")
    print("Texts per call = batch. Tokens as the model sees them ([CLS], [SEP], truncation). "
          "ember: ember_encode on the texts (tokenization included) or, for `ids of N tokens`, "
          "ember_encode_sequences on random ids (the model alone).\n")
    if not bench:
        print("(no throughput was measured)")
    else:
        print("| model | input | batch | " + " | ".join(f"{e} tokens/s | {e} texts/s" for e in engines) +
              " | ember / sentence-transformers |")
        print("|---|---|---|" + "---|---|" * len(engines) + "---|")
    floors = []
    for (model, inp, batch), v in sorted(by_key.items()):
        cells = []
        for e in engines:
            r = v.get(e)
            cells += [fmt(r["tokens_per_s"]), fmt(r["sentences_per_s"])] if r else ["", ""]
        ratio = ""
        st = v.get("sentence-transformers")
        one = v.get("ember")
        best = max((r for e, r in v.items() if e.startswith("ember")), key=lambda r: r["tokens_per_s"], default=None)
        if st and best:
            ratio = f"{best['tokens_per_s'] / st['tokens_per_s']:.2f}x"
            if model.startswith("all-MiniLM") and inp == "stsb":
                how = (f"1 thread {one['tokens_per_s'] / st['tokens_per_s']:.2f}x" if one else "1 thread: not run")
                how += f", best ({best['threads']} threads) {ratio}"
                floors.append((f"all-MiniLM-L6-v2, STS-B sentences, batch {batch}: ember >= 3x sentence-transformers",
                               best["tokens_per_s"] / st["tokens_per_s"] >= 3.0, how))
        if model.startswith("bert-base") and inp == "ids of 128 tokens":
            e = v.get("ember")
            if e:
                floors.append(("bert-base shape, 128 tokens per sequence: >= 2.5 M tokens/s",
                               e["tokens_per_s"] >= 2.5e6, fmt(e["tokens_per_s"]) + " tokens/s"))
        print(f"| {model} | {inp} | {batch} | " + " | ".join(cells) + f" | {ratio} |")
    minilm_stsb = [r for (model, inp, _), v in by_key.items() for e, r in v.items()
                   if model.startswith("all-MiniLM") and inp == "stsb" and e.startswith("ember")]
    if minilm_stsb:
        top = max(minilm_stsb, key=lambda r: r["tokens_per_s"])
        floors.append(("all-MiniLM-L6-v2, STS-B sentences: >= 10 M tokens/s", top["tokens_per_s"] >= 10e6,
                       f"{fmt(top['tokens_per_s'])} tokens/s at batch {top['batch']}, {top.get('threads', 1)} thread(s)"))
    if floors:
        print("\n### Floors (issue 3)\n")
        for what, ok, got in floors:
            print(f"- {'PASS' if ok else 'FAIL'}: {what} (measured {got})")
    checks = [r for r in rows if r.get("check") == "torch_compare"]
    if checks:
        print("\n### ember against PyTorch on the same weights\n")
        print("| model | engine | max abs diff (hidden) | mean abs diff | min cosine (mean-pooled) | verdict |")
        print("|---|---|---|---|---|---|")
        for r in checks:
            print(f"| {r['model']} | {r['engine']} | {r['max_abs_diff']:.3e} | {r['mean_abs_diff']:.3e} | "
                  f"{r['min_pooled_cosine']:.6f} | {r['verdict']} |")


if __name__ == "__main__":
    main()
