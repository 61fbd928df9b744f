#!/usr/bin/env python3
"""Write the tokenizer conformance references: Hugging Face's ids for real and stress text.

    python tools/make_tokenizer_refs.py       (tokenizers, transformers; see tools/README.md)

Needs weights/all-MiniLM-L6-v2 (weights/fetch.sh) for the uncased vocabulary (bert-base-
uncased's, through the model's own tokenizer.json). The cased vocabulary is trained here
with `tokenizers` on the STS-B text of all seven languages (a real cased WordPiece
vocabulary, multilingual, so that accents and scripts reach WordPiece) and committed as
tests/data/tokenizer/cased-vocab.txt; it is loaded back through transformers' AutoTokenizer
from a directory with do_lower_case=false, as a user's cased model would be.

With weights/all-mpnet-base-v2 (weights/fetch.sh all-mpnet-base-v2), also MPNet's tokenizer
(its tokenizer.json: the same normaliser and WordPiece, RobertaProcessing, added tokens with
lstrip) as "mpnet", with its tokenizer files copied to tests/data/tokenizer/mpnet/
(tokenizer.json gzipped). `--only NAME` (uncased, cased, mpnet) writes one vocabulary's files.

Writes, in tests/data/tokenizer/:
  stsb-<vocab>.txt.gz    one line per STS-B sentence (files in name order, each row's
                         sentence1 then sentence2): the ids with [CLS]/[SEP], no truncation
  stress-<vocab>.jsonl.gz one case per line: {"text"|"hex", "pair"?, "max_length"?, "left"?,
                         "ids", "type_ids", "offsets" (byte offsets), "special"}
"""
import csv
import gzip
import json
import random
import sys
import tempfile
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/data/tokenizer"
STSB = ROOT.parent / "shared/data/stsb"
MINILM = ROOT / "weights/all-MiniLM-L6-v2"
MPNET = ROOT / "weights/all-mpnet-base-v2"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def stsb_sentences():
    out = []
    for path in sorted(STSB.glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                out.extend([row[0], row[1]])
    return out


def train_cased_vocab(sentences):
    wp = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    wp.train_from_iterator(sentences, vocab_size=8000, min_frequency=2, limit_alphabet=3000,
                           special_tokens=SPECIALS, wordpieces_prefix="##", show_progress=False)
    vocab = sorted(wp.get_vocab().items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    (OUT / "cased-vocab.txt").write_text("".join(t + "\n" for t, _ in vocab), encoding="utf-8")


def load_cased():
    d = Path(tempfile.mkdtemp())
    (d / "vocab.txt").write_bytes((OUT / "cased-vocab.txt").read_bytes())
    (d / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer",
                                                         "model_max_length": 512}))
    tok = AutoTokenizer.from_pretrained(str(d))
    t = tok.backend_tokenizer
    assert t.normalizer.lowercase is False, t.normalizer
    return t


def load_uncased():
    t = Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    t.no_truncation()
    t.no_padding()
    # the vocab.txt + tokenizer_config.json route must agree with tokenizer.json
    alt = AutoTokenizer.from_pretrained(str(MINILM)).backend_tokenizer
    return t


def load_mpnet():
    t = Tokenizer.from_file(str(MPNET / "tokenizer.json"))
    t.no_truncation()
    t.no_padding()
    return t


