"""The Ray training service: every trial is a process on a node of a Ray cluster.

One detached actor per trial (:class:`manager.training.ray_runner.TrialRunner`, shipped by value
so nasctl need not be installed on the nodes), named ``<experimentId>.<trialId>`` in namespace
``nasctl``, with the trial's resources (``trialCpuNumber``, ``trialGpuNumber``,
``trainingService.resources``). trialCodeDirectory travels zipped through Ray's object store
(once per content; Ray's ``runtime_env`` working_dir takes a local folder only per job, i.e.
per ``ray.init``, and one daemon serves many experiments). The actor starts the trial's process
on its node and keeps its stdout, stderr and metrics.jsonl there; the
cluster shares no filesystem, so a mirror task copies new bytes into the daemon's trial folder
every :data:`MIRROR_SECONDS`. The copies have the local service's names, so ``read_metrics`` and
the REST log routes read them as they would a local trial's. A copy's size is its offset into the
node's file, so a daemon that restarts continues where the last one stopped: nothing lost or doubled.

Recovery (docs/architecture.md, "Crash recovery") finds a trial by its actor's name alone.
``find_launch`` asks the actor ``claim_unstarted``: True means no start ran nor ever will (the
actor is killed so the name can be used again); else the actor knows its process. Once a trial
has ended and its bytes are copied, the actor is killed (it holds its resources until then) and
``.ray_launch.json`` in the trial folder keeps its identity, so a later ``find_launch`` still
answers ENDED. Every service of a daemon shares one Ray connection (``ray.init`` is per process:
:mod:`manager.training.ray_connect`); a :class:`~manager.training.ray_watch.ClusterWatch` tells
when the cluster is gone. Ray is imported only for an experiment that names ``platform: ray``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manager.training import ray_runner
from manager.training.base import (
    FoundLaunch,
    LaunchState,
    MetricsChunk,
    TrainingService,
    TrialExit,
    TrialProcess,
    TrialSpec,
)
from manager.training.metric_channel import read_metrics_file
from manager.training.ray_connect import (
    NAMESPACE,
    check_resources,
    connect,
    connected_gcs_address,
    import_ray,
    trial_resources,
)
from manager.training.ray_files import (
    append,
    copy_lock,
    folder_signature,
    fresh_trial_dir,
    read_launch_file,
    sizes,
    write_launch_file,
    zip_folder,
)
from manager.training.ray_watch import PROBE_SECONDS, ClusterWatch, reachable
from manager.training.registry import DEFAULT_KILL_GRACE, ServiceSettings
from trials import env
from trials.messages import one_line

if TYPE_CHECKING:
    from manager.config import TrainingServiceConfig

log = logging.getLogger(__name__)

#: Seconds between two copies of a live trial's new bytes.
MIRROR_SECONDS = 0.15
#: Bytes of one stream fetched by one call.
READ_LIMIT = 1 << 20
#: How long a recovery's question to an actor may take.
ANSWER_SECONDS = 60.0
#: How long a relaunch waits for a killed actor's name to become free.
NAME_FREE_SECONDS = 15.0
SAME_PROCESS_TOLERANCE = 0.05
_PLACEMENT = {"PACK": "DEFAULT", "SPREAD": "SPREAD"}  # Ray's actor scheduling strategy by our name


def create_ray_service(config: TrainingServiceConfig, settings: ServiceSettings) -> RayTrainingService:
    """The registry's factory for ``platform: ray``: connects, and checks a node fits one trial."""
    address = config.address or "auto"
    ray = connect(address)
    need = trial_resources(config)
    check_resources(ray, need, address)
    return RayTrainingService(
        need,
        placement=config.placement_strategy,
        kill_grace=settings.kill_grace,
        watch=ClusterWatch(connected_gcs_address() or address, address),
    )


def actor_name(spec: TrialSpec) -> str:
    return f"{spec.experiment_id}.{spec.trial_id}"


