"""Every error is a Python exception carrying ember's message; never a crash, never a
partial result."""
import json
import struct

import numpy as np
import pytest

import ember

from conftest import TINY


def test_missing_model_directory():
    with pytest.raises(FileNotFoundError, match=r"/no/such/model: model directory not found"):
        ember.Model("/no/such/model")


def test_missing_weights_file(tmp_path):
    (tmp_path / "config.json").write_text((TINY / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        ember.Model(tmp_path)


def test_malformed_weights_are_an_ember_error(tmp_path):
    for f in ("config.json", "vocab.txt", "tokenizer_config.json"):
        (tmp_path / f).write_bytes((TINY / f).read_bytes())
    header = json.dumps({"x": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 64]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(ember.EmberError) as e:
        ember.Model(tmp_path)
    assert e.value.status == "format error" and "model.safetensors" in str(e.value)


def test_unsupported_model_is_an_ember_error(tmp_path):
    for f in ("model.safetensors", "vocab.txt", "tokenizer_config.json"):
        (tmp_path / f).write_bytes((TINY / f).read_bytes())
    cfg = json.loads((TINY / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ember.EmberError, match="gpt2") as e:
        ember.Model(tmp_path)
    assert e.value.status == "unsupported"


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cuda:-1", ""])
def test_bad_device(device):
    with pytest.raises(ValueError, match="device must be cpu, cuda, cuda:N"):
        ember.Model(TINY, device=device)


def test_cuda_without_a_device():
    if ember.cuda_device_count() > 0:
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(ValueError, match="CUDA|cuda"):
        ember.Model(TINY, device="cuda")


def test_auto_without_a_device_runs_on_the_cpu():
    if ember.cuda_device_count() > 0:
        pytest.skip("this machine has a CUDA device")
    assert ember.Model(TINY, device="auto").device == "cpu"


@pytest.mark.parametrize("dtype", ["int8", "float64", "fp8"])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match="dtype must be fp32, fp16 or bf16"):
        ember.Model(TINY, device="cpu", dtype=dtype)


def test_fp16_on_the_cpu():
    with pytest.raises(ValueError, match="fp32 only"):
        ember.Model(TINY, device="cpu", dtype="fp16")


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="threads must be >= 1"):
        ember.Model(TINY, threads=0)
    with pytest.raises(TypeError, match="threads must be an int"):
        ember.Model(TINY, threads="2")
    with pytest.raises(ValueError, match="max_length 2 leaves no room"):  # ember's own check
        ember.Model(TINY, max_length=2)
    with pytest.raises(TypeError, match="device must be a str"):
        ember.Model(TINY, device=0)


def test_non_str_items_name_their_index(tiny):
    texts = ["fine"] * 10 + [3] + ["fine"]
    with pytest.raises(TypeError, match=r"sentences\[10\] is int, not str"):
        tiny.encode(texts, batch_size=4)  # the third batch: batches before it had succeeded
    with pytest.raises(TypeError, match=r"sentences\[1\] is NoneType, not str"):
        tiny.encode(["a", None])
    with pytest.raises(TypeError, match=r"sentences\[0\] is bytes"):
        tiny.encode([b"bytes"], output_value="token_embeddings")
    with pytest.raises(TypeError, match="got bytes"):
        tiny.encode(b"bytes")
    with pytest.raises(TypeError, match="got int"):
        tiny.encode(5)
    with pytest.raises(TypeError, match=r"sentences\[1\] is float"):
        tiny.tokenize(["a", 1.5])


def test_unencodable_text(tiny):
    with pytest.raises(ValueError, match=r"sentences\[1\] cannot be encoded as UTF-8"):
        tiny.encode(["ok", "lone \ud800 surrogate"])


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"output_value": "cls"}, "output_value must be one of"),
    ({"precision": "int8"}, "precision must be one of"),
    ({"normalize_embeddings": "yes"}, "normalize_embeddings must be None, True or False"),
    ({"pooling": "avg"}, "the pooling must be cls, mean, max or mean_sqrt_len"),
])
def test_bad_encode_arguments(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny.encode(["a", "b"], **kwargs)


def test_bad_low_level_calls(tiny):
    m = tiny._model
    with pytest.raises(ValueError, match="out holds 64 floats, 128 needed"):
        m.encode(["a", "b"], np.empty((1, 64), np.float32))
    with pytest.raises(TypeError, match="float32"):
        m.encode(["a"], np.empty((1, 64), np.float64))
    with pytest.raises(ValueError, match="contiguous"):
        m.encode(["a"], np.empty((2, 64), np.float32)[:, :32])
    with pytest.raises(ValueError, match="normalize must be"):
        m.encode(["a"], np.empty((1, 64), np.float32), 0, None, 7)


def test_max_seq_length_is_read_only(tiny):
    with pytest.raises(AttributeError, match="max_length="):
        tiny.max_seq_length = 16


def test_convert_to_tensor_without_torch(tiny):
    try:
        import torch  # noqa: F401
        pytest.skip("torch is installed")
    except ImportError:
        pass
    with pytest.raises(ImportError, match="needs torch"):
        tiny.encode(["a"], convert_to_tensor=True)
