"""A small DARTS search network, built as NNI's examples/nas/darts/model.py builds its own."""

from collections import OrderedDict

import torch
import torch.nn as nn

from nni.nas import pytorch as nas


def ops(channels):
    return OrderedDict(
        [
            ("maxpool", nn.MaxPool2d(3, 1, 1)),
            ("avgpool", nn.AvgPool2d(3, 1, 1)),
            ("skipconnect", nn.Identity()),
            ("conv3x3", nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels, affine=False))),
        ]
    )


class Node(nas.mutables.MutableScope):
    def __init__(self, node_id, num_prev_nodes, channels):
        super().__init__(node_id)
        self.ops = nn.ModuleList()
        choice_keys = []
        for i in range(num_prev_nodes):
            choice_keys.append("{}_p{}".format(node_id, i))
            self.ops.append(nas.mutables.LayerChoice(ops(channels), key=choice_keys[-1]))
        self.input_switch = nas.mutables.InputChoice(choose_from=choice_keys, n_chosen=2, key="{}_switch".format(node_id))

    def forward(self, prev_nodes):
        out = [op(node) for op, node in zip(self.ops, prev_nodes)]
        return self.input_switch(out)


class Cell(nn.Module):
    def __init__(self, n_nodes, channels, cell_type):
        super().__init__()
        self.mutable_ops = nn.ModuleList()
        for depth in range(2, n_nodes + 2):
            self.mutable_ops.append(Node("{}_n{}".format(cell_type, depth), depth, channels))

    def forward(self, s0, s1):
        tensors = [s0, s1]
        for node in self.mutable_ops:
            tensors.append(node(tensors))
        return sum(tensors[2:])


class CNN(nn.Module):
    def __init__(self, in_channels=3, channels=8, n_classes=10, n_nodes=2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.normal = Cell(n_nodes, channels, "normal")
        self.reduce = Cell(n_nodes, channels, "reduce")
        self.pool = nn.MaxPool2d(2)
        self.linear = nn.Linear(channels, n_classes)

    def forward(self, x):
        s = self.stem(x)
        s = self.normal(s, s)
        s = self.pool(s)
        s = self.reduce(s, s)
        return self.linear(torch.flatten(nn.functional.adaptive_avg_pool2d(s, 1), 1))
