"""The TrainingService contract, run over every implementation (local processes, simulated).

Each test states one promise of :class:`manager.training.base.TrainingService` that the loop and
recovery rely on. A harness per implementation turns a named behaviour ("succeeds", "fails",
"hangs", "no_final") into a trial of that platform: a real Python process for ``local``, a
script on a fast clock for ``simulated`` (``local-warm``: the same process forked from a
warm launcher's server, ``trialPreload``), a real process on a Ray cluster's node for ``ray``
(only where ``NASCTL_RAY_ADDRESS`` names a running cluster: tests/ray_cluster/ starts one in a network
namespace and sets it). A new platform joins by adding its harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from manager.clock import Clock
from manager.training.base import LaunchState, MetricsChunk, TrainingService, TrialSpec
from manager.training.local import LocalTrainingService
from manager.training.simulated import Report, SimulatedCluster, SimulatedTrainingService, TrialScript

PARAMETER = {"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"conv": "conv3x3"}}

TRIAL_SCRIPT = """
    import sys, time
    import trials

    what = sys.argv[1]
    if what == "succeeds":
        trials.report_intermediate_result(0.1)
        trials.report_intermediate_result(0.2)
        trials.report_final_result(0.9)
    elif what == "fails":
        print("boom", file=sys.stderr)
        sys.exit(3)
    elif what == "hangs":
        trials.report_intermediate_result(0.1)
        time.sleep(600)
    elif what == "no_final":
        trials.report_intermediate_result(0.1)
