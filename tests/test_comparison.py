"""`sgt.experiments.compare` (what `sgt train` runs): its compute-dtype option."""

import jax.numpy as jnp
import pytest

from sgt import models
from sgt.experiments import comparison


def test_bfloat16_compute_is_recorded_and_used(monkeypatch):
    built = []
    real_get = models.get
    monkeypatch.setattr(models, "get", lambda name, **kw: built.append(kw) or real_get(name, **kw))
    report = comparison.compare("middle", methods=["standard"], epochs=1, dtype="bfloat16", progress=False)
    assert report["dtype"] == "bfloat16" and built[0]["dtype"] == jnp.bfloat16
    assert 0.0 <= report["results"]["standard"]["test_accuracy"] <= 1.0


def test_unknown_dtype_is_rejected():
    with pytest.raises(ValueError, match="dtype: expected one of"):
        comparison.compare("middle", dtype="float16")
