"""A classic-NAS trial in NNI v1.9's style (as its examples/nas/classic_nas did it), on digits.

Written for nasctl's tests, with NNI's import lines; tests/test_nni_classic_port.py changes those
three lines by the README's table and runs it through `nasctl ss_gen` and `nasctl create`.
Digits are scikit-learn's 8x8 images (shipped with it, no download), so the convolutions are
small: 5x5 and 3x3 kernels with padding keep 8x8, one pooling makes 4x4.
"""

import argparse
import gzip
import importlib.util
import logging
from collections import OrderedDict
from pathlib import Path

import nni
import torch
import torch.nn.functional as F
from nni.nas.pytorch.classic_nas import get_and_apply_next_architecture
from nni.nas.pytorch.mutables import LayerChoice, InputChoice
from torch import nn

logger = logging.getLogger("digits_classic_nas")


class Net(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        # named candidates, an explicit key
        self.conv1 = LayerChoice(
            OrderedDict(
                [
                    ("conv5x5", nn.Conv2d(1, 8, 5, padding=2)),
                    ("conv3x3", nn.Conv2d(1, 8, 3, padding=1)),
                ]
            ),
            key="first_conv",
        )
        # a plain list: NNI names the candidates "0" and "1"
        self.mid_conv = LayerChoice(
            [
                nn.Conv2d(8, 8, 3, padding=1),
                nn.Conv2d(8, 8, 5, padding=2),
            ],
            key="mid_conv",
        )
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        # two unnamed inputs (no choose_from): a residual from conv1's output, or nothing
        self.skipconnect = InputChoice(n_candidates=2, n_chosen=1, key="skip")
        self.bn = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(2 * 2 * 16, hidden_size)
        self.fc2 = nn.Linear(hidden_size, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        old_x = x
        x = F.relu(self.mid_conv(x))
        zero_x = torch.zeros_like(old_x)
        skip_x = self.skipconnect([zero_x, old_x])
        x = self.bn(torch.add(x, skip_x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


def load_digits(seed):
    """scikit-learn's digits CSV, read without importing scikit-learn; 1,400 train, the rest test."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        table = torch.tensor([[float(v) for v in line.split(",")] for line in f if line.strip()])
    order = torch.randperm(len(table), generator=torch.Generator().manual_seed(seed))
    table = table[order]
    images, labels = table[:, :64].reshape(-1, 1, 8, 8) / 16.0, table[:, 64].long()
    return (images[:1400], labels[:1400]), (images[1400:], labels[1400:])


def train(args, model, train_data, optimizer, epoch):
    model.train()
    images, labels = train_data
    order = torch.randperm(len(labels))
    for batch_idx, start in enumerate(range(0, len(labels), args["batch_size"])):
        index = order[start : start + args["batch_size"]]
        optimizer.zero_grad()
        loss = F.nll_loss(model(images[index]), labels[index])
        loss.backward()
        optimizer.step()
        if batch_idx % args["log_interval"] == 0:
            logger.info("Train Epoch: %d [%d/%d]\tLoss: %.6f", epoch, start, len(labels), loss.item())


def test(model, test_data):
    model.eval()
    images, labels = test_data
    with torch.no_grad():
        correct = (model(images).argmax(dim=1) == labels).sum().item()
    accuracy = 100.0 * correct / len(labels)
    logger.info("Test set: Accuracy: %d/%d (%.0f%%)", correct, len(labels), accuracy)
    return accuracy


def main(args):
    torch.manual_seed(args["seed"])
    train_data, test_data = load_digits(args["seed"])
    model = Net(hidden_size=args["hidden_size"])
    get_and_apply_next_architecture(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=args["lr"], momentum=args["momentum"])
    for epoch in range(1, args["epochs"] + 1):
        train(args, model, train_data, optimizer, epoch)
        test_acc = test(model, test_data)
        nni.report_intermediate_result(test_acc)
        logger.debug("test accuracy %g", test_acc)
    nni.report_final_result(test_acc)


def get_params():
    parser = argparse.ArgumentParser(description="digits, classic NAS in NNI's style")
    parser.add_argument("--batch_size", type=int, default=64, metavar="N")
    parser.add_argument("--hidden_size", type=int, default=64, metavar="N")
    parser.add_argument("--lr", type=float, default=0.05, metavar="LR")
    parser.add_argument("--momentum", type=float, default=0.5, metavar="M")
    parser.add_argument("--epochs", type=int, default=2, metavar="N")
    parser.add_argument("--seed", type=int, default=1, metavar="S")
    parser.add_argument("--log_interval", type=int, default=10, metavar="N")
    args, _ = parser.parse_known_args()
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    try:
        main(vars(get_params()))
    except Exception as exception:
        logger.exception(exception)
        raise
