"""A NAS-Bench-201 network whose cell is searched, "trained" by looking its accuracy up.

The cell has four nodes; each of its six edges (``Op0`` .. ``Op5``, in the order of
NAS-Bench-201's architecture string: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2) is a ``LayerChoice``
of five operations. The trial builds the network, takes its architecture through
``get_and_apply_next_architecture`` like any trial, checks that the chosen network runs on a
batch, and then reports the CIFAR-10 validation accuracy of one seed of that cell from the
NAS-Bench-201 tables (``nb201_table.py``) instead of training for hours. The seed is drawn from
``(--noise-seed, the trial's sequence id)``, exactly as ``bench/tuners.py`` draws it, so an
experiment at concurrency 1 reproduces the benchmark's curve for the same tuner seed.

    python model.py                                            # standalone: the first op everywhere
    nasctl create --config ../../configs/nb201-evolution.yaml  # 200 trials through the daemon
"""

from __future__ import annotations

import argparse
from collections import OrderedDict

import torch
from nb201_table import EDGES, OPS, cell_code, load_table
from torch import nn

import trials
from trials.nas import LayerChoice, get_and_apply_next_architecture

#: (target node, source node) of each edge, in the order of the keys Op0 .. Op5.
EDGE_NODES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


class Zero(nn.Module):
    """The ``none`` operation: the edge carries nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def relu_conv_bn(channels: int, kernel: int) -> nn.Module:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(channels),
    )


def edge_candidates(channels: int) -> OrderedDict[str, nn.Module]:
    modules = (
        Zero(),
        nn.Identity(),
        relu_conv_bn(channels, 1),
        relu_conv_bn(channels, 3),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    )
    return OrderedDict(zip(OPS, modules, strict=True))


class Cell(nn.Module):
    """Node j is the sum of its incoming edges; the cell's output is node 3."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(LayerChoice(edge_candidates(channels), key=key) for key in EDGES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            inputs = [
                edge(nodes[source])
                for edge, (to, source) in zip(self.edges, EDGE_NODES, strict=True)
                if to == target
            ]
            nodes.append(sum(inputs[1:], inputs[0]))
        return nodes[3]


class Network(nn.Module):
    """Stem, one searched cell, global pooling and a classifier (NAS-Bench-201 stacks more cells)."""

    def __init__(self, channels: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.cell = Cell(channels)
        self.head = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.cell(self.stem(x))))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="cifar10", choices=("cifar10", "cifar100", "imagenet"))
    parser.add_argument(
        "--noise-seed", type=int, default=0, help="with the sequence id, picks the seed observed"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    model = Network(classes={"cifar10": 10, "cifar100": 100, "imagenet": 120}[args.dataset])
    arch = get_and_apply_next_architecture(model)  # under ss_gen this writes the space and exits
    code = cell_code(arch)
    with torch.no_grad():
        logits = model.eval()(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, model.classifier.out_features)

    table = load_table(args.dataset)
    seen = table.observe(code, args.noise_seed, trials.get_sequence_id())
    print("cell:", "|".join(f"{edge}={arch[edge]['_value']}" for edge in EDGES))
    print(
        f"validation accuracy {seen.accuracy:.3f} (seed {seen.seed_index} of the table; "
        f"mean over seeds {table.mean(code):.3f}, {seen.train_time:.0f} s of real training)"
    )
    trials.report_final_result(seen.accuracy)


if __name__ == "__main__":
    main()
