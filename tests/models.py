"""Tiny models for the tests."""

import flax.linen as nn


class MLP(nn.Module):
    """Optional input BatchNorm (momentum 0.9), tanh hidden layer, optional dropout."""

    classes: int = 3
    hidden: int = 16
    dropout: float = 0.0
    batchnorm: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape(x.shape[0], -1)
        if self.batchnorm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.tanh(nn.Dense(self.hidden)(x))
        if self.dropout:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.classes)(x)
