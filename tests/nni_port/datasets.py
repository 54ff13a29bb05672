"""Tiny CIFAR-shaped data made here (NNI's examples read CIFAR-10 from disk)."""

import torch
from torch.utils.data import TensorDataset


def get_dataset(cls, n_train=96, n_valid=32, size=16, seed=0):
    assert cls == "cifar10"
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(10, 3, size, size, generator=g)

    def make(n):
        labels = torch.randint(0, 10, (n,), generator=g)
        images = patterns[labels] + 0.5 * torch.randn(n, 3, size, size, generator=g)
        return TensorDataset(images, labels)

    return make(n_train), make(n_valid)
