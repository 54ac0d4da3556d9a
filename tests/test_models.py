"""Model zoo: shapes, parameter counts from the reference layer shapes, causality, padding invariance,
determinism, bfloat16 compute, the VGG-16 weight loader, and SGT steps on tiny batches.

Compilation dominates the run time on CPU, so: output shapes and parameter counts of every model
come from `jax.eval_shape` (traced, not compiled); numerical tests run on tiny configurations of the
models in COMPUTED (ResNet-18/32/56 share their blocks with ResNet-20; VGG-16's convolution layout is
checked against PyTorch on one layer); keys use the "rbg" generator, whose random draws compile ~5x
faster than threefry's.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sgt import models, train
from sgt.models import resnet, timeseries, transformer, vgg

# name -> (options, one input's shape, input dtype). Tiny inputs; the Transformer gets 1 layer and
# FF 16 here (the 6-layer default is covered by the parameter count).
TINY = {
    "mnist_cnn": ({}, (12, 12, 1), np.float32),
    "small_cnn": ({}, (8, 8, 1), np.float32),
    "resnet18": ({}, (16, 16, 3), np.float32),
    "resnet20": ({}, (32, 32, 3), np.float32),
    "resnet32": ({}, (16, 16, 3), np.float32),
    "resnet56": ({}, (8, 8, 3), np.float32),
    "vgg16": ({"head": (16, 8)}, (32, 32, 3), np.float32),
    "bilstm": ({"vocab_size": 50, "embed_dim": 8, "hidden": 8}, (12,), np.int32),
    "lstm": ({}, (10, 5), np.float32),
    "lstm_cell_attention": ({}, (10, 5), np.float32),
    "tcn": ({}, (10, 5), np.float32),
    "transformer": ({"layers": 1, "ff": 16}, (10, 5), np.float32),
}
COMPUTED = ["mnist_cnn", "resnet20", "bilstm", "lstm", "lstm_cell_attention", "tcn", "transformer"]
CLASSES = 3


def tiny_input(name, batch, seed=0):
    _, shape, dtype = TINY[name]
    rng = np.random.default_rng(seed)
    if dtype == np.int32:
        return rng.integers(1, TINY[name][0]["vocab_size"], size=(batch, *shape)).astype(np.int32)
    return rng.normal(size=(batch, *shape)).astype(np.float32)


def tiny_model(name, **extra):
    return models.get(name, num_classes=CLASSES, **TINY[name][0], **extra)


def key(seed):
    """A typed "rbg" key (also for the train steps' dropout and fill draws): compiles much faster than threefry."""
    return jax.random.key(seed, impl="rbg")


def random_params(module, *args, scale=0.5, seed=0):
    """Parameters of `module` with `init`'s structure but i.i.d. N(0, scale²) values (nothing compiled)."""
    shapes = jax.eval_shape(lambda: module.init(key(0), *args)["params"])
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(scale=scale, size=s.shape), s.dtype), shapes)


@functools.lru_cache(maxsize=None)
def initialised(name):
    """(model, init_apply, variables, x, float32 logits) for the tiny configuration, key 0.

    init_apply(key, x) -> (variables, inference logits), compiled once (`init_with_output` runs the
    inference forward pass that creates the variables, so its output is `apply`'s).
    """
    model, x = tiny_model(name), tiny_input(name, 2)

    @jax.jit
    def init_apply(k, x):
        logits, variables = model.init_with_output(k, x, train=False)
        return {c: v for c, v in variables.items() if c in ("params", "batch_stats")}, logits

    variables, logits = init_apply(key(0), x)
    return model, init_apply, variables, x, logits


