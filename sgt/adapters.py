"""One interface for every kind of model the train step accepts.

An adapter has
    init(key, example_x) -> (params, state)
    apply(params, state, x, *, train, key) -> (logits, new_state)
where `params` are what the optimizer updates, `state` the rest of the model's variables that a
training forward may change (BatchNorm statistics; `{}` when there are none) and `key` the
randomness of a training forward (dropout). In inference mode (`train=False`) there is no key
and the state is returned unchanged. `adapt(model)` accepts:

- a Flax Linen module whose `__call__` takes `train` (the model zoo): `train` switches dropout and
  BatchNorm, the "dropout" RNG stream gets `key`, and "batch_stats" is the state;
- a Linen module without a `train` argument: called as it is, in both modes;
- a Flax NNX module: split into its graph, its `nnx.Param`s (params), its RNG streams (reseeded
  from `key` at every training forward) and everything else (state, e.g. `nnx.BatchStat`), as plain
  dictionaries of arrays; `.train()` / `.eval()` switch its mode; `merge` gives the module back;
- `from_apply(apply_fn, variables)`: a pure `apply_fn(variables, x, *, train, rngs) -> (logits,
  new_state)` with its initial `variables` ({"params": ..., other collections...}).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx


@dataclasses.dataclass(frozen=True)
class LinenAdapter:
    """A Linen module; `takes_train`: its `__call__` has a `train` argument."""

    module: nn.Module
    takes_train: bool = True

    def _mode(self, train: bool) -> dict:
        return {"train": train} if self.takes_train else {}

    def init(self, key, example_x):
        variables = self.module.init({"params": key, "dropout": key}, example_x, **self._mode(False))
        return variables["params"], variables.get("batch_stats", {})

    def apply(self, params, state, x, *, train: bool, key=None, perturbations=None):
        """`perturbations`: values for the module's "perturbations" collection (`self.perturb` points)."""
        variables = {"params": params, **({"batch_stats": state} if state else {}),
                     **({"perturbations": perturbations} if perturbations is not None else {})}
        if not train:
            return self.module.apply(variables, x, **self._mode(False)), state
        rngs = {"dropout": key} if key is not None else {}
        if state:
            logits, updates = self.module.apply(variables, x, **self._mode(True), rngs=rngs, mutable=["batch_stats"])
            return logits, updates["batch_stats"]
        return self.module.apply(variables, x, **self._mode(True), rngs=rngs), state


@dataclasses.dataclass(frozen=True, eq=False)
class NNXAdapter:
    """An NNX module, as a pure function of plain dictionaries (hashed by identity)."""

    graphdef: Any
    params: Any  # nnx.State templates; the arrays in them are the module's initial values
    rngs: Any
    rest: Any
    streams: tuple[str, ...]

    @classmethod
    def from_module(cls, module: nnx.Module) -> "NNXAdapter":
        graphdef, params, rngs, rest = nnx.split(module, nnx.Param, nnx.RngState, ...)
        streams = tuple(sorted({v.tag for _, v in nnx.iter_graph(module) if isinstance(v, nnx.RngStream)}))
        return cls(graphdef, params, rngs, rest, streams)

    def init(self, key, example_x):
        del key, example_x  # an NNX module is initialised when it is built
        # copies: the train step donates its state, and must not delete the user's module's arrays
        return jax.tree.map(jnp.array, (nnx.to_pure_dict(self.params), nnx.to_pure_dict(self.rest)))

    def module(self, params, state) -> nnx.Module:
        """A fresh module holding `params` and `state` (the user's module is never mutated)."""
        fresh = lambda template, values: _filled(template, values)  # noqa: E731
        return nnx.merge(self.graphdef, fresh(self.params, params), jax.tree.map(lambda a: a, self.rngs),
                         fresh(self.rest, state))

    def apply(self, params, state, x, *, train: bool, key=None):
        module = self.module(params, state)
        if train:
            module.train()
            if key is not None and self.streams:
                nnx.reseed(module, **{s: jax.random.fold_in(key, i) for i, s in enumerate(self.streams)})
        else:
            module.eval()
        logits = module(x)
        if not train:
            return logits, state
        _, _, _, rest = nnx.split(module, nnx.Param, nnx.RngState, ...)
        return logits, nnx.to_pure_dict(rest)


def _filled(template, values):
    state = jax.tree.map(lambda a: a, template)  # fresh Variables at the current trace level
    nnx.replace_by_pure_dict(state, values)
    return state


@dataclasses.dataclass(frozen=True, eq=False)
class ApplyAdapter:
    """A pure `apply_fn(variables, x, *, train, rngs) -> (logits, new_state)` and its variables."""

    apply_fn: Callable
    variables: Any

    def init(self, key, example_x):
        del key, example_x
        state = {k: v for k, v in self.variables.items() if k != "params"}
        return jax.tree.map(jnp.array, (self.variables["params"], state))  # copies (the step donates its state)

    def apply(self, params, state, x, *, train: bool, key=None):
        rngs = {"dropout": key} if train and key is not None else {}
        logits, new_state = self.apply_fn({"params": params, **state}, x, train=train, rngs=rngs)
        return logits, (new_state if train else state)


Adapter = LinenAdapter | NNXAdapter | ApplyAdapter


def from_apply(apply_fn: Callable, variables) -> ApplyAdapter:
    """Wrap a pure `apply_fn(variables, x, *, train, rngs) -> (logits, new_state)`; `variables` holds
    "params" (what is trained) and any other collections (the state a training forward updates)."""
    if not callable(apply_fn):
        raise ValueError(f"apply_fn: expected a function apply_fn(variables, x, *, train, rngs), got {apply_fn!r}")
    if not isinstance(variables, dict) or "params" not in variables:
        raise ValueError("variables: expected a dict with a 'params' entry (and any other collections), "
                         f"got {type(variables).__name__}")
    return ApplyAdapter(apply_fn, variables)


def _takes_train(module: nn.Module) -> bool:
    try:
        return "train" in inspect.signature(type(module).__call__).parameters
    except (TypeError, ValueError):
        return True


def adapt(model) -> Adapter:
    """The adapter of `model` (an adapter is returned as it is)."""
    if isinstance(model, (LinenAdapter, NNXAdapter, ApplyAdapter)):
        return model
    if isinstance(model, nn.Module):
        return LinenAdapter(model, _takes_train(model))
    if isinstance(model, nnx.Module):
        return NNXAdapter.from_module(model)
    raise ValueError(f"model: expected a flax.linen.Module, a flax.nnx.Module or sgt.adapters.from_apply(apply_fn, "
                     f"variables), got {type(model).__name__}")


def merge(model, params, state) -> Any:
    """Trained values back in the user's terms: an NNX module for an NNX model, else the variables dict."""
    adapter = adapt(model)
    if isinstance(adapter, NNXAdapter):
        return adapter.module(params, state)
    if isinstance(adapter, LinenAdapter):
        return {"params": params, **({"batch_stats": state} if state else {})}
    return {"params": params, **state}


__all__ = ["Adapter", "ApplyAdapter", "LinenAdapter", "NNXAdapter", "adapt", "from_apply", "merge"]
