"""The test cluster itself: what the Ray tests and the contract suite may rely on.

Runs only inside the namespace of tests/test_ray_netns.py (see conftest.py). Every question to
Ray goes through a short-lived driver subprocess, so this process never stays connected.
"""

from __future__ import annotations

import psutil
import pytest

from ray_cluster.cluster import RayCluster, is_loopback


def test_cluster_has_a_head_and_two_workers_with_their_resources(ray_cluster: RayCluster) -> None:
    assert set(ray_cluster.nodes) == {"head", "node_a", "gpu"}
    assert ray_cluster.alive() == {"head": True, "node_a": True, "gpu": True}
    by_node = ray_cluster.driver(
        "print(json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes() if n['Alive']}))"
    )
    assert isinstance(by_node, dict)
    head, node_a, gpu = (by_node[ray_cluster.nodes[name].node_id] for name in ("head", "node_a", "gpu"))
    assert (head["CPU"], "GPU" in head, "node_a" in head) == (1, False, False)
    assert (node_a["CPU"], node_a["node_a"], "GPU" in node_a) == (1, 1, False)
    assert (gpu["CPU"], gpu["GPU"], "node_a" in gpu) == (1, 2, False)


def test_nothing_of_the_cluster_listens_outside_loopback(ray_cluster: RayCluster) -> None:
    listening = [
        c for p in ray_cluster.processes() for c in _connections(p) if c.status == psutil.CONN_LISTEN
    ]
    assert len(listening) >= 6  # gcs, three raylets, agents: the check below is not vacuous
    assert all(is_loopback(c.laddr.ip) for c in listening)
    assert ray_cluster.listening_outside() == []


def test_loopback_check_tells_loopback_from_routable_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "[::ffff:127.0.0.1]", "[::1]", "127.0.0.53%lo"]))
    assert not any(map(is_loopback, ["*", "0.0.0.0", "[::]", "10.1.2.3", "[::ffff:10.1.2.3]"]))


def test_task_asking_for_node_a_resource_runs_a_subprocess_on_node_a(ray_cluster: RayCluster) -> None:
    result = ray_cluster.driver("""
        import subprocess

        @ray.remote(resources={"node_a": 1}, num_cpus=0)
        def run():
            out = subprocess.run(["sh", "-c", "echo child of $PPID"], capture_output=True, text=True, check=True)
            return ray.get_runtime_context().get_node_id(), out.stdout.strip()

        print(json.dumps(ray.get(run.remote(), timeout=60)))
    """)
    assert isinstance(result, list)
    node_id, output = result
    assert node_id == ray_cluster.nodes["node_a"].node_id
    assert output.startswith("child of ")


def test_task_with_num_gpus_1_sees_one_fake_gpu_in_cuda_visible_devices(ray_cluster: RayCluster) -> None:
    result = ray_cluster.driver("""
        import os

        @ray.remote(num_gpus=1, num_cpus=0)
        def visible():
            return ray.get_runtime_context().get_node_id(), os.environ.get("CUDA_VISIBLE_DEVICES")

        print(json.dumps(ray.get(visible.remote(), timeout=60)))
    """)
    assert isinstance(result, list)
    assert result[0] == ray_cluster.nodes["gpu"].node_id
    assert result[1] in {"0", "1"}


def test_task_with_num_gpus_0_on_a_gpu_node_sees_cuda_visible_devices_unset_so_every_gpu(
    ray_cluster: RayCluster,
) -> None:
    """Ray leaves CUDA_VISIBLE_DEVICES alone for a task without GPUs: on a real GPU node such a
    task sees every GPU; a service that must hide them sets ``CUDA_VISIBLE_DEVICES=""`` itself."""
    gpu_node = ray_cluster.nodes["gpu"].node_id
    result = ray_cluster.driver(f"""
        import os
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        @ray.remote(num_gpus=0, num_cpus=0)
        def visible():
            return ray.get_runtime_context().get_node_id(), os.environ.get("CUDA_VISIBLE_DEVICES")

        strategy = NodeAffinitySchedulingStrategy({gpu_node!r}, soft=False)
        print(json.dumps(ray.get(visible.options(scheduling_strategy=strategy).remote(), timeout=60)))
    """)
    assert result == [gpu_node, None]


def test_sigkill_of_a_worker_raylet_is_reported_dead_within_10s(ray_cluster: RayCluster) -> None:
    old = ray_cluster.nodes["node_a"]
    try:
        raylet = psutil.Process(old.raylet_pid)
        assert ray_cluster.kill_node("node_a") == raylet.pid
        assert psutil.wait_procs([raylet], timeout=5)[1] == []
        took = ray_cluster.wait_dead("node_a", timeout=10)
        print(f"node_a reported dead {took:.1f}s after SIGKILL of its raylet")
        assert ray_cluster.alive() == {"head": True, "node_a": False, "gpu": True}
    finally:
        new = ray_cluster.restart_node("node_a")  # the rest of the session needs all three nodes
    assert new.node_id != old.node_id
    assert ray_cluster.alive() == {"head": True, "node_a": True, "gpu": True}


def test_stop_leaves_no_process_of_that_cluster_and_spares_others(ray_cluster: RayCluster) -> None:
    other = RayCluster(workers=())
    try:
        other.start()
        pids = [p.pid for p in other.processes()]
        assert len(pids) >= 3  # gcs, raylet, agents at least
    finally:
        other.stop()
    assert other.processes() == []
    assert [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"] == []
    assert not other.root.exists()
    assert ray_cluster.alive() == {"head": True, "node_a": True, "gpu": True}


def _connections(proc: psutil.Process) -> list[psutil._common.pconn]:
    try:
        return proc.net_connections(kind="inet")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


pytestmark = pytest.mark.slow