def stress_cases(rng):
    s = []
    add = lambda text, **kw: s.append(dict(text=text, **kw))
    for t in ["", " ", "   \t\n ", "\n", "\u3000", "\u00a0\u2003", "\u2028\u2029", "\x00", "\x00abc\x01def",
              "a\x0bb\x0cc", "tab\tsep", "cr\r\nlf", "\x7f\x85x", "zero\u200bwidth", "zwj\u200dx", "bom\ufeffx",
              "rep\ufffdlace", "soft\u00adhyphen", "rtl \u202eabc\u202c", "\U000e0001tag\U000e0041",
              "\ue000\uf8ff private", "\U000f0000\U0010fffd", "\ufffe\uffff nonchar", "\u0378\u0379 unassigned",
              "\u0890\u08e2\u110cd", "\U00013430 egyptian", "\u166d\u2e43\u2e52 punct",
              "Café Noël Ångström naïve façade coöperate", "ÀÉÎÕÜ àéîõü ÿŸ", "ǅ ǈ ǋ Ǆ", "İstanbul ıi İİ",
              "ẞ ß SS", "Σίσυφος ΣΑΣ ς σ", "ﬁ ﬂ ﬃ ﬄ", "Ⅻ ① ² ½ ㎏", "e\u0301 e\u0300\u0316 a\u0316\u0301",
              "\u0301 starts with a mark", "a\u0308\u0301\u0323", "ḉ \u1e9b\u0323 ǖ", "\u0f73\u0f75\u0f81",
              "한국어 텍스트", "\u1100\u1161\u11a8", "Tiếng Việt có dấu", "हिन्दी नमस्ते", "ภาษาไทย",
              "العربية مرحبا مَرْحَبًا", "שָׁלוֹם עולם", "Ελληνικά ΆΈΉ", "Привет мир Ёё Й",
              "Հայերեն", "ქართული", "አማርኛ", "தமிழ்", "日本語のテキスト、カタカナ。ひらがな！", "ｶﾀｶﾅ ﾊﾟ",
              "ＡＢＣ１２３！", "𠀀𠀁 ext B", "\U0002b81f\U0002b820\U0002b91f\U0002b920\U0002ceaf\U0002ceb0",
              "\U00030000 ext G", "\uf900\ufaff \U0002f800\U0002fa1d", "中文和English混合text",
              "😀 👍🏽 👨‍👩‍👧‍👦 🇺🇸 ❤️ 🫠 🥲", "I ❤️ NY", "🏳️‍🌈", "hello,world!foo?bar.baz",
              "“quotes” ‘single’ «guillemets» —dash– …", "¿Qué? ¡Sí!", "a/b\\c|d~e^f`g", "$100 €50 £3 ¥4",
              "x+y=z<w>v", "#hashtag @mention", "email@example.com http://example.com/path?q=1&r=2",
              "3.14 1,000,000 10:30", "[SEP]", "a[SEP]b", "[CLS] x [SEP]", "[sep] lower", "[SEP", "[[SEP]]",
              "[MASK][MASK]", "[PAD] [UNK]", "[ SEP ]", "x [UNK] y", "é[SEP]é", "[SEP]" * 3,
              "a" * 100, "a" * 101, "ab" * 50, "ab" * 50 + "a", "é" * 100, "é" * 101, "e\u0301" * 100,
              "e\u0301" * 50, "supercalifragilisticexpialidocious" * 3, "x" * 99 + "!", "1" * 150,
              "qzxqzxqzx", "a😀b", "unaffable antidisestablishmentarianism", "don't can't won't",
              "The QUICK Brown fOX", "  leading and trailing  ", "multiple   spaces\t\ttabs"]:
        add(t)
    words = ("the of and to in is was he for it with as his on be at by had are but from or have an they "
             "which one you were all we her she there been if more when will would who so no über naïve "
             "日本 данные ελληνικά 😀 co-operate e-mail U.S.A. 3.5%").split()
    for n in (300, 2000):
        add(" ".join(rng.choice(words) for _ in range(n)))
    add("x" * 10000)
    for n, ml in ((300, 16), (300, 128), (2000, 512), (50, 3)):
        text = " ".join(rng.choice(words) for _ in range(n))
        add(text, max_length=ml)
        add(text, max_length=ml, left=True)
    ranges = [(0x20, 0x7e), (0xa0, 0x24f), (0x300, 0x36f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x6ff),
              (0x900, 0x97f), (0xe00, 0xe7f), (0x1100, 0x11ff), (0x2000, 0x206f), (0x2e00, 0x2e7f),
              (0x3000, 0x30ff), (0x4e00, 0x9fff), (0xac00, 0xd7a3), (0xfe00, 0xffff), (0x1f300, 0x1faff),
              (0x20000, 0x2a6df), (0x2b800, 0x2b930), (0xe0000, 0xe007f)]
    def rand_cp():
        r = rng.random()
        if r < 0.45:
            a, b = rng.choice(ranges)
            return rng.randint(a, b)
        if r < 0.75:
            c = rng.randint(0, 0xffff)
        else:
            c = rng.randint(0, 0x10ffff)
        return c if not 0xd800 <= c <= 0xdfff else 0x41
    for _ in range(400):
        add("".join(chr(rand_cp()) if rng.random() > 0.15 else " " for _ in range(rng.randint(1, 40))))
    sents = stsb_sentences()
    for i in range(40):
        a, b = rng.choice(sents), rng.choice(sents)
        add(a, pair=b)
        ml = rng.choice([8, 12, 16, 24, 32])
        add(a + " " + rng.choice(sents), pair=b, max_length=ml, left=rng.random() < 0.5)
        add(b, pair=a + " " + a, max_length=ml)
    add("", pair="")
    add("short", pair=" ".join(["long"] * 40), max_length=10)
    for raw in [b"abc\xff", b"\xc3\x28", b"\xe2\x82", b"\xe2\x82 x", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80\xf0\x9f",
                b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\x80\x80abc", b"caf\xe9 au lait",
                b"\xe6\x97\xa5\xff\xe6\x9c\xac", b"\xfe\xff", b"ok\xc3", b"[SEP\xff]", b"\xc3\xa9\xcc"]:
        s.append(dict(hex=raw.hex()))
    # MPNet's (RoBERTa-style) added tokens: <mask> takes the space before it (lstrip), <unk> is
    # matched after normalisation; plain text to a BERT vocabulary
    for t in ["<mask>", "a <mask> b", "a<mask>b", "   <mask>   x", "\t<mask>\n<mask>", "<s></s><pad><unk>",
              "<MASK> <Mask> <unk> <UNK> <Unk>", "x [UNK] <unk> y", "é<mask>é", "<mask><mask> <mask>",
              "< mask > <mask", "\u00a0<mask>", "\u3000<mask>\u3000"]:
        add(t)
    add("a <mask> b", pair="<s> c </s>")
    return s


