"""The Ray training service on a real cluster (the ``ray_cluster`` fixture: nodes in a network
namespace): what the contract suite cannot say for every platform."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import textwrap
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from manager.config import TrainingServiceConfig
from manager.training.base import LaunchState, TrialSpec
from manager.training.ray import RayTrainingService, actor_name, create_ray_service
from manager.training.ray_connect import connect
from manager.training.registry import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
    import os, sys, time
    print("CUDA_VISIBLE_DEVICES=" + os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
    if sys.argv[1] == "hangs":
        time.sleep(600)
"""


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 60))


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "trial.py").write_text(textwrap.dedent(SCRIPT))
    return folder


def make_spec(code: Path, behaviour: str) -> TrialSpec:
    trial = f"t{uuid.uuid4().hex[:6]}"
    return TrialSpec(
        trial_id=trial,
        experiment_id="rayexp",
        sequence_id=0,
        command=f"{sys.executable} trial.py {behaviour}",
        working_dir=code,
        trial_dir=code.parent / "trials" / trial,
        env={"PYTHONPATH": str(REPO)},
    )


def service_for(address: str, **fields: Any) -> RayTrainingService:
    config = TrainingServiceConfig(platform="ray", address=address, **fields)
    return create_ray_service(config, ServiceSettings(kill_grace=1.0))


def test_a_resource_no_node_has_is_refused_at_create_in_one_line(ray_cluster: Any) -> None:
    with pytest.raises(ValueError) as info:
        service_for(ray_cluster.address, resources={"tpu_pod": 1.0})
    message = str(info.value)
    assert message.startswith("trialCpuNumber/trialGpuNumber/trainingService.resources: no node of the Ray")
    assert "tpu_pod 1" in message and "\n" not in message


def test_one_daemon_serves_one_cluster(ray_cluster: Any) -> None:
    connect(ray_cluster.address)
    with pytest.raises(ValueError, match="one daemon serves one Ray cluster"):
        connect("127.0.0.1:1")


def test_a_cpu_trial_sees_no_gpu_and_a_gpu_trial_sees_the_ones_ray_gave_it(
    ray_cluster: Any, code: Path
) -> None:
    async def body() -> None:
        for gpus, expected in ((0, ""), (1, None)):
            service = service_for(ray_cluster.address, trial_gpu_number=gpus)
            spec = make_spec(code, "prints")
            await service.submit(spec, {"parameters": {}})
            assert (await service.wait(spec.trial_id)).succeeded
            seen = (spec.trial_dir / "stdout").read_text().strip().removeprefix("CUDA_VISIBLE_DEVICES=")
            if expected is None:
                assert seen in {"0", "1"}
            else:
                assert seen == expected

    run(body())


def test_a_trial_whose_actor_dies_ends_lost_and_names_its_node(ray_cluster: Any, code: Path) -> None:
    async def body() -> None:
        service = service_for(ray_cluster.address)
        spec = make_spec(code, "hangs")
        process = await service.submit(spec, {"parameters": {}})
        waiter = asyncio.create_task(service.wait(spec.trial_id))
        service.ray.kill(service.ray.get_actor(actor_name(spec), namespace="nasctl"))  # as if its node died
        exit_ = await waiter
        with contextlib.suppress(ProcessLookupError):  # Ray ends a worker's children; grandchildren not
            os.kill(process.pid, signal.SIGKILL)
        assert (exit_.lost, exit_.succeeded, exit_.exit_code, exit_.signal) == (True, False, None, None)
        assert exit_.reason is not None and "node 127.0.0.1" in exit_.reason

    run(body())


def test_an_actor_whose_start_never_ran_is_claimed_and_the_trial_launches_again(
    ray_cluster: Any, code: Path
) -> None:
    async def body() -> None:
        service = service_for(ray_cluster.address)
        spec = make_spec(code, "prints")
        await asyncio.to_thread(service._new_actor, spec, actor_name(spec))  # the daemon died here
        found = await service_for(ray_cluster.address).find_launch(spec)
        assert found.state is LaunchState.NOT_STARTED
        await service.submit(spec, {"parameters": {}})  # the name is free again
        assert (await service.wait(spec.trial_id)).succeeded

    run(body())


def test_output_written_while_no_daemon_watched_is_copied_once(ray_cluster: Any, code: Path) -> None:
    (code / "late.py").write_text("import time\nprint('early', flush=True)\ntime.sleep(1)\nprint('late')\n")

    async def body() -> None:
        first = service_for(ray_cluster.address)
        spec = dataclasses.replace(make_spec(code, ""), command=f"{sys.executable} late.py")
        process = await first.submit(spec, {"parameters": {}})
        await first.close()  # the daemon stops copying (it crashed)
        await asyncio.sleep(2)
        found = await service_for(ray_cluster.address).find_launch(spec)
        assert (found.state, found.process) == (LaunchState.ENDED, process)
        assert (spec.trial_dir / "stdout").read_text() == "early\nlate\n"

    run(body())
