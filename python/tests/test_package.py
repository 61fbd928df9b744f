"""The installed package: its version, the library it carries, the header it is built on."""
import importlib.metadata
import re
import subprocess
from pathlib import Path

import ember
from ember import _ember

from conftest import ROOT


def test_version_is_the_headers():
    header = (ROOT / "include/ember.h").read_text()
    want = re.search(r'#define EMBER_VERSION "([^"]+)"', header).group(1)
    assert ember.__version__ == want
    assert _ember.EMBER_VERSION == want  # the C library's value, compiled into the extension
    assert importlib.metadata.version("ember") == want


def test_the_package_carries_libember():
    pkg = Path(ember.__file__).parent
    libs = sorted(p.name for p in pkg.glob("libember.so*"))
    assert libs == ["libember.so.0.1"], libs
    ldd = subprocess.run(["ldd", _ember.__file__], capture_output=True, text=True).stdout
    line = next(l for l in ldd.splitlines() if "libember" in l)
    assert str(pkg) in line, f"the extension loads {line.strip()}, not the package's copy"


def test_libember_exports_ember_symbols_only():
    lib = Path(ember.__file__).parent / "libember.so.0.1"
    nm = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True)
    names = [l.split()[-1] for l in nm.stdout.splitlines() if l.split() and l.split()[-2] in "TDBRVW"]
    assert names and all(n.startswith("ember_") for n in names), [n for n in names if not n.startswith("ember_")]


def test_the_extension_includes_the_public_header_only():
    for src in (ROOT / "python/src").glob("*.c"):
        includes = re.findall(r'#include\s+"([^"]+)"', src.read_text())
        assert includes == ["ember.h"], f"{src.name} includes {includes}: the extension uses include/ember.h only"


def test_cuda_device_count():
    n = ember.cuda_device_count()
    assert isinstance(n, int) and n >= -1
