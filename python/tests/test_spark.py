"""The Embedder class as Spark's predict_batch_udf (README.md, "Many machines"), on a
local Spark (local[2]) on this machine's Java."""
import os
import shutil
import sys

import numpy as np
import pytest

from conftest import REQUIRE, TINY, assert_same_vectors

if REQUIRE:
    import pyspark  # noqa: F401  (CI installs it: missing is a failure there)
pytest.importorskip("pyspark")
if shutil.which("java") is None:
    if REQUIRE:
        pytest.fail("no java on the PATH for pyspark (EMBER_REQUIRE_WEIGHTS=1)")
    pytest.skip("no java on the PATH", allow_module_level=True)


def test_predict_batch_udf(tiny):
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run this interpreter
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import SparkSession
    from pyspark.sql.types import ArrayType, FloatType

    model_dir = str(TINY)

    def make_predict_fn():  # defined here so that Spark pickles it whole, not by module
        from ember.ray import Embedder
        return Embedder(model_dir, threads=1).embed

    spark = (SparkSession.builder.master("local[2]").appName("ember-test")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "1g").getOrCreate())
    try:
        texts = [f"text number {i} about the quick brown fox" for i in range(300)] + ["", None]
        df = spark.createDataFrame(list(enumerate(texts)), "id long, text string").repartition(3)
        embed = predict_batch_udf(make_predict_fn, return_type=ArrayType(FloatType()), batch_size=64)
        rows = df.withColumn("embedding", embed("text")).orderBy("id").collect()
    finally:
        spark.stop()
    assert [r.id for r in rows] == list(range(len(texts)))
    assert np.isnan(rows[-1].embedding).all()  # the null text: a row of NaN (numpy has no null)
    got = np.array([r.embedding for r in rows[:-1]], dtype=np.float32)
    want = tiny.encode(texts[:-1], batch_size=64)
    assert_same_vectors(got, want, tiny.info["batch_invariant"], "Spark against Model.encode")