def test_registry_names():
    assert set(models.REGISTRY) == set(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_output_shape_and_float32_logits(name):
    """Shapes from `jax.eval_shape`: float32 in inference mode, bfloat16 compute in training mode."""
    x = tiny_input(name, 2)
    for dtype, train_mode in ((jnp.float32, False), (jnp.bfloat16, True)):
        model = tiny_model(name, dtype=dtype)
        variables = jax.eval_shape(lambda: model.init(key(0), x, train=False))
        assert {leaf.dtype for leaf in jax.tree.leaves(variables["params"])} == {jnp.dtype(jnp.float32)}
        out = jax.eval_shape(lambda v: model.apply(v, x, train=train_mode, rngs={"dropout": key(1)},
                                                   mutable=["batch_stats"])[0], variables)
        assert out.shape == (2, CLASSES) and out.dtype == jnp.float32


@pytest.mark.parametrize("name", COMPUTED)
def test_bfloat16_compute_returns_float32_logits_close_to_float32(name):
    _, _, variables, x, logits = initialised(name)
    assert np.isfinite(logits).all()
    bf16 = tiny_model(name, dtype=jnp.bfloat16)
    out = jax.jit(functools.partial(bf16.apply, train=False))(variables, x)
    assert out.dtype == jnp.float32 and out.shape == logits.shape
    assert not np.array_equal(out, logits), "the compute dtype must actually be used"
    scale = float(np.abs(logits).max()) + 1e-3
    np.testing.assert_allclose(out, logits, atol=0.05 * scale)


@pytest.mark.parametrize("name", COMPUTED)
def test_same_key_same_params_and_outputs(name):
    _, init_apply, variables, x, logits = initialised(name)
    again, logits_again = init_apply(key(0), x)
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(logits_again, logits)
    other = init_apply(key(1), x)[0]["params"]
    assert any(not np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(variables["params"]), jax.tree.leaves(other)))


# ---------------------------------------------------------------- parameter counts from layer shapes

def conv(k, c_in, c_out, bias=False):
    return k * k * c_in * c_out + (c_out if bias else 0)


def bn(c):
    return 2 * c  # scale and shift; running statistics are not parameters


def linear(n_in, n_out):
    return n_in * n_out + n_out


def resnet18_count(classes):
    count = conv(3, 3, 64) + bn(64)
    c_in = 64
    for width in (64, 128, 256, 512):
        for block in range(2):
            count += conv(3, c_in, width) + bn(width) + conv(3, width, width) + bn(width)
            if c_in != width:
                count += conv(1, c_in, width) + bn(width)  # projection shortcut
            c_in = width
    return count + linear(512, classes)


def cifar_resnet_count(depth, classes):
    n = (depth - 2) // 6
    count = conv(3, 3, 16) + bn(16)
    c_in = 16
    for width in (16, 32, 64):
        for _ in range(n):  # option-A shortcuts have no parameters
            count += conv(3, c_in, width) + bn(width) + conv(3, width, width) + bn(width)
            c_in = width
    return count + linear(64, classes)


def vgg16_count(classes):
    widths = [c for c in vgg.VGG16_CONFIG if c != "M"]
    features = sum(conv(3, c_in, c_out, bias=True) for c_in, c_out in zip([3] + widths[:-1], widths))
    return features + linear(25088, 4048) + linear(4048, 2048) + linear(2048, classes)


def lstm_count(f, h, biases=1):
    return 4 * (f * h + h * h) + biases * 4 * h


def tcn_count(f, channels=(5, 5, 50), k=4, classes=2):
    count, c_in = 0, f
    for c in channels:
        count += (k * c_in * c + 2 * c) + (k * c * c + 2 * c)  # weight-norm v, g and bias, twice
        if c_in != c:
            count += linear(c_in, c)  # 1×1 residual conv
        c_in = c
    return count + linear(c_in, classes)


def transformer_count(d, layers=6, ff=400, classes=2):
    norm = 2 * d
    layer = norm + 4 * linear(d, d) + norm + linear(d, ff) + linear(ff, d)
    return layers * layer + norm + linear(d, classes)


def attention_lstm_count(f, h=5, r=10, d_a=50, classes=2, matrix=False):
    x_in = r * f if matrix else f
    return linear(f, d_a) + linear(d_a, r) + lstm_count(x_in, h) + linear(h, classes)