def encode_case(tok, case):
    text = bytes.fromhex(case["hex"]).decode("utf-8", "replace") if "hex" in case else case["text"]
    pair = case.get("pair")
    if "max_length" in case:
        tok.enable_truncation(case["max_length"], direction="left" if case.get("left") else "right")
    else:
        tok.no_truncation()
    enc = tok.encode(text, pair) if pair is not None else tok.encode(text)
    out = dict(case)
    out["ids"] = enc.ids
    out["type_ids"] = enc.type_ids
    out["special"] = enc.special_tokens_mask
    if "hex" not in case:
        # Python's offsets count characters; ember's count bytes
        def byte_offsets(seq_text, a, b):
            return [len(seq_text[:a].encode("utf-8")), len(seq_text[:b].encode("utf-8"))]
        offs = []
        for (a, b), seq in zip(enc.offsets, enc.sequence_ids):
            src = text if seq in (0, None) else pair
            offs.append(byte_offsets(src, a, b))
        out["offsets"] = offs
    return out


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    sents = stsb_sentences()
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    if only in (None, "cased") and ("--keep-vocab" not in sys.argv or not (OUT / "cased-vocab.txt").exists()):
        train_cased_vocab(sents)
    loaders = {"uncased": load_uncased, "cased": load_cased}
    if MPNET.exists() or only == "mpnet":
        loaders["mpnet"] = load_mpnet
    toks = {name: load() for name, load in loaders.items() if only in (None, name)}
    if "mpnet" in toks:  # the tokenizer files themselves, so that the checks need not the 438 MB model
        (OUT / "mpnet").mkdir(exist_ok=True)
        with gzip.GzipFile(OUT / "mpnet/tokenizer.json.gz", "wb", compresslevel=9, mtime=0) as f:
            f.write((MPNET / "tokenizer.json").read_bytes())
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            (OUT / "mpnet" / name).write_bytes((MPNET / name).read_bytes())
    cases = stress_cases(random.Random(1126))
    for name, tok in toks.items():
        tok.no_truncation()
        with gzip.GzipFile(OUT / ("stsb-%s.txt.gz" % name), "wb", mtime=0) as f:
            for enc in tok.encode_batch(sents):
                f.write((" ".join(map(str, enc.ids)) + "\n").encode())
        with gzip.GzipFile(OUT / ("stress-%s.jsonl.gz" % name), "wb", mtime=0) as f:
            for c in cases:
                f.write((json.dumps(encode_case(tok, c), ensure_ascii=False) + "\n").encode("utf-8"))
    print("wrote %d STS-B sentences and %d stress cases per vocabulary to %s" % (len(sents), len(cases), OUT))


if __name__ == "__main__":
    main()
