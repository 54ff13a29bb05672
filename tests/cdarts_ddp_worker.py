"""One process of the distributed CDARTS test (``test_oneshot_cdarts_distributed.py`` starts two with torchrun).

Each rank draws its own initial weights and architecture weights (the trainer must make them
rank 0's), searches tiny networks on its half of a small random set for two epochs (one of
warm-up), and saves what the test compares to ``OUT/rank<R>.pt``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from trials.nas.oneshot.cdarts import CdartsTrainer
from trials.nas.zoo import DartsNetwork


def main(out: Path) -> None:
    torch.set_num_threads(1)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g))
    # the process group starts with the trainer, so the samplers are told their place
    shares = [DistributedSampler(data, num_replicas=world_size, rank=rank, seed=seed) for seed in (0, 1)]
    train, valid = (DataLoader(data, batch_size=8, sampler=share) for share in shares)
    torch.manual_seed(rank)  # different starting points on purpose
    trainer = CdartsTrainer(
        DartsNetwork(1, 4, 10, n_layers=3, n_nodes=2),
        DartsNetwork(1, 4, 10, n_layers=5, n_nodes=2, affine=True),
        train_data=train,
        valid_data=valid,
        num_epochs=2,
        warmup_epochs=1,
        arch_lr=0.05,
        distributed=True,
        log_dir=out / "log",
        progress=False,
    )
    start = [alpha.detach().clone() for alpha in trainer.alphas]
    architecture = trainer.fit()
    torch.save(
        {
            "start": start,
            "alphas": [alpha.detach().clone() for alpha in trainer.alphas],
            "model": trainer.model.state_dict(),
            "eval_model": trainer.eval_model.state_dict(),
            "architecture": architecture,
            "writes_log": trainer.log is not None,
            "backend": trainer.processes.backend if trainer.processes else None,
        },
        out / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
