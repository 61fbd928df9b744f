#!/usr/bin/env python3
"""Checks of the source tree's shape that a compiler does not make (run by
tests/script_source.sh, so by CI):

1. Layers (src/README.md): a file may include only headers of its own layer
   or of the layers it sits on; an include that points up a layer fails.
   The Python extension (python/src) sits on the public API alone.
2. Function length: no function in src/, kernels/ or python/src over 100 lines unless
   the comment just above it gives the reason, with "long:".

Prints every violation with its file and line; exit status 1 if any.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# What each folder may include, besides itself and the public include/ember.h.
# The pipeline and the server sit on the public API: they may not reach into
# the model or the backends. The programs (cli) likewise.
ALLOWED = {
    "common": set(),
    "tokenizer": {"common"},
    "model": {"common", "tokenizer"},
    "backend": {"common", "model", "kernels"},
    "kernels": {"common", "model", "backend"},
    "api": {"common", "tokenizer", "model", "backend"},
    "pipeline": {"common"},
    # search reads what the pipeline writes and scores on the CPU backend's kernels
    "search": {"common", "pipeline", "backend"},
    "server": {"common"},
    "cli": {"common"},
    "python": set(),
}

MAX_LINES = 100


def layer_of(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] in ("kernels", "python"):
        return rel.parts[0]
    if rel.parts[0] == "src":
        return "api" if len(rel.parts) == 2 else rel.parts[1]
    raise ValueError(path)


def resolve(including: pathlib.Path, name: str):
    """The file an #include "name" in `including` finds, as the build's
    include paths (the file's folder, src/, the repository root) do."""
    for base in (including.parent, ROOT / "src", ROOT):
        p = (base / name).resolve()
        if p.is_file():
            return p
    return None


def check_layers(files):
    errors = []
    for f in files:
        mine = layer_of(f)
        for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            target = resolve(f, m.group(1))
            if target is None:
                # not a file of the tree (generated, or a system header in quotes)
                continue
            rel = target.relative_to(ROOT)
            if rel.parts[0] == "include":
                continue
            if rel.parts[0] not in ("src", "kernels"):
                errors.append(f"{f.relative_to(ROOT)}:{n}: includes {rel}, outside src/ and kernels/")
                continue
            theirs = layer_of(target)
            if theirs != mine and theirs not in ALLOWED[mine]:
                errors.append(f"{f.relative_to(ROOT)}:{n}: the {mine} layer includes {rel} of the {theirs} "
                              f"layer (allowed: {', '.join(sorted(ALLOWED[mine] | {mine})) })")
    return errors


FUNC_START = re.compile(r"^[A-Za-z_][\w\s\*\(\),\[\]]*\)\s*(const\s*)?\{\s*$")


def check_lengths(files):
    errors = []
    for f in files:
        lines = f.read_text(errors="replace").splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            # a definition: its signature starts at column 0 and the line
            # that ends it opens the body
            one_line = "{" in line and line.count("{") == line.count("}")
            if line and not one_line and not line[0].isspace() and not line.startswith(("#", "/", "*", "}", "typedef", "struct",
                                                                          "enum", "union", "static const",
                                                                          "const ")) and "(" in line:
                j = i
                while j < len(lines) and not lines[j].rstrip().endswith("{") and not lines[j].rstrip().endswith(";"):
                    j += 1
                if j < len(lines) and lines[j].rstrip().endswith("{") and "=" not in lines[i].split("(")[0]:
                    k = j + 1
                    while k < len(lines) and lines[k] != "}":
                        k += 1
                    length = k - i + 1
                    if length > MAX_LINES:
                        # the comment block just above the signature
                        c = i - 1
                        while c >= 0 and lines[c].startswith("template"):
                            c -= 1
                        comment = []
                        while c >= 0 and (lines[c].startswith(("/*", " *", "//")) or lines[c].endswith("*/")):
                            comment.append(lines[c])
                            c -= 1
                        if "long:" not in " ".join(comment):
                            name = re.search(r"(\w+)\s*\(", line)
                            errors.append(f"{f.relative_to(ROOT)}:{i + 1}: {name.group(1) if name else '?'} is "
                                          f"{length} lines (over {MAX_LINES}; split it, or say why above it "
                                          f"with 'long:')")
                    i = k + 1
                    continue
            i += 1
    return errors


def main():
    files = sorted(p for p in (ROOT / "src").rglob("*") if p.suffix in (".c", ".h", ".inc"))
    files += sorted(p for p in (ROOT / "kernels").rglob("*") if p.suffix in (".cu", ".cuh", ".inc", ".h"))
    files += sorted(p for p in (ROOT / "python/src").rglob("*") if p.suffix in (".c", ".h"))
    errors = check_layers(files) + check_lengths(files)
    for e in errors:
        print(e)
    print(f"check_source: {len(files)} files, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
