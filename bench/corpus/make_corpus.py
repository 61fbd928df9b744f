#!/usr/bin/env python3
"""Write a large line corpus for `ember embed` benchmarks (Python standard library only).

    python3 bench/corpus/make_corpus.py --lines 1000000 --out bench/out/corpus/corpus-1m.txt [--gz]

Each line is made from the STS benchmark sentences in seven languages
(../shared/data/stsb, 19306 sentences): mostly one sentence, sometimes a short
paragraph of several, with the awkward lines a real corpus has mixed in:

    78.0%  one sentence (English 70% of the time, else de/es/fr/ja/ru/zh)
    17.0%  2-4 sentences            3.0%  5-12 sentences
     1.0%  an empty line            0.5%  invalid UTF-8 (bytes cut out of a
     0.5%  over-long: 40-80 sentences, cut by every model's maximum
                                          multi-byte character, or a stray 0xff)

The same --seed gives the same file, byte for byte, on any machine with the
same STS-B files (their sha256 and the mix are printed). Nothing here is
committed: bench/out/ is git-ignored.
"""
import argparse
import csv
import gzip
import hashlib
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STSB = os.path.join(os.path.dirname(ROOT), "shared", "data", "stsb")
LANGS = ["en", "de", "es", "fr", "ja", "ru", "zh"]


def load_sentences(stsb):
    by_lang, digest = {}, hashlib.sha256()
    for lang in LANGS:
        path = os.path.join(stsb, f"stsb-{lang}-test.csv")
        with open(path, "rb") as f:
            digest.update(f.read())
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        by_lang[lang] = [s.replace("\n", " ").strip() for r in rows for s in r[:2] if s.strip()]
    return by_lang, digest.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gz", action="store_true", help="gzip the output (the name gets .gz)")
    ap.add_argument("--stsb", default=STSB, help="folder of stsb-<lang>-test.csv (default: %(default)s)")
    a = ap.parse_args()
    try:
        by_lang, digest = load_sentences(a.stsb)
    except OSError as e:
        sys.exit(f"make_corpus: {e}: the STS-B files are needed (see ../shared/data/stsb/README.md)")
    rnd = random.Random(a.seed)

    def sentence():
        lang = "en" if rnd.random() < 0.7 else rnd.choice(LANGS[1:])
        return rnd.choice(by_lang[lang])

    def para(lo, hi):
        return " ".join(sentence() for _ in range(rnd.randint(lo, hi)))

    out = a.out + (".gz" if a.gz and not a.out.endswith(".gz") else "")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    f = gzip.open(out, "wb", compresslevel=6) if a.gz else open(out, "wb")
    counts = dict(one=0, short=0, long=0, empty=0, invalid=0, overlong=0)
    with f:
        for _ in range(a.lines):
            k = rnd.random()
            if k < 0.78:
                line, kind = sentence().encode(), "one"
            elif k < 0.95:
                line, kind = para(2, 4).encode(), "short"
            elif k < 0.98:
                line, kind = para(5, 12).encode(), "long"
            elif k < 0.99:
                line, kind = b"", "empty"
            elif k < 0.995:
                b = bytearray(sentence().encode())
                multi = [i for i, c in enumerate(b) if c >= 0xC0]
                if multi:  # cut a multi-byte character after its lead byte
                    i = rnd.choice(multi)
                    del b[i + 1:i + 2]
                else:
                    b.insert(rnd.randrange(len(b) + 1), 0xFF)
                line, kind = bytes(b), "invalid"
            else:
                line, kind = para(40, 80).encode(), "overlong"
            counts[kind] += 1
            f.write(line + b"\n")
    print(f"{out}: {a.lines} lines, seed {a.seed}; " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"STS-B files sha256 {digest}")


if __name__ == "__main__":
    main()
