"""Threads sharing one Model, as include/ember.h allows: what each gets is what one
thread gets."""
import threading

import numpy as np
import pytest


def run_threads(n, fn):
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def work(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as e:  # reported below, never lost in a thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    assert not errors, errors
    return results


def test_four_threads_encode_as_one(minilm, stsb_sentences):
    texts = stsb_sentences[:96]
    want = minilm.encode(texts, batch_size=16)
    results = run_threads(4, lambda i: minilm.encode(texts, batch_size=16))
    for r in results:
        assert np.array_equal(r, want)


def test_threads_mixing_calls(minilm, stsb_sentences):
    texts = stsb_sentences[:40]
    want_vec = minilm.encode(texts, batch_size=8)
    want_tok = minilm.encode(texts[:8], output_value="token_embeddings")
    want_ids = [t["ids"] for t in minilm.tokenize(texts)]

    def work(i):
        if i % 3 == 0:
            return np.array_equal(minilm.encode(texts, batch_size=8), want_vec)
        if i % 3 == 1:
            got = minilm.encode(texts[:8], output_value="token_embeddings")
            return all(np.array_equal(a, b) for a, b in zip(got, want_tok))
        return [t["ids"] for t in minilm.tokenize(texts)] == want_ids

    assert all(run_threads(6, work))


def test_an_error_on_one_thread_stays_there(tiny):
    want = tiny.encode(["a b c"] * 20)

    def work(i):
        if i % 2:
            for _ in range(20):
                with pytest.raises(TypeError, match=r"sentences\[1\]"):
                    tiny.encode(["a", 1])
            return True
        return all(np.array_equal(tiny.encode(["a b c"] * 20), want) for _ in range(5))

    assert all(run_threads(4, work))
