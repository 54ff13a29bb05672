"""One-shot search on a CUDA device with mixed precision (skipped where there is no GPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trials.nas import apply_fixed_architecture
from trials.nas.oneshot import DartsTrainer, EnasTrainer, PdartsTrainer, SposTrainer
from trials.nas.zoo import DartsNetwork, ENASMicroNetwork

pytestmark = pytest.mark.gpu


def cifar_shaped(batches: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g))
        for _ in range(batches)
    ]


def test_one_darts_epoch_on_cuda_with_mixed_precision(tmp_path: Path) -> None:
    model = DartsNetwork(3, 8, 10, n_layers=3, n_nodes=3)
    trainer = DartsTrainer(
        model,
        train_data=cifar_shaped(4, 0),
        valid_data=cifar_shaped(4, 1),
        num_epochs=1,
        device="cuda",
        mixed_precision=True,
        arch_lr=0.01,
        log_dir=tmp_path,
        progress=False,
    )
    start = [alpha.detach().clone() for alpha in trainer.alphas]
    architecture = trainer.fit()
    assert trainer.amp_dtype in (torch.bfloat16, torch.float16)
    assert all(alpha.is_cuda and torch.isfinite(alpha).all() for alpha in trainer.alphas)
    assert any(not torch.equal(a, b) for a, b in zip(trainer.alphas, start, strict=True))
    metrics = [json.loads(line)["metrics"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(value is not None for line in metrics for value in line.values())  # finite losses
    fixed = DartsNetwork(3, 8, 10, n_layers=3, n_nodes=3)
    apply_fixed_architecture(fixed, architecture)
    assert fixed.cuda()(torch.randn(2, 3, 32, 32, device="cuda")).shape == (2, 10)


def test_second_order_darts_runs_on_cuda_with_mixed_precision() -> None:
    trainer = DartsTrainer(
        DartsNetwork(3, 4, 10, n_layers=2, n_nodes=2),
        train_data=cifar_shaped(2, 0),
        valid_data=cifar_shaped(2, 1),
        num_epochs=1,
        device="cuda",
        mixed_precision=True,
        unrolled=True,
        progress=False,
    )
    trainer.fit()
    assert all(torch.isfinite(alpha).all() for alpha in trainer.alphas)


@pytest.mark.parametrize("cls", [EnasTrainer, SposTrainer], ids=["enas", "spos"])
def test_sampling_trainers_run_on_cuda_with_mixed_precision(cls: type, tmp_path: Path) -> None:
    extra = (
        {"controller_steps": 4}
        if cls is EnasTrainer
        else {"population_size": 4, "generations": 1, "parents": 2}
    )
    trainer = cls(
        ENASMicroNetwork(num_layers=3, num_nodes=2, out_channels=8),
        train_data=cifar_shaped(3, 0),
        valid_data=cifar_shaped(2, 1),
        num_epochs=1,
        device="cuda",
        mixed_precision=True,
        log_dir=tmp_path,
        progress=False,
        **extra,
    )
    architecture = trainer.fit()
    assert json.loads((tmp_path / "architecture.json").read_text()) == architecture


def test_pdarts_stages_rebuild_on_cuda_with_mixed_precision(tmp_path: Path) -> None:
    trainer = PdartsTrainer(
        lambda depth: DartsNetwork(3, 4, 10, n_layers=depth, n_nodes=2),
        depths=(3, 4),
        epochs_per_stage=1,
        warmup_epochs=0,
        num_to_drop=(3,),
        skip_dropout=(0.1, 0.4),
        train_data=cifar_shaped(2, 0),
        valid_data=cifar_shaped(2, 1),
        device="cuda",
        mixed_precision=True,
        log_dir=tmp_path,
        progress=False,
    )
    architecture = trainer.fit()
    assert all(p.is_cuda for p in trainer.model.parameters())  # the second stage's network too
    assert all(alpha.is_cuda and torch.isfinite(alpha).all() for alpha in trainer.alphas)
    fixed = DartsNetwork(3, 4, 10, n_layers=5, n_nodes=2)
    apply_fixed_architecture(fixed, architecture)
    assert fixed.cuda()(torch.randn(2, 3, 32, 32, device="cuda")).shape == (2, 10)


def test_a_darts_step_replayed_as_a_cuda_graph_matches_the_eager_step() -> None:
    states = []
    for capture in (False, True):
        torch.manual_seed(0)
        model = DartsNetwork(3, 8, 10, n_layers=3, n_nodes=3)
        trainer = DartsTrainer(
            model,
            train_data=cifar_shaped(6, 0),
            valid_data=cifar_shaped(6, 1),
            num_epochs=1,
            device="cuda",
            capture_step=capture,
            arch_lr=0.01,
            progress=False,
        )
        trainer.train_epoch(0)  # 3 eager warm-up steps, the recording, 2 replays
        if capture:
            assert trainer.capture_note is None
        states.append(
            ([a.detach().cpu() for a in trainer.alphas], {k: v.cpu() for k, v in model.state_dict().items()})
        )
    (alphas, weights), (alphas_replayed, weights_replayed) = states
    for a, b in zip(alphas, alphas_replayed, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    for name, value in weights.items():
        torch.testing.assert_close(value, weights_replayed[name], rtol=1e-3, atol=1e-4, msg=name)
