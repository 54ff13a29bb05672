"""A real multi-node Ray cluster on this machine, for tests that run inside a network namespace.

Why a namespace: Ray binds the machine's routable address even when told 127.0.0.1, and servers
in tests listen on loopback only. ``tests/test_ray_netns.py`` therefore starts the Ray tests under
``unshare --net --pid --mount-proc`` with only ``lo`` up; this module refuses nothing by itself but
is only imported there (``tests/ray_cluster/conftest.py`` skips the folder elsewhere).

The "nodes" are separate ``ray start`` invocations, each with its own ``--temp-dir``, so one node's
raylet can be told apart from the others (by that path in its command line) and SIGKILLed on its
own, as a fault test needs. ``ray stop --force`` is machine-wide (it kills every process named like
Ray's that it can see), so ``stop`` runs it only inside the private PID namespace that
``tests/test_ray_netns.py`` creates; everywhere it first kills exactly its own process trees.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

#: Set (to "1") by tests/test_ray_netns.py inside its namespaces: own network, PID and mount.
NETNS_ENV = "NASCTL_RAY_NETNS"
#: Smallest object store Ray accepts is 75 MiB; a little above it keeps memory use small.
OBJECT_STORE_BYTES = 80 * 1024 * 1024
#: GCS health checks every 500 ms, dead after 3 misses: a killed raylet is reported in ~2 s, not ~15 s.
#: Ray turns token auth on by itself once ~/.ray/auth_token exists (any local ``ray.init`` writes
#: one), so a node started after that would be refused by a head started before. The cluster is
#: reachable only over loopback in a private namespace: auth is off, explicitly, for all of it.
AUTH_ENV = {"RAY_AUTH_MODE": "disabled"}
HEALTH_CHECK_ENV = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


@dataclass(frozen=True)
class NodeSpec:
    """One ``ray start``: its name in tests, and what it offers the scheduler."""

    name: str
    num_cpus: int = 1
    num_gpus: int = 0
    resources: Mapping[str, float] = field(default_factory=dict)


HEAD = NodeSpec("head")
#: A node that only tasks asking for the custom resource ``node_a`` are placed on by that resource,
#: and a node with two fake GPUs (Ray believes ``--num-gpus``; nothing here has CUDA).
WORKERS = (NodeSpec("node_a", resources={"node_a": 1}), NodeSpec("gpu", num_gpus=2))


@dataclass(frozen=True)
class RayNode:
    """A started node: Ray's id for it, and its raylet's pid (the process a fault test kills)."""

    name: str
    node_id: str
    raylet_pid: int
    temp_dir: Path


def in_private_namespaces() -> bool:
    """True inside the network + PID namespace of tests/test_ray_netns.py (where ray stop is safe)."""
    return os.environ.get(NETNS_ENV) == "1"


def ray_command(*args: str) -> list[str]:
    """The ``ray`` CLI of this interpreter (the venv's bin/ need not be on PATH under make)."""
    return [sys.executable, "-m", "ray.scripts.scripts", *args]


def node_env() -> dict[str, str]:
    """The environment nodes start with: no usage stats, no auth, fast health checks, no GPUs.

    Workers inherit the raylet's environment, and Ray leaves ``CUDA_VISIBLE_DEVICES`` alone for
    tasks with ``num_gpus=0``; dropping it here makes such tasks see it unset, as on a real node.
    """
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(RAY_USAGE_STATS_ENABLED="0", **AUTH_ENV, **HEALTH_CHECK_ENV)
    return env


def free_ports(count: int, taken: set[int]) -> list[int]:
    """``count`` distinct free loopback ports not in ``taken`` (which grows by them).

    Held open together while chosen, so the kernel cannot hand out one twice; the namespace is
    private, so nobody else races us for them afterwards.
    """
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket()
            socks.append(sock)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            if port not in taken:
                ports.append(port)
                taken.add(port)
    finally:
        for sock in socks:
            sock.close()
    return ports


def is_loopback(host: str) -> bool:
    """Whether an address as ``ss`` prints it (``127.0.0.1``, ``[::ffff:127.0.0.1]``, ``*``) is loopback."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # "*": every address
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class RayCluster:
    """A head plus worker nodes started with ``ray start``, all on 127.0.0.1.

    Use as a context manager, or ``start()`` then ``stop()`` in a ``finally``; ``stop`` is safe to
    call twice and after a failed start.
    """

    def __init__(
        self,
        head: NodeSpec = HEAD,
        workers: Sequence[NodeSpec] = WORKERS,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``env``: added to every node's and driver's environment (e.g. token authentication)."""
        self.specs = (head, *workers)
        self.env = {**node_env(), **(env or {})}
        # Short on purpose: Ray's unix sockets live under it and their paths must stay < 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="nasray-", dir="/tmp"))
        self._ports: set[int] = set()
        (self.port,) = free_ports(1, self._ports)
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: dict[str, RayNode] = {}
        self.timings: dict[str, float] = {}
        self._temp_dirs: dict[str, Path] = {}
        self._known: dict[int, float] = {}  # pid -> create time of every process seen as ours
        self._starts = 0  # a restarted node gets a fresh temp dir: the old one holds its dead sockets

    def __enter__(self) -> RayCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- starting ---------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> None:
        """Start the head, then the workers side by side, and wait until Ray reports all alive."""
        began = time.monotonic()
        head, *workers = self.specs
        self._ray_start(head, ["--head", f"--port={self.port}", "--include-dashboard=false"], timeout)
        self.timings["head"] = time.monotonic() - began
        procs = [self._ray_start_async(spec, [f"--address={self.address}"]) for spec in workers]
        for spec, proc in zip(workers, procs, strict=True):
            self._finish_start(spec, proc, timeout)
        self.wait_ready(timeout)
        self.timings["ready"] = time.monotonic() - began

    def restart_node(self, name: str, timeout: float = 120) -> RayNode:
        """Start worker node ``name`` again (after ``kill_node``): a new Ray node with the same resources."""
        spec = next(s for s in self.specs if s.name == name)
        assert spec is not self.specs[0], "the head cannot be restarted: the cluster would be new"
        self._ray_start(spec, [f"--address={self.address}"], timeout)
        self.wait_ready(timeout)
        return self.nodes[name]

    def _args(self, spec: NodeSpec, temp_dir: Path, first: list[str]) -> list[str]:
        index = [s.name for s in self.specs].index(spec.name)
        low = 20000 + 200 * index  # disjoint worker-port ranges: three raylets share one address
        args = [
            "start",
            *first,
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={spec.num_cpus}",
            f"--num-gpus={spec.num_gpus}",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            f"--temp-dir={temp_dir}",
            f"--min-worker-port={low}",
            f"--max-worker-port={low + 199}",
            "--disable-usage-stats",
            "--log-style=record",
        ]
        if spec.resources:
            args.append(f"--resources={json.dumps(dict(spec.resources))}")
        # The dashboard agent has a fixed default port; two nodes on one address would collide on it.
        listen, grpc, runtime_env, metrics = free_ports(4, self._ports)
        args += [
            f"--dashboard-agent-listen-port={listen}",
            f"--dashboard-agent-grpc-port={grpc}",
            f"--runtime-env-agent-port={runtime_env}",
            f"--metrics-export-port={metrics}",
        ]
        return args

    def _ray_start_async(self, spec: NodeSpec, first: list[str]) -> subprocess.Popen[str]:
        self._starts += 1
        temp_dir = self.root / f"{spec.name}{self._starts}"
        temp_dir.mkdir()
        self._temp_dirs[spec.name] = temp_dir
        return subprocess.Popen(
            ray_command(*self._args(spec, temp_dir, first)),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _ray_start(self, spec: NodeSpec, first: list[str], timeout: float) -> None:
        self._finish_start(spec, self._ray_start_async(spec, first), timeout)

    def _finish_start(self, spec: NodeSpec, proc: subprocess.Popen[str], timeout: float) -> None:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise RuntimeError(f"ray start of node {spec.name} took over {timeout}s:\n{out}") from None
        if proc.returncode != 0:
            raise RuntimeError(f"ray start of node {spec.name} exited {proc.returncode}:\n{out}")
        raylet = self._raylet(spec.name)
        if raylet is None:
            raise RuntimeError(f"node {spec.name}: ray start succeeded but no raylet runs:\n{out}")
        node_id = re.search(r"--node_id=([0-9a-f]+)", " ".join(raylet.cmdline()))
        assert node_id, raylet.cmdline()
        self.processes()  # remember them: an agent orphaned by a killed raylet no longer names our dir
        self.nodes[spec.name] = RayNode(spec.name, node_id.group(1), raylet.pid, self._temp_dirs[spec.name])

    def _raylet(self, name: str) -> psutil.Process | None:
        marker = f"--temp_dir={self._temp_dirs[name]}"
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if proc.info["name"] == "raylet" and marker in cmdline:
                return proc
        return None

    # -- asking Ray -------------------------------------------------------------------------

    def driver(self, body: str, timeout: float = 60) -> object:
        """Run ``body`` in a short-lived driver connected to the cluster; return what it prints (JSON).

        A subprocess, so the test process never stays connected to Ray unless a test wants it.
        ``body`` sees ``ray`` and ``json`` and must ``print(json.dumps(...))`` once.
        """
        script = "import json, ray\n" + f"ray.init(address={self.address!r}, logging_level='ERROR')\n"
        script += textwrap.dedent(body)
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"Ray driver failed ({out.returncode}):\n{out.stderr[-4000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def alive(self) -> dict[str, bool]:
        """Ray's view: node name -> alive, for every node this cluster started."""
        reported = self.driver("print(json.dumps({n['NodeID']: n['Alive'] for n in ray.nodes()}))")
        assert isinstance(reported, dict)
        return {name: bool(reported.get(node.node_id, False)) for name, node in self.nodes.items()}

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until Ray reports every node alive (one driver polls; ``ray status`` lags seconds)."""
        wanted = [node.node_id for node in self.nodes.values()]
        body = f"""
            import time
            deadline = time.monotonic() + {timeout}
            while True:
                alive = {{n["NodeID"] for n in ray.nodes() if n["Alive"]}}
                if set({wanted!r}) <= alive or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            print(json.dumps(sorted(alive)))
        """
        alive = self.driver(body, timeout=timeout + 30)
        missing = [n.name for n in self.nodes.values() if n.node_id not in alive]  # type: ignore[operator]
        if missing:
            raise RuntimeError(f"Ray nodes not alive after {timeout}s: {missing}")

    def wait_dead(self, name: str, timeout: float = 10) -> float:
        """Wait until Ray reports node ``name`` dead; return how many seconds that took."""
        body = f"""
            import time
            began = time.monotonic()
            while time.monotonic() - began < {timeout}:
                if not any(n["NodeID"] == {self.nodes[name].node_id!r} and n["Alive"] for n in ray.nodes()):
                    break
                time.sleep(0.1)
            print(json.dumps(time.monotonic() - began))
        """
        took = self.driver(body, timeout=timeout + 30)
        assert isinstance(took, float)
        if took >= timeout:
            raise AssertionError(f"Ray still reports node {name} alive after {timeout}s")
        return took

    # -- faults and inspection --------------------------------------------------------------

    def kill_node(self, name: str) -> int:
        """SIGKILL node ``name``'s raylet (as a machine failure would); return its pid."""
        pid = self.nodes[name].raylet_pid
        os.kill(pid, signal.SIGKILL)
        return pid

    def processes(self) -> list[psutil.Process]:
        """Every live process of this cluster: those naming its temp dir, and their descendants.

        Workers and agents rename themselves (``ray::IDLE``) but are children of their raylet; once
        seen, a process stays ours (by pid and start time) even after its parent died.
        """
        root = str(self.root)
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["cmdline", "status", "create_time"]):
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(root in arg for arg in proc.info["cmdline"] or []) or (
                self._known.get(proc.pid) == proc.info["create_time"]
            ):
                found[proc.pid] = proc
                for child in _children(proc):
                    if child.status() != psutil.STATUS_ZOMBIE:
                        found[child.pid] = child
        for proc in found.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                self._known[proc.pid] = proc.create_time()
        return list(found.values())

    def listening_outside(self) -> list[str]:
        """Sockets of this cluster's processes that listen on anything but loopback (``ss`` lines)."""
        pids = {proc.pid for proc in self.processes()}
        out = subprocess.run(
            ["ss", "-H", "-l", "-t", "-u", "-n", "-p"], capture_output=True, text=True, check=True
        )
        bad = []
        for line in out.stdout.splitlines():
            fields = line.split()
            if len(fields) < 5:
                continue
            local = fields[4]  # Netid State Recv-Q Send-Q Local Peer Process
            owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
            if owners & pids and not is_loopback(local.rsplit(":", 1)[0]):
                bad.append(line)
        return bad

    # -- stopping ---------------------------------------------------------------------------

    def stop(self, timeout: float = 30, sweep: bool = False) -> None:
        """Kill every process of the cluster, remove its temp dir, and check nothing is left.

        ``sweep`` also runs ``ray stop --force``, which kills every Ray process it can see: only at
        the end of a session, and only inside the private PID namespace (elsewhere it would kill
        other people's clusters). Raises ``RuntimeError`` naming the processes that survived.
        """
        for proc in self.processes():
            _kill(proc)
        if sweep and in_private_namespaces():
            subprocess.run(
                ray_command("stop", "--force"),
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        deadline = time.monotonic() + timeout
        while (left := self.processes()) and time.monotonic() < deadline:
            for proc in left:
                _kill(proc)
            time.sleep(0.2)
        self.nodes.clear()
        shutil.rmtree(self.root, ignore_errors=True)
        if left:
            raise RuntimeError(f"Ray processes left after stop: {[_describe(p) for p in left]}")


def _children(proc: psutil.Process) -> Iterator[psutil.Process]:
    try:
        yield from proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return


def _kill(proc: psutil.Process) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.kill()


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {' '.join(proc.cmdline())[:120]}"
    except psutil.Error:
        return str(proc.pid)