"""

SCRIPTS = {
    "succeeds": TrialScript((Report(0.1, 0.1), Report(0.2, 0.2), Report(0.3, 0.9, final=True)), duration=0.4),
    "fails": TrialScript(duration=0.2, exit_code=3, stderr="boom\n"),
    "hangs": TrialScript((Report(0.1, 0.1),), duration=None),
    "no_final": TrialScript((Report(0.1, 0.1),), duration=0.2),
}


class Harness(Protocol):
    def service(self) -> TrainingService:
        """A service as a new daemon would open it, on the same machine as the others."""

    def spec(self, behaviour: str) -> TrialSpec:
        """A fresh trial that behaves as named."""


class _Specs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.code = root / "code"
        self.code.mkdir()
        self._ids = itertools.count()

    def make(self, command: str) -> TrialSpec:
        number = next(self._ids)
        return TrialSpec(
            trial_id=f"t{number}",
            experiment_id="exp",
            sequence_id=number,
            command=command,
            working_dir=self.code,
            trial_dir=self.root / "trials" / f"t{number}",
        )


class LocalHarness(_Specs):
    def __init__(self, root: Path, preload: tuple[str, ...] = ()) -> None:
        super().__init__(root)
        self.preload = preload  # local-warm: trials are forked from a server that imported these
        (self.code / "trial.py").write_text(textwrap.dedent(TRIAL_SCRIPT))

    def service(self) -> TrainingService:
        return LocalTrainingService(kill_grace=2.0, preload=self.preload)

    def spec(self, behaviour: str) -> TrialSpec:
        return self.make(f"{sys.executable} trial.py {behaviour}")


class SimulatedHarness(_Specs):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.cluster = SimulatedCluster(Clock(speed=100.0), lambda spec, _parameter: SCRIPTS[spec.command])

    def service(self) -> TrainingService:
        return SimulatedTrainingService(self.cluster)

    def spec(self, behaviour: str) -> TrialSpec:
        return self.make(behaviour)


class RayHarness(LocalHarness):
    """Trials on the Ray cluster at ``address``: the local harness's script, run by a node's actor.

    Each test has its own experiment id, so actor names never meet; ``close`` ends whatever a
    test left (a trial killed but never awaited keeps its actor and its CPU).
    """

    def __init__(self, root: Path, address: str) -> None:
        super().__init__(root)
        self.address = address
        self.experiment_id = f"contract-{uuid.uuid4().hex[:8]}"

    def service(self) -> TrainingService:
        from manager.training.ray import RayTrainingService
        from manager.training.ray_connect import connect

        connect(self.address)
        return RayTrainingService({"CPU": 1.0}, kill_grace=2.0)

    def spec(self, behaviour: str) -> TrialSpec:
        spec = super().spec(behaviour)
        repo = str(Path(__file__).resolve().parents[2])  # the trial imports `trials` from here
        return dataclasses.replace(spec, experiment_id=self.experiment_id, env={"PYTHONPATH": repo})

    def close(self) -> None:
        import ray

        from manager.training.ray_connect import NAMESPACE

        for entry in ray.util.list_named_actors(all_namespaces=True):
            if entry["namespace"] == NAMESPACE and entry["name"].startswith(self.experiment_id + "."):
                actor = ray.get_actor(entry["name"], namespace=NAMESPACE)
                with contextlib.suppress(Exception):  # already dead: nothing of it runs
                    ray.get(actor.kill.remote(0.5), timeout=20)
                ray.kill(actor, no_restart=True)


RAY_ADDRESS = os.environ.get("NASCTL_RAY_ADDRESS")


@pytest.fixture(params=["local", "local-warm", "simulated", *(["ray"] if RAY_ADDRESS else [])])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "ray":
        assert RAY_ADDRESS is not None
        ray_harness = RayHarness(tmp_path, RAY_ADDRESS)
        yield ray_harness
        ray_harness.close()
    elif request.param == "simulated":
        yield SimulatedHarness(tmp_path)
    else:
        yield LocalHarness(tmp_path, ("trials",) if request.param == "local-warm" else ())


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


async def reports_after(service: TrainingService, spec: TrialSpec, count: int) -> MetricsChunk:
    """Read the channel until ``count`` records are there (the trial is live)."""
    deadline = time.monotonic() + 20
    while True:
        chunk = service.read_metrics(spec, 0)
        if len(chunk.reports) >= count or time.monotonic() > deadline:
            return chunk
        await asyncio.sleep(0.01)


def test_a_trial_that_exits_cleanly_is_observed_as_succeeded(harness: Harness) -> None:
    async def body() -> None:
        service = harness.service()
        spec = harness.spec("succeeds")
        await service.submit(spec, PARAMETER)
        exit_ = await service.wait(spec.trial_id)
        assert (exit_.observed, exit_.succeeded, exit_.exit_code, exit_.reason) == (True, True, 0, None)

    run(body())


def test_an_exit_code_is_kept_and_stderr_lands_in_the_trial_folder(harness: Harness) -> None:
    async def body() -> None:
        service = harness.service()
        spec = harness.spec("fails")
        await service.submit(spec, PARAMETER)
        exit_ = await service.wait(spec.trial_id)
        assert (exit_.exit_code, exit_.signal, exit_.reason) == (3, None, "exit code 3")
        assert (spec.trial_dir / "stderr").read_text().strip() == "boom"

    run(body())


def test_records_come_in_order_and_an_offset_reads_only_what_follows(harness: Harness) -> None:
    async def body() -> None:
        service = harness.service()
        spec = harness.spec("succeeds")
        await service.submit(spec, PARAMETER)
        await service.wait(spec.trial_id)
        chunk = service.read_metrics(spec, 0, final=True)
        assert [(r.kind, r.default_value) for r in chunk.reports] == [
            ("PERIODICAL", 0.1),
            ("PERIODICAL", 0.2),
            ("FINAL", 0.9),
        ]
        assert [r.sequence for r in chunk.reports] == [0, 1, 0]
        assert chunk.invalid == ()
        again = service.read_metrics(spec, chunk.offset, final=True)
        assert (again.reports, again.offset) == ((), chunk.offset)
        assert service.read_metrics(spec, 0, final=True) == chunk  # reading never consumes

    run(body())


def test_kill_ends_a_running_trial_and_wait_reports_the_signal(harness: Harness) -> None:
    async def body() -> None:
        service = harness.service()
        spec = harness.spec("hangs")
        await service.submit(spec, PARAMETER)
        assert len((await reports_after(service, spec, 1)).reports) == 1
        waiter = asyncio.create_task(service.wait(spec.trial_id))
        await service.kill(spec.trial_id)
        exit_ = await waiter
        assert (exit_.succeeded, exit_.signal) == (False, signal.SIGTERM)

    run(body())


def test_a_trial_id_cannot_be_submitted_twice_while_it_runs(harness: Harness) -> None:
    async def body() -> None:
        service = harness.service()
        spec = harness.spec("hangs")
        await service.submit(spec, PARAMETER)
        with pytest.raises(RuntimeError, match="already running"):
            await service.submit(spec, PARAMETER)
        await service.kill(spec.trial_id)

    run(body())


def test_is_alive_follows_the_trial_and_refuses_another_identity(harness: Harness) -> None:
    async def body() -> None:
        service = harness.service()
        spec = harness.spec("no_final")
        process = await service.submit(spec, PARAMETER)
        assert await service.is_alive(spec, process)
        reused = type(process)(process.trial_id, process.pid, process.create_time - 3600)
        assert not await service.is_alive(spec, reused)  # a reused pid is not our trial
        await service.wait(spec.trial_id)
        assert not await service.is_alive(spec, process)

    run(body())


def test_a_new_service_adopts_a_live_trial_and_sees_it_end_unobserved(harness: Harness) -> None:
    async def body() -> None:
        first = harness.service()
        spec = harness.spec("hangs")
        process = await first.submit(spec, PARAMETER)
        await reports_after(first, spec, 1)
        second = harness.service()  # the daemon restarted; the trial did not notice
        assert await second.adopt(spec, process)
        assert [r.default_value for r in second.read_metrics(spec, 0).reports] == [0.1]
        waiter = asyncio.create_task(second.wait(spec.trial_id))
        await second.kill(spec.trial_id)
        exit_ = await waiter
        assert (exit_.observed, exit_.exit_code, exit_.signal) == (False, None, None)
        assert not await second.is_alive(spec, process)

    run(body())


def test_a_trial_that_has_ended_cannot_be_adopted(harness: Harness) -> None:
    async def body() -> None:
        first = harness.service()
        spec = harness.spec("no_final")
        process = await first.submit(spec, PARAMETER)
        await first.wait(spec.trial_id)
        assert not await harness.service().adopt(spec, process)

    run(body())


def test_kill_stale_ends_a_trial_an_earlier_service_started(harness: Harness) -> None:
    async def body() -> None:
        first = harness.service()
        spec = harness.spec("hangs")
        process = await first.submit(spec, PARAMETER)
        waiter = asyncio.create_task(first.wait(spec.trial_id))
        assert await harness.service().kill_stale(spec, process)
        await waiter
        assert not await harness.service().is_alive(spec, process)
        assert not await harness.service().kill_stale(spec, process)  # nothing left to kill

    run(body())


def test_a_trial_never_submitted_is_found_not_started(harness: Harness) -> None:
    async def body() -> None:
        spec = harness.spec("succeeds")
        found = await harness.service().find_launch(spec)
        assert (found.state, found.process) == (LaunchState.NOT_STARTED, None)

    run(body())


def test_a_new_service_finds_a_live_launch_and_can_adopt_it(harness: Harness) -> None:
    async def body() -> None:
        first = harness.service()
        spec = harness.spec("hangs")
        process = await first.submit(spec, PARAMETER)  # the daemon dies before it stores this
        second = harness.service()
        found = await second.find_launch(spec)
        assert found.state is LaunchState.RUNNING
        assert found.process is not None and found.process.pid == process.pid
        assert await second.is_alive(spec, found.process)
        assert await second.adopt(spec, found.process)
        waiter = asyncio.create_task(second.wait(spec.trial_id))
        await second.kill(spec.trial_id)
        await waiter

    run(body())


def test_a_launch_that_ran_and_ended_is_found_ended_with_its_metrics(harness: Harness) -> None:
    async def body() -> None:
        first = harness.service()
        spec = harness.spec("succeeds")
        process = await first.submit(spec, PARAMETER)
        await first.wait(spec.trial_id)
        second = harness.service()
        found = await second.find_launch(spec)
        assert found.state is LaunchState.ENDED
        assert found.process is not None and found.process.pid == process.pid
        assert not await second.is_alive(spec, found.process)
        assert [r.kind for r in second.read_metrics(spec, 0, final=True).reports][-1] == "FINAL"

    run(body())