EXPECTED_DEFAULT_COUNTS = {
    "small_cnn": conv(3, 1, 8, True) + conv(3, 8, 16, True) + conv(3, 16, 16, True) + linear(16, 4),
    "mnist_cnn": conv(3, 1, 32, True) + conv(3, 32, 64, True) + linear(12 * 12 * 64, 128) + linear(128, 10),
    "resnet18": resnet18_count(10),
    "resnet20": cifar_resnet_count(20, 10),
    "resnet32": cifar_resnet_count(32, 10),
    "resnet56": cifar_resnet_count(56, 10),
    "vgg16": vgg16_count(260),
    "bilstm": 1000 * 100 + 2 * lstm_count(100, 128) + linear(2 * 128, 2),
    "lstm": lstm_count(50, 5) + linear(5, 2),
    "lstm_cell_attention": attention_lstm_count(50),
    "tcn": tcn_count(50),
    "transformer": transformer_count(50),
}


def test_reference_counts_are_the_published_sizes():
    assert EXPECTED_DEFAULT_COUNTS["resnet18"] == 11_173_962
    assert [EXPECTED_DEFAULT_COUNTS[f"resnet{d}"] for d in (20, 32, 56)] == [269_722, 464_154, 853_018]
    assert vgg16_count(260) - linear(2048, 260) - linear(4048, 2048) - linear(25088, 4048) == 14_714_688


def test_describe_counts_match_the_reference_layer_shapes():
    infos = {info.name: info for info in models.describe()}
    assert set(infos) == set(models.REGISTRY)
    for name, info in infos.items():
        assert info.description and "\n" not in info.description
        assert info.num_params == EXPECTED_DEFAULT_COUNTS[name], name
    assert infos["vgg16"].input_shape == (224, 224, 3) and infos["bilstm"].input_dtype == "int32"


def test_counts_with_other_options():
    x = models.example_input("lstm_cell_attention")
    assert models.count_params(models.get("lstm_cell_attention", matrix=True), x) == \
        attention_lstm_count(50, matrix=True)
    assert models.count_params(models.get("resnet32", num_classes=100), models.example_input("resnet32")) == \
        cifar_resnet_count(32, 100)


# ---------------------------------------------------------------- architecture details

def test_option_a_shortcut_subsamples_and_zero_pads_channels_on_both_sides():
    block = resnet.BasicBlock(8, stride=2, shortcut="A")
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 4, 4, 4)), jnp.float32)
    variables = jax.eval_shape(lambda: block.init(key(0), x, train=False))
    assert set(variables["params"]) == {"Conv_0", "Conv_1", "BatchNorm_0", "BatchNorm_1"}
    # Zero kernels, BN shift 0 and running statistics (0, 1) silence the residual branch:
    # y = relu(shortcut(x)).
    variables = jax.tree_util.tree_map_with_path(
        lambda path, s: (jnp.ones if path[-1].key == "var" else jnp.zeros)(s.shape, s.dtype), variables)
    y = block.apply(variables, x, train=False)
    expected = np.zeros((1, 2, 2, 8), np.float32)
    expected[..., 2:6] = np.maximum(np.asarray(x)[:, ::2, ::2, :], 0)
    np.testing.assert_allclose(y, expected, atol=1e-6)


def test_invalid_options_raise_clear_errors():
    with pytest.raises(ValueError, match="depth"):
        jax.eval_shape(lambda: models.get("resnet20", depth=21).init(key(0), jnp.zeros((1, 8, 8, 3))))
    with pytest.raises(ValueError, match="not divisible by 5 heads"):
        jax.eval_shape(lambda: models.get("transformer").init(key(0), jnp.zeros((1, 4, 6))))
    with pytest.raises(ValueError, match="model: unknown model"):
        models.get("resnet9000")


