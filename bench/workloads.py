#!/usr/bin/env python3
"""Write the benchmark workloads, one text per line, into a folder.

  short      STS-B English sentences (../shared/data/stsb, both columns)
  passages   paragraphs of real documentation, 100-250 tokens each: this
             machine's man pages (section 1) and /usr/share/doc READMEs
  long       documents of 600+ tokens from the same pages (every engine cuts
             them at the model's maximum: 512, or 256 for all-MiniLM-L6-v2)
  mixed      60% short, 30% passages, 10% long, shuffled
  len-N      texts of exactly N tokens ([CLS] and [SEP] included) made of
             whole vocabulary words, for throughput against length

Token counts come from the model's own tokenizer.json (Hugging Face
`tokenizers`). Everything is deterministic for a given machine: the
documentation differs between machines, so workloads.json records each
file's sha256 and the counts, and bench/compare prints them with its results.

  python bench/workloads.py --model weights/all-MiniLM-L6-v2 --out bench/out/workloads
"""
import argparse
import csv
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def clean(text):
    return re.sub(r"\s+", " ", text).strip()


def prose_like(p):
    """Sentences, not tables, option lists or code."""
    if len(p) < 200:
        return False
    letters = sum(c.isalpha() for c in p)
    if letters < 0.7 * len(p.replace(" ", "")):
        return False
    if p.count(".") < 2 or "    " in p or "http" in p:
        return False
    return True


def man_paragraphs(path):
    env = dict(os.environ, MANWIDTH="4000", MAN_KEEP_FORMATTING="0")
    try:
        out = subprocess.run(["man", "--no-hyphenation", "--no-justification", "-P", "cat", "-l", path],
                             capture_output=True, env=env, timeout=20).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return []
    out = re.sub(r".\x08", "", out)  # grotty's overstrike (bold, underline)
    paras = []
    for line in out.splitlines():
        line = clean(line.replace("\u2010", "-"))
        if line:
            paras.append(line)
    return paras


def doc_paragraphs(path):
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            text = f.read(200_000)
    except OSError:
        return []
    return [clean(b) for b in re.split(r"\n\s*\n", text) if clean(b)]


def sources():
    """A spread of this machine's documentation, in a fixed order: READMEs
    (quick to read), then every 7th man page of section 1."""
    docs = []
    for d, _, files in os.walk("/usr/share/doc"):
        for f in files:
            if f.startswith("README") or f.endswith((".txt", ".txt.gz")):
                docs.append(os.path.join(d, f))
    for p in sorted(docs):
        yield "doc", p
    man1 = "/usr/share/man/man1"
    pages = sorted(os.listdir(man1)) if os.path.isdir(man1) else []
    for name in pages[::7]:
        yield "man", os.path.join(man1, name)


def count(tok, text):
    return len(tok.encode(text).ids)  # special tokens included


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "weights/all-MiniLM-L6-v2"))
    ap.add_argument("--out", default=os.path.join(HERE, "out/workloads"))
    ap.add_argument("--stsb", default=os.path.join(ROOT, "../shared/data/stsb/stsb-en-test.csv"))
    ap.add_argument("--short", type=int, default=500)
    ap.add_argument("--passages", type=int, default=60)
    ap.add_argument("--long", type=int, default=24)
    ap.add_argument("--mixed", type=int, default=200)
    ap.add_argument("--lengths", default="16,32,64,128,256")
    ap.add_argument("--length-tokens", type=int, default=8192, help="tokens in each len-N workload")
    args = ap.parse_args()

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(1)

    with open(args.stsb, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    short = [clean(s) for r in rows for s in (r[0], r[1])][: args.short]

    passages, longs, seen = [], [], set()
    for kind, path in sources():
        if len(passages) >= args.passages and len(longs) >= args.long:
            break
        paras = man_paragraphs(path) if kind == "man" else doc_paragraphs(path)
        paras = [p for p in paras if prose_like(p) and p not in seen]
        taken = 0
        for p in paras:
            if len(passages) < args.passages and taken < 3 and 100 <= count(tok, p) <= 250:
                passages.append(p)
                seen.add(p)
                taken += 1
        if len(longs) < args.long:
            doc, n = [], 0
            for p in paras:
                k = count(tok, p) - 2
                if k > 300:  # a wall of text is not a document's paragraph
                    continue
                doc.append(p)
                n += k
                if n >= 600:
                    break
            if n >= 600 and count(tok, " ".join(doc)) >= 600:
                longs.append(" ".join(doc))
    if len(passages) < args.passages or len(longs) < args.long:
        sys.exit(f"workloads: found only {len(passages)} passages and {len(longs)} long documents "
                 "in this machine's documentation (install man-db and manpages?)")

    n_short, n_pass = int(args.mixed * 0.6), int(args.mixed * 0.3)
    n_long = args.mixed - n_short - n_pass
    mixed = rng.sample(short, n_short) + rng.sample(passages, n_pass) + rng.sample(longs, n_long)
    rng.shuffle(mixed)

    workloads = {"short": short, "passages": passages, "long": longs, "mixed": mixed}
    vocab = [w for w, i in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
             if len(w) >= 2 and w.isascii() and w.isalpha()]
    for n in [int(x) for x in args.lengths.split(",") if x]:
        lrng = random.Random(n)  # each length its own stream: the same texts whatever --lengths lists
        texts = []
        for _ in range(max(1, args.length_tokens // n)):
            texts.append(" ".join(lrng.choice(vocab) for _ in range(n - 2)))
        assert all(count(tok, t) == n for t in texts[:20]), f"len-{n}: a word did not stay one token"
        workloads[f"len-{n}"] = texts

    meta = {}
    for name, texts in workloads.items():
        path = os.path.join(args.out, name + ".txt")
        data = "".join(t.replace("\n", " ") + "\n" for t in texts).encode("utf-8")
        with open(path, "wb") as f:
            f.write(data)
        lens = [count(tok, t) for t in texts]
        meta[name] = {"path": path, "texts": len(texts), "tokens_untruncated": sum(lens),
                      "mean_tokens": round(sum(lens) / len(lens), 1), "max_tokens": max(lens),
                      "sha256": hashlib.sha256(data).hexdigest()}
        print(f"workloads: {name:9s} {len(texts):5d} texts, {sum(lens) / len(lens):6.1f} tokens each "
              f"(max {max(lens)}), {path}")
    with open(os.path.join(args.out, "workloads.json"), "w") as f:
        json.dump(meta, f, indent=2)


if __name__ == "__main__":
    main()
