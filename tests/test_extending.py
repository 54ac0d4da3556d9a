"""docs/extending.md runs as written, and a method registered there reaches the experiments and the
benchmark's method list without any other file changing."""

import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgt import data, experiments, models, saliency

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"


@pytest.fixture
def clean_registries():
    """Whatever a test registers is removed afterwards."""
    registries = (saliency.REGISTRY, data.REGISTRY, models.REGISTRY, experiments.REGISTRY)
    saved = [dict(r) for r in registries]
    yield
    for registry, entries in zip(registries, saved):
        registry.clear()
        registry.update(entries)


def test_the_extending_page_runs(clean_registries, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    exec(compile("\n".join(blocks), str(DOC), "exec"), namespace)
    assert "SGT test accuracy over seeds [0]" in capsys.readouterr().out
    for name, registry in (("GradSquared", saliency.REGISTRY), ("two_bumps", data.REGISTRY),
                           ("tiny_mlp", models.REGISTRY), ("bumps", experiments.REGISTRY)):
        assert name in registry


def test_a_registered_method_runs_through_the_experiment_and_the_benchmark(clean_registries, tmp_path):
    def doubled_gradient(f):
        grad = saliency.gradient(f)
        return lambda x, target, *, key=None: 2 * grad(x, target)

    saliency.register("Doubled", saliency.Method(doubled_gradient, "2 × gradient"))
    # the time-series runner: trained, attributed and scored like the paper's methods
    settings = experiments.timeseries.Settings(epochs=1, patience=1)
    (record,) = experiments.timeseries.run(["Middle_Box"], ["tcn"], [0], settings=settings,
                                           methods=["Grad", "Doubled"], out=tmp_path, progress=False)
    for regime in record["regimes"].values():
        # |2 g| and |g| rank the cells alike: the same AUP / AUR
        assert regime["scores"]["Doubled"]["aup"] == pytest.approx(regime["scores"]["Grad"]["aup"], rel=1e-5)
    # the benchmark's method list, and its call of our side
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import saliency_speed
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert "Doubled" in saliency_speed.benchmark_methods()
    model = models.get("mnist_cnn", num_classes=10)
    x = jnp.ones((2, 28, 28, 1))
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    setting = saliency_speed.Setting(steps=2, samples=2, sigma=0.1, chunk_points=None)
    attribute = saliency_speed.ours_attribution("Doubled", model, setting)
    target = jnp.array([1, 2])
    out = attribute(variables, x, target, jax.random.PRNGKey(1), jnp.zeros_like(x), jnp.zeros((2, 28, 28, 1)))
    grad = saliency.gradient(lambda z: model.apply(variables, z, train=False))(x, target)
    np.testing.assert_allclose(out, 2 * grad, rtol=1e-6)


def test_registries_refuse_duplicates_and_unknown_names(clean_registries):
    with pytest.raises(ValueError, match="already registered"):
        saliency.register("Grad", saliency.Method(saliency.gradient, "again"))
    with pytest.raises(ValueError, match="unknown saliency method 'Nope'"):
        saliency.build("Nope", lambda x: x)
    with pytest.raises(ValueError, match="uses: expected some of"):
        saliency.Method(saliency.gradient, "bad", uses=("reference",))
    with pytest.raises(ValueError, match="already registered"):
        data.register("middle", data.REGISTRY["middle"])
    with pytest.raises(ValueError, match="kind: expected one of"):
        data.Entry(data.REGISTRY["middle"].load, "audio", "", data.REGISTRY["middle"].defaults)
    with pytest.raises(ValueError, match="already registered"):
        experiments.register("timeseries", experiments.REGISTRY["timeseries"])


def test_build_passes_the_context_only_to_methods_that_declare_it():
    f = lambda x: x.reshape(len(x), -1) @ jnp.ones((4, 2))  # noqa: E731
    x = jnp.full((2, 4), 2.0)
    target = jnp.array([0, 1])
    ig = saliency.build("IG", f, baseline=1.0, baselines=jnp.zeros((3, 4)), steps=4)(x, target)
    np.testing.assert_allclose(ig, np.ones((2, 4)))  # (x − 1) · 1, the scalar baseline broadcast
    grad = saliency.build("Grad", f, baseline=1.0, baselines=jnp.zeros((3, 4)))(x, target)
    np.testing.assert_allclose(grad, np.ones((2, 4)))