def test_mnist_cnn_initialises_like_pytorch():
    """Every weight and bias of the authors' CNN is U(±1/√fan_in), PyTorch's default for Conv2d/Linear."""
    params = models.get("mnist_cnn").init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))["params"]
    assert {k: v["kernel"].shape for k, v in params.items()} == {
        "Conv_0": (3, 3, 1, 32), "Conv_1": (3, 3, 32, 64), "Dense_0": (9216, 128), "Dense_1": (128, 10)}
    fan_in = {"Conv_0": 9, "Conv_1": 9 * 32, "Dense_0": 12 * 12 * 64, "Dense_1": 128}
    for layer, n in fan_in.items():
        for leaf in ("kernel", "bias"):
            w = np.asarray(params[layer][leaf]).ravel()
            bound = n ** -0.5
            assert np.abs(w).max() <= bound, (layer, leaf)
            if w.size >= 32:  # spread over the whole interval (not zeros, not a narrower law)
                assert np.abs(w).max() > 0.8 * bound, (layer, leaf)
            if w.size >= 1000:  # uniform: mean 0, std = bound/√3 (lecun_normal would give √3 times more)
                np.testing.assert_allclose(w.std(), bound / 3 ** 0.5, rtol=0.05)
                assert abs(w.mean()) < 0.05 * bound


def test_positional_encoding_matches_the_reference_loop():
    d, length = 6, 5
    pe = np.zeros((length, d))
    for pos in range(length):
        for i in range(0, d, 2):
            pe[pos, i] = math.sin(pos / (10000 ** ((2 * i) / d)))
            pe[pos, i + 1] = math.cos(pos / (10000 ** ((2 * (i + 1)) / d)))
    np.testing.assert_allclose(transformer.positional_encoding(length, d), pe, rtol=1e-6, atol=1e-7)


def test_norm_uses_unbiased_std_plus_eps():
    x = jnp.asarray([[1.0, 2.0, 4.0, 7.0]])
    y = transformer.Norm().apply({"params": {"alpha": jnp.full(4, 2.0), "bias": jnp.ones(4)}}, x)
    xn = np.asarray(x)
    np.testing.assert_allclose(y, 2 * (xn - xn.mean()) / (xn.std(ddof=1) + 1e-6) + 1, rtol=1e-6)


def reference_cell_attention(params, x, r, matrix=False):
    """The benchmark's InputCellAttention loop, in numpy: attention over X[:t+1] at every step."""
    p = jax.tree.map(np.asarray, params)
    w1, b1 = p["attention_first"]["kernel"], p["attention_first"]["bias"]
    w2, b2 = p["attention_second"]["kernel"], p["attention_second"]["bias"]
    hidden = p["recurrent_kernel"].shape[0]
    h = c = np.zeros((x.shape[0], hidden))
    sigmoid = lambda z: 1 / (1 + np.exp(-z))
    for t in range(x.shape[1]):
        past = x[:, :t + 1]
        s = np.tanh(past @ w1 + b1) @ w2 + b2  # [B, t+1, r]
        a = np.exp(s - s.max(1, keepdims=True))
        a = a / a.sum(1, keepdims=True)
        m = np.einsum("btr,btf->brf", a, past)
        x_bar = m.reshape(len(x), -1) if matrix else m.sum(1) / r
        g = x_bar @ p["input_kernel"] + h @ p["recurrent_kernel"] + p["bias"]
        i, f, gg, o = np.split(g, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(gg)
        h = sigmoid(o) * np.tanh(c)
    return h @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]


