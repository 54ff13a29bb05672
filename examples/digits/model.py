"""A small CNN on scikit-learn's digits whose layers are left open for NAS.

Run it three ways:

    python model.py                                  # standalone: first candidates, trains, prints accuracy
    nasctl ss_gen --trial-command "python model.py"  # writes the search space and exits
    nasctl create --config ../../configs/digits-random.yaml   # one trial per architecture

Open decisions: ``conv1``, ``conv2``, ``conv3`` (which operation) and ``skip`` (whether a
residual connection carries conv1's output around conv2).

``--device auto`` (the default) trains on CUDA when torch sees a GPU (inside an experiment with
``trialGpuNumber: 1``, the one the daemon gave the trial through ``CUDA_VISIBLE_DEVICES``), else
on the CPU. The first line after the architecture names the device, e.g. ``device: cuda:0 (NVIDIA
H200), CUDA_VISIBLE_DEVICES=0, pid=4242, uuid=GPU-...`` (``bench/gpu_check.py`` reads it).
"""

from __future__ import annotations

import argparse
import os
from collections import OrderedDict

import torch
from data import accuracy, load_splits, train_epoch
from torch import nn

import trials
from trials.nas import InputChoice, LayerChoice, get_and_apply_next_architecture, model_costs


def conv_bn(c_in: int, c_out: int, kernel: int, dilation: int = 1, groups: int = 1) -> nn.Module:
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


def sep_conv(channels: int, kernel: int) -> nn.Module:
    """Depthwise then pointwise: a fraction of a full convolution's parameters."""
    return nn.Sequential(conv_bn(channels, channels, kernel, groups=channels), conv_bn(channels, channels, 1))


class DigitsNet(nn.Module):
    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        c = channels
        self.stem = conv_bn(1, c, 3)
        self.conv1 = LayerChoice(
            OrderedDict(
                conv3x3=conv_bn(c, c, 3),
                conv5x5=conv_bn(c, c, 5),
                sepconv3x3=sep_conv(c, 3),
                maxpool3x3=nn.MaxPool2d(3, stride=1, padding=1),
            ),
            key="conv1",
        )
        self.conv2 = LayerChoice(
            OrderedDict(
                conv3x3=conv_bn(c, c, 3),
                conv5x5=conv_bn(c, c, 5),
                dilconv3x3=conv_bn(c, c, 3, dilation=2),
                identity=nn.Identity(),
            ),
            key="conv2",
        )
        # Any subset of the listed outputs (here: conv1's or nothing) is added after conv2.
        self.skip = InputChoice(choose_from=["conv1"], n_chosen=None, key="skip")
        self.pool = nn.MaxPool2d(2)
        self.conv3 = LayerChoice(
            OrderedDict(
                conv3x3=conv_bn(c, 2 * c, 3),
                sepconv3x3=nn.Sequential(sep_conv(c, 3), conv_bn(c, 2 * c, 1)),
                conv1x1=conv_bn(c, 2 * c, 1),
            ),
            key="conv3",
        )
        self.head = nn.Linear(2 * c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(self.stem(x))
        x2 = self.conv2(x1)
        residual = self.skip([x1])
        if residual is not None:
            x2 = x2 + residual
        x3 = self.conv3(self.pool(x2))
        return self.head(x3.mean(dim=(2, 3)))


def pick_device(choice: str) -> torch.device:
    """``auto``: CUDA when torch sees a GPU, else the CPU; ``cuda`` fails clearly without one."""
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SystemExit(
                "--device cuda: torch sees no CUDA GPU "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')})"
            )
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    """One line: the device, the CUDA_VISIBLE_DEVICES this process got, its pid (and the GPU's UUID)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
    if device.type != "cuda":
        return f"device: cpu, CUDA_VISIBLE_DEVICES={visible}, pid={os.getpid()}"
    props = torch.cuda.get_device_properties(device)
    uuid = getattr(props, "uuid", None)
    extra = f", uuid={uuid}" if uuid is not None else ""
    return f"device: {device} ({props.name}), CUDA_VISIBLE_DEVICES={visible}, pid={os.getpid()}{extra}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when available"
    )
    parser.add_argument(
        "--report-costs",
        action="store_true",
        help="report accuracy with params and flops (for an experiment with several objectives)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # trials run side by side; one core each is fastest overall
    torch.manual_seed(args.seed)

    model = DigitsNet()
    arch = get_and_apply_next_architecture(model)  # under ss_gen this writes the space and exits
    print("architecture:", {key: value["_value"] for key, value in arch.items()})
    device = pick_device(args.device)
    print(describe_device(device), flush=True)
    model.to(device)

    data = load_splits(device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    val_acc = 0.0
    for epoch in range(1, args.epochs + 1):
        loss = train_epoch(model, optimizer, *data["train"], generator)
        val_acc = accuracy(model, *data["val"])
        trials.report_intermediate_result(val_acc)
        print(f"epoch {epoch}: loss {loss:.4f}, validation accuracy {val_acc:.4f}", flush=True)
    if args.report_costs:  # the cost of the architecture, no training needed (the latency is noisy on CPU)
        costs = model_costs(model, (1, 1, 8, 8), latency=False, device=device)
        trials.report_final_result({"default": val_acc, "accuracy": val_acc, **costs})
        print(f"params {costs['params']:.0f}, flops {costs['flops']:.0f}")
    else:
        trials.report_final_result(val_acc)
    print(f"final validation accuracy: {val_acc:.4f}")
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        print(f"peak GPU memory: {peak:.1f} MiB (torch.cuda.max_memory_allocated)")


if __name__ == "__main__":
    main()
