"""The progress bar of a long encode: tqdm when it is installed, else one line on stderr."""
import sys
import time


class _Line:
    """A stand-in for tqdm: 'Batches: 12/40 (30%), 5.1 s' rewritten in place."""

    def __init__(self, total, desc):
        self.total, self.desc, self.n = total, desc, 0
        self.start = self.last = time.monotonic()

    def update(self, k):
        self.n += k
        now = time.monotonic()
        if now - self.last >= 0.2 or self.n >= self.total:
            self.last = now
            pct = 100 * self.n // max(self.total, 1)
            sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total} ({pct}%), {now - self.start:.1f} s")
            sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")
        sys.stderr.flush()


class _Nothing:
    def update(self, k):
        pass

    def close(self):
        pass


def progress(total, show, desc="Batches"):
    """A bar over `total` batches; show None: only on a terminal, for 8 batches or more."""
    if show is None:
        show = total >= 8 and sys.stderr.isatty()
    if not show:
        return _Nothing()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Line(total, desc)
    return tqdm(total=total, desc=desc)