@pytest.mark.parametrize("matrix", [False, True])
def test_cell_attention_matches_the_reference_loop(matrix):
    model = timeseries.LSTMCellAttention(num_classes=CLASSES, r=3, d_a=7, matrix=matrix)
    x = np.random.default_rng(0).normal(size=(2, 6, 4)).astype(np.float32)
    params = random_params(model, x)  # non-zero biases take part too
    np.testing.assert_allclose(model.apply({"params": params}, x),
                               reference_cell_attention(params, x.astype(np.float64), 3, matrix),
                               rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- causality

@pytest.mark.parametrize("name", ["tcn", "transformer", "lstm_cell_attention"])
def test_per_step_features_depend_on_the_past_only(name):
    """J[t, t'] = max |∂ sequence_t / ∂ x_{t'}| (the sown per-step features before pooling) is 0 for t' > t."""
    model, _, variables, x, _ = initialised(name)

    def sequence(x1):
        _, state = model.apply(variables, x1[None], train=False, mutable=["intermediates"])
        return state["intermediates"]["sequence"][0][0]

    jac = np.asarray(jax.jit(jax.jacrev(sequence))(jnp.asarray(x[0])))  # [T, D, T, F]
    dependence = np.abs(jac).max(axis=(1, 3))  # [T, T']
    t = dependence.shape[0]
    np.testing.assert_array_equal(dependence[np.triu_indices(t, 1)], 0.0)
    assert (dependence[np.tril_indices(t)] > 0).mean() > 0.5
    assert (dependence.max(axis=1) > 0).all(), "every step depends on some input"


# ---------------------------------------------------------------- text model

def test_text_trailing_padding_does_not_change_logits(pad_id=3):
    model = models.get("bilstm", num_classes=CLASSES, vocab_size=20, embed_dim=6, hidden=5, pad_id=pad_id)
    rng = np.random.default_rng(0)
    lengths = [1, 4, 7]
    ids = np.full((3, 7), pad_id, np.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.choice([v for v in range(20) if v != pad_id], size=n)
    params = random_params(model, ids)
    text_logits = jax.jit(lambda params, ids: model.apply({"params": params}, ids, train=False))
    logits = text_logits(params, ids)
    padded = np.concatenate([ids, np.full((3, 9), pad_id, np.int32)], axis=1)
    np.testing.assert_allclose(text_logits(params, padded), logits, rtol=1e-6, atol=1e-6)
    changed = ids.copy()
    changed[:, 0] = np.where(ids[:, 0] == 5, 6, 5)
    assert not np.allclose(text_logits(params, changed), logits), "real tokens matter"


def test_text_model_from_frozen_embeddings_trains_with_the_standard_step():
    """A frozen embedding table gets zero gradient and zero Adam update; the rest trains."""
    options = TINY["bilstm"][0]
    table = np.random.default_rng(0).normal(size=(options["vocab_size"], options["embed_dim"])).astype(np.float32)
    model = tiny_model("bilstm", embeddings=table, freeze_embeddings=True)
    x, y = tiny_input("bilstm", 8), np.arange(8, dtype=np.int32) % CLASSES
    x[:4, 8:] = 0  # some padded rows
    before, after, initial, final = run_steps(model, x, y, "standard")
    np.testing.assert_array_equal(initial["params"]["embedding"], table)
    assert after < before
    np.testing.assert_array_equal(final.params["embedding"], table)  # zero gradient, zero Adam update
    assert not np.allclose(final.params["head"]["kernel"], initial["params"]["head"]["kernel"])


# ---------------------------------------------------------------- VGG-16 weight loader

def fake_vgg_state_dict(seed=0):
    """torchvision-named VGG-16 `features` arrays (OIHW) with He-scaled random values."""
    rng = np.random.default_rng(seed)
    widths = [c for c in vgg.VGG16_CONFIG if c != "M"]
    state = {}
    for i, c_in, c_out in zip(vgg.conv_indices(), [3] + widths[:-1], widths):
        state[f"features.{i}.weight"] = (rng.normal(size=(c_out, c_in, 3, 3)) * np.sqrt(2 / (9 * c_in))
                                         ).astype(np.float32)
        state[f"features.{i}.bias"] = rng.normal(scale=0.1, size=c_out).astype(np.float32)
    state["classifier.0.bias"] = np.zeros(3, np.float32)  # other keys are ignored
    return state


def test_vgg16_loader_converts_torchvision_weights(tmp_path):
    torch = pytest.importorskip("torch")
    state = fake_vgg_state_dict()
    path = tmp_path / "vgg16_features.npz"
    np.savez(path, **state)
    model, x = tiny_model("vgg16"), tiny_input("vgg16", 1)
    shapes = jax.eval_shape(lambda: model.init(key(0), x)["params"])
    initial = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    params = models.load_vgg16_features(initial, path)
    assert params["Dense_0"] is initial["Dense_0"]
    assert set(params["features"]) == {f"conv_{i}" for i in vgg.conv_indices()}
    for i in vgg.conv_indices():
        np.testing.assert_array_equal(params["features"][f"conv_{i}"]["kernel"],
                                      state[f"features.{i}.weight"].transpose(2, 3, 1, 0))
        np.testing.assert_array_equal(params["features"][f"conv_{i}"]["bias"], state[f"features.{i}.bias"])
    # The first convolution, as VGG16Features builds it, computes torch's conv2d(padding=1).
    x = np.random.default_rng(1).uniform(size=(1, 6, 5, 3)).astype(np.float32)
    ours = vgg.conv3x3(64, 0).apply({"params": params["features"]["conv_0"]}, x)
    theirs = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2)),
                                        torch.from_numpy(state["features.0.weight"]),
                                        torch.from_numpy(state["features.0.bias"]), padding=1)
    np.testing.assert_allclose(ours, theirs.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)

    del state["features.5.bias"]
    np.savez(path, **state)
    with pytest.raises(ValueError, match="features.5.bias"):
        models.load_vgg16_features(initial, path)