@dataclass
class _Trial:
    spec: TrialSpec
    actor: Any
    process: TrialProcess
    node_ip: str
    via_shell: bool
    adopted: bool
    mirror: asyncio.Task[None] | None = None


class RayTrainingService(TrainingService):
    """Runs trials as processes on Ray nodes; see the module docstring."""

    assigns_gpus = True  # Ray places a trial on a node with free GPUs and sets CUDA_VISIBLE_DEVICES

    def __init__(
        self,
        resources: Mapping[str, float],
        placement: str = "PACK",
        kill_grace: float = DEFAULT_KILL_GRACE,
        mirror_seconds: float = MIRROR_SECONDS,
        watch: ClusterWatch | None = None,
    ) -> None:
        self.ray = import_ray()
        self.watch = watch
        self.resources = dict(resources)
        self.placement = placement
        self.kill_grace = kill_grace
        self.mirror_seconds = mirror_seconds
        self._trials: dict[str, _Trial] = {}
        self._actor_class: Any = None
        self._packages: dict[tuple[Path, str], tuple[str, list[Any]]] = {}

    async def _code_package(self, folder: Path) -> tuple[str, list[Any]]:
        """(content hash, [ObjectRef of the zip]) of ``folder``, put in the object store once per content."""
        signature = await asyncio.to_thread(folder_signature, folder)
        cached = self._packages.get((folder, signature))
        if cached is None:
            data, digest = await asyncio.to_thread(zip_folder, folder)
            ref = await asyncio.to_thread(self.ray.put, data)
            cached = self._packages[(folder, signature)] = (digest, [ref])
        return cached

    # -- launch --------------------------------------------------------------------------------
    async def submit(self, spec: TrialSpec, parameter: Mapping[str, Any]) -> TrialProcess:
        if spec.trial_id in self._trials:
            raise RuntimeError(f"trial {spec.trial_id} is already running")
        if self.watch is not None:
            if self.watch.gone is not None:
                raise RuntimeError(self.watch.gone)
            self.watch.start()
        if not spec.working_dir.is_dir():
            raise FileNotFoundError(f"trialCodeDirectory {spec.working_dir} does not exist")
        parameter_json = json.dumps(dict(parameter), allow_nan=True)
        await asyncio.to_thread(fresh_trial_dir, spec.trial_dir, parameter_json)
        actor = await self._create_actor(spec)
        variables = {
            **spec.env,
            env.EXPERIMENT_ID: spec.experiment_id,
            env.TRIAL_ID: spec.trial_id,
            env.SEQUENCE_ID: str(spec.sequence_id),
        }
        try:
            code = await self._code_package(spec.working_dir)
            identity = await actor.start.remote(spec.command, variables, parameter_json, code)
        except BaseException as exc:
            await asyncio.shield(asyncio.to_thread(self._kill_actor, actor))
            if isinstance(exc, Exception) and _is_ray_error(self.ray, exc):
                raise RuntimeError(
                    f"trial {spec.trial_id}: Ray could not start it: {one_line(exc)}"
                ) from None
            raise
        trial = self._track(spec, actor, identity, adopted=False)
        return trial.process

    async def _create_actor(self, spec: TrialSpec) -> Any:
        """A new actor for the trial; "already running" when one with its name has started it."""
        name = actor_name(spec)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NAME_FREE_SECONDS
        while True:
            try:
                return await asyncio.to_thread(self._new_actor, spec, name)
            except ValueError as exc:  # the name is taken
                if "already" not in str(exc) and "exists" not in str(exc):
                    raise
            existing = await self._lookup(spec)
            if existing is not None:
                with contextlib.suppress(Exception):
                    if (await existing.state.remote())["state"] != ray_runner.NOT_STARTED:
                        raise RuntimeError(f"trial {spec.trial_id} is already running (actor {name})")
            if loop.time() > deadline:
                raise RuntimeError(f"trial {spec.trial_id}: the Ray actor name {name} stays taken")
            await asyncio.sleep(0.2)  # a killed actor's name is freed a moment later

    def _new_actor(self, spec: TrialSpec, name: str) -> Any:
        if self._actor_class is None:
            self._actor_class = self.ray.remote(ray_runner.TrialRunner)
        custom = {k: v for k, v in self.resources.items() if k not in ("CPU", "GPU")}
        return self._actor_class.options(
            name=name,
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=False,
            num_cpus=self.resources.get("CPU", 1.0),
            num_gpus=self.resources.get("GPU", 0.0),
            resources=custom,
            scheduling_strategy=_PLACEMENT.get(self.placement, "DEFAULT"),
            max_restarts=0,
            max_task_retries=0,
        ).remote(spec.experiment_id, spec.trial_id, self.kill_grace)

    def _track(self, spec: TrialSpec, actor: Any, identity: Mapping[str, Any], adopted: bool) -> _Trial:
        process = TrialProcess(spec.trial_id, int(identity["pid"]), float(identity["create_time"]))
        trial = _Trial(
            spec, actor, process, str(identity.get("node_ip")), bool(identity.get("via_shell")), adopted
        )
        self._trials[spec.trial_id] = trial
        trial.mirror = asyncio.create_task(self._mirror(trial), name=f"ray-mirror-{spec.trial_id}")
        return trial

    # -- the end -------------------------------------------------------------------------------
    async def wait(self, trial_id: str) -> TrialExit:
        trial = self._trials[trial_id]
        code: int | None = None
        lost: str | None = None
        try:
            code = await self._end_or_gone(trial)
        except Exception as exc:
            if not _is_ray_error(self.ray, exc):
                raise
            lost = _lost_reason(trial.node_ip, exc)
            if self.watch is not None and not await asyncio.to_thread(
                reachable, self.watch.gcs_address, PROBE_SECONDS
            ):  # the head is away too: no call would come back; wait for the watch's verdict
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.watch.wait_gone(), self.watch.gone_seconds + 5)
        if self.watch is not None and self.watch.gone is not None:  # touch nothing of Ray now
            await self._stop_mirror(trial)
            self._trials.pop(trial_id, None)
            return TrialExit(None, None, self.watch.gone, lost=True)
        await self._stop_mirror(trial)
        with contextlib.suppress(Exception):
            await self._copy(trial.spec, trial.actor)
        self._trials.pop(trial_id, None)
        await self._retire(trial.spec, trial.actor, trial.process, code)
        if lost is not None:
            return TrialExit(None, None, lost, lost=True)
        if trial.adopted or code is None:
            return TrialExit.unobserved()
        return TrialExit.from_returncode(code, via_shell=trial.via_shell)

    async def _end_or_gone(self, trial: _Trial) -> int | None:
        """The trial's exit code, or None as soon as the watch finds the cluster gone."""
        ended = asyncio.ensure_future(_awaitable(trial.actor.wait.remote()))
        if self.watch is None:
            return await ended
        gone = asyncio.ensure_future(self.watch.wait_gone())
        await asyncio.wait({ended, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not ended.done():
            ended.cancel()
            return None
        return await ended

    async def why_waiting(self, spec: TrialSpec) -> str | None:
        if self.watch is not None and self.watch.gone is not None:
            return self.watch.gone
        return await asyncio.to_thread(self._why_waiting)

    def _why_waiting(self) -> str | None:
        """What one trial asks against what the whole cluster has free now (Ray holds the actor)."""
        try:
            free = self.ray.available_resources()
        except Exception as exc:  # any failure to answer is the reason itself
            return f"the Ray cluster does not answer: {one_line(exc)[:200]}"
        asked = ", ".join(f"{name} {amount:g}" for name, amount in self.resources.items())
        has = ", ".join(f"{name} {free.get(name, 0.0):g}" for name in self.resources)
        return f"waiting for a Ray node with {asked} free (free in the whole cluster now: {has})"

    async def kill(self, trial_id: str, grace: float | None = None) -> None:
        trial = self._trials.get(trial_id)
        if trial is None or (self.watch is not None and self.watch.gone is not None):
            return
        grace = self.kill_grace if grace is None else grace
        try:
            await trial.actor.kill.remote(grace)
        except Exception as exc:
            if not _is_ray_error(self.ray, exc):
                raise
            await asyncio.to_thread(self._kill_actor, trial.actor)  # the backstop: its node is gone anyway

    # -- metrics and logs ------------------------------------------------------------------------
    def read_metrics(self, spec: TrialSpec, offset: int, final: bool = False) -> MetricsChunk:
        return read_metrics_file(spec.trial_dir / env.METRICS_FILE_NAME, offset, final)

    async def _mirror(self, trial: _Trial) -> None:
        while True:
            await asyncio.sleep(self.mirror_seconds)
            try:
                await self._copy(trial.spec, trial.actor)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _is_ray_error(self.ray, exc):
                    return  # wait() reports the actor's death
                log.warning("trial %s: cannot copy its output: %s", trial.spec.trial_id, exc)

    async def _copy(self, spec: TrialSpec, actor: Any) -> None:
        await asyncio.to_thread(self._copy_blocking, spec.trial_dir, actor)

    def _copy_blocking(self, trial_dir: Path, actor: Any) -> None:
        """Append the node's new bytes to the daemon's copies (their sizes are the offsets).

        One lock per trial folder for the whole process: two services of one daemon (a test's,
        or recovery's next to a runner's) never append the same bytes twice.
        """
        with copy_lock(trial_dir):
            while True:
                offsets = sizes(trial_dir)
                chunks = self.ray.get(actor.read_many.remote(offsets, READ_LIMIT), timeout=ANSWER_SECONDS)
                if not any(chunks.values()):
                    return
                append(trial_dir, chunks)
                if all(len(data) < READ_LIMIT for data in chunks.values()):
                    return

    async def _stop_mirror(self, trial: _Trial) -> None:
        if trial.mirror is not None:
            trial.mirror.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await trial.mirror

    # -- recovery ------------------------------------------------------------------------------
    async def is_alive(self, spec: TrialSpec, process: TrialProcess) -> bool:
        state = await self._settle_state(spec)
        if state is None or not _same(state.get("identity"), process):
            return False
        return state["state"] == ray_runner.RUNNING

    async def adopt(self, spec: TrialSpec, process: TrialProcess) -> bool:
        if spec.trial_id in self._trials:
            raise RuntimeError(f"trial {spec.trial_id} is already running")
        state = await self._settle_state(spec)
        if state is None or state["state"] != ray_runner.RUNNING or not _same(state["identity"], process):
            return False
        actor = await self._lookup(spec)
        if actor is None:
            return False
        if self.watch is not None:
            self.watch.start()
        self._track(spec, actor, state["identity"], adopted=True)
        return True

    async def find_launch(self, spec: TrialSpec) -> FoundLaunch:
        actor = await self._lookup(spec)
        if actor is not None:
            try:
                claimed = await asyncio.wait_for(_awaitable(actor.claim_unstarted.remote()), ANSWER_SECONDS)
            except Exception as exc:
                if not _is_ray_error(self.ray, exc):
                    raise
                actor = None  # dead or dying: its launch file (if any) says what it did
            else:
                if claimed:
                    await asyncio.to_thread(self._kill_actor, actor)
                    return FoundLaunch(LaunchState.NOT_STARTED)
        state = await self._settle_state(spec) if actor is not None else None
        if state is not None and state["state"] == ray_runner.RUNNING:
            identity = state["identity"]
            return FoundLaunch(LaunchState.RUNNING, _process(spec, identity))
        launched = await asyncio.to_thread(read_launch_file, spec.trial_dir)
        if launched is not None:
            return FoundLaunch(LaunchState.ENDED, _process(spec, launched))
        if actor is not None:
            raise RuntimeError(
                f"trial {spec.trial_id}: its Ray actor started it but cannot say how it stands"
            )
        return FoundLaunch(LaunchState.NOT_STARTED)

    async def kill_stale(self, spec: TrialSpec, process: TrialProcess) -> bool:
        actor = await self._lookup(spec)
        state = await self._settle_state(spec)
        if actor is None or state is None or state["state"] != ray_runner.RUNNING:
            return False
        if not _same(state["identity"], process):
            return False
        with contextlib.suppress(Exception):
            await actor.kill.remote(self.kill_grace)
        with contextlib.suppress(Exception):
            await self._copy(spec, actor)
        await self._retire(spec, actor, process, None)
        return True

    async def _settle_state(self, spec: TrialSpec) -> dict[str, Any] | None:
        """The actor's state after copying its new bytes; an ended trial's actor is retired here
        (the trial folder then answers for it). None when there is no live actor."""
        actor = await self._lookup(spec)
        if actor is None:
            return None
        try:
            state: dict[str, Any] = await asyncio.wait_for(_awaitable(actor.state.remote()), ANSWER_SECONDS)
            if state["state"] != ray_runner.NOT_STARTED and spec.trial_id not in self._trials:
                await self._copy(spec, actor)
        except Exception as exc:
            if not _is_ray_error(self.ray, exc):
                raise
            return None
        if state["state"] == ray_runner.ENDED and spec.trial_id not in self._trials:
            identity = state["identity"]
            await self._retire(spec, actor, _process(spec, identity), state.get("exit_code"))
        return state

    async def _retire(self, spec: TrialSpec, actor: Any, process: TrialProcess, code: int | None) -> None:
        """Keep the launch's identity in the trial folder, then free the actor and its resources."""
        await asyncio.to_thread(write_launch_file, spec.trial_dir, process, code)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_awaitable(actor.close.remote()), 10)
        await asyncio.to_thread(self._kill_actor, actor)

    async def _lookup(self, spec: TrialSpec) -> Any:
        return await asyncio.to_thread(self._get_actor, actor_name(spec))

    def _get_actor(self, name: str) -> Any:
        try:
            return self.ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:  # no such actor
            return None

    def _kill_actor(self, actor: Any) -> None:
        with contextlib.suppress(Exception):
            self.ray.kill(actor, no_restart=True)

    async def close(self) -> None:
        """Stop copying; the trials' actors stay (the caller kills trials first; recovery needs the rest)."""
        for trial in list(self._trials.values()):
            await self._stop_mirror(trial)
        if self.watch is not None:
            await self.watch.close()


def _is_ray_error(ray: Any, exc: BaseException) -> bool:
    exceptions = ray.exceptions
    kinds = tuple(
        getattr(exceptions, name)
        for name in ("RayActorError", "ActorDiedError", "ActorUnavailableError", "RayError")
        if hasattr(exceptions, name)
    )
    return isinstance(exc, kinds)


def _lost_reason(node_ip: str, exc: BaseException) -> str:
    text = one_line(exc)
    if "node" in text.lower() and ("died" in text.lower() or "dead" in text.lower()):
        return f"node {node_ip} died"
    return f"its Ray actor on node {node_ip} died: {text[:300]}"


async def _awaitable(ref: Any) -> Any:
    return await ref


def _same(identity: Mapping[str, Any] | None, process: TrialProcess) -> bool:
    return (
        identity is not None
        and int(identity["pid"]) == process.pid
        and abs(float(identity["create_time"]) - process.create_time) <= SAME_PROCESS_TOLERANCE
    )


def _process(spec: TrialSpec, identity: Mapping[str, Any]) -> TrialProcess:
    return TrialProcess(spec.trial_id, int(identity["pid"]), float(identity["create_time"]))
