#!/usr/bin/env python3
"""Dump what Hugging Face `tokenizers` does to every Unicode code point.

Writes tests/data/tokenizer/codepoints.tsv, which tests/test_unicode.c compares,
code point by code point, with ember's normalizer and pre-tokenizer. tokenizers
carries its own (older) Unicode tables, so this is the ground truth ember's
utf8proc-based classes are checked against.

Format (tab separated, '#' comments):
  R <first> <last> <clean> <cjk> <pretok>   a run of code points with the same
        classes. clean: k(ept) r(emoved) s(pace); cjk: 0/1 (spaces put around);
        pretok: n(one) p(unctuation, isolated) w(hitespace, split on)
  S <cp> <hex...>   BertNormalizer(strip_accents=True) of the code point alone,
        where it is not the code point itself ("-" for nothing)
  L <cp> <hex...>   BertNormalizer(lowercase=True) likewise
Code points are hex. Surrogates are skipped (not valid in UTF-8).
"""
import sys
from pathlib import Path

import tokenizers
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

clean = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
cjk = BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
strip = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
lower = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
pre = BertPreTokenizer()


def hexs(s):
    return " ".join("%X" % ord(ch) for ch in s) if s else "-"


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/data/tokenizer/codepoints.tsv"
    rows, runs = [], []
    run = None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        r = clean.normalize_str(c)
        k = "k" if r == c else ("r" if r == "" else ("s" if r == " " else None))
        assert k is not None, (hex(cp), r)
        j = "1" if cjk.normalize_str(c) == " " + c + " " else "0"
        words = [w for w, _ in pre.pre_tokenize_str("a" + c + "a")]
        p = {3: "p", 2: "w", 1: "n"}[len(words)]
        if p == "n":
            assert words == ["a" + c + "a"], (hex(cp), words)
        sig = (k, j, p)
        if run and run[1] == cp - 1 and run[2] == sig:
            run[1] = cp
        else:
            run = [cp, cp, sig]
            runs.append(run)
        s = strip.normalize_str(c)
        if s != c:
            rows.append("S\t%X\t%s" % (cp, hexs(s)))
        lo = lower.normalize_str(c)
        if lo != c:
            rows.append("L\t%X\t%s" % (cp, hexs(lo)))
    with open(out, "w", encoding="ascii") as f:
        f.write("# tokenizers %s: BertNormalizer / BertPreTokenizer on every code point\n" % tokenizers.__version__)
        f.write("# written by tools/dump_tokenizer_unicode.py; format in its docstring\n")
        for a, b, (k, j, p) in runs:
            f.write("R\t%X\t%X\t%s\t%s\t%s\n" % (a, b, k, j, p))
        for r in rows:
            f.write(r + "\n")
    print("wrote %s: %d runs, %d mappings" % (out, len(runs), len(rows)))


if __name__ == "__main__":
    main()