def test_adaptive_pool_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(2, 10, 9, 3)).astype(np.float32)
    expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), 7)
    np.testing.assert_allclose(vgg.adaptive_avg_pool(jnp.asarray(x), 7), expected.numpy().transpose(0, 2, 3, 1),
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- train steps

def run_steps(model, x, y, method, variables=None, steps=4):
    """(loss before, loss after, initial variables, final state) for `steps` Adam(1e-3) steps on one batch.

    Both losses are the step's own objective with the randomness of step 0 (the step draws its dropout
    masks and fill values from fold_in(key, step), so resetting the counter replays them): a fair
    comparison without compiling another function.
    """
    if variables is None:
        variables = jax.jit(lambda k: model.init(k, x[:1], train=False))(key(0))
    # host copies: the step donates its state's buffers
    variables = jax.device_get({c: variables[c] for c in ("params", "batch_stats") if c in variables})
    tx = optax.adam(1e-3)
    params = variables["params"]
    state = train.replicate(train.TrainState(
        step=jnp.zeros((), jnp.int32), params=params, batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params), key=key(0)), train.make_mesh())
    step = train.make_train_step(model, tx, method=method)
    for i in range(steps):
        state, metrics = step(state, x, y)
        if i == 0:
            before = float(metrics["loss"])
    final = jax.device_get(state)
    _, metrics = step(state.replace(step=state.step * 0), x, y)  # same sharding: no recompilation
    assert np.isfinite([before, float(metrics["loss"])]).all()
    return before, float(metrics["loss"]), variables, final


@pytest.mark.parametrize("name", ["resnet20", "lstm_cell_attention", "transformer"])
def test_sgt_steps_lower_the_loss_on_a_tiny_batch(name):
    """The new time-series models and ResNet-20 on 32×32 (for the CIFAR ResNets). Left out for time:
    ResNet-18/32/56, VGG-16, and the pre-existing MNIST CNN, LSTM (trained with SGT by the CLI test)
    and TCN."""
    x, y = tiny_input(name, 8), np.arange(8, dtype=np.int32) % CLASSES
    model, _, variables, _, _ = initialised(name)
    before, after, _, _ = run_steps(model, x, y, "sgt", variables)
    assert after < before, (before, after)
