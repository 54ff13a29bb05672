"""A small single-path one-shot network, written as NNI's examples/nas/spos/network.py writes
ShuffleNetV2OneShot: unkeyed choices, and a FLOPs table built in ``__init__`` keyed by each
choice's key, which ``get_candidate_flops`` reads for the supernet sampler."""

import torch
import torch.nn as nn

from nni.nas.pytorch import mutables


def block(c, k):
    return nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c), nn.ReLU())


class OneShotNet(nn.Module):
    kernels = (1, 3, 5, 7)

    def __init__(self, channels=8, n_blocks=4, size=16, n_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())
        self.features = nn.Sequential(*[mutables.LayerChoice([block(channels, k) for k in self.kernels]) for _ in range(n_blocks)])
        self.classifier = nn.Linear(channels, n_classes)
        self._parsed_flops = self._parse_flops(channels, size)

    def _parse_flops(self, channels, size):
        table = {}
        for choice in self.features:
            table[choice.key] = [channels * channels * k * k * size * size for k in self.kernels]
        table["fixed"] = 3 * channels * 9 * size * size + channels * 10
        return table

    def get_candidate_flops(self, candidate):
        flops = self._parsed_flops["fixed"]
        for key, mask in candidate.items():
            flops += self._parsed_flops[key][int(torch.max(mask.float(), 0)[1])]
        return flops

    def forward(self, x):
        x = self.features(self.stem(x))
        return self.classifier(x.mean(dim=(2, 3)))
