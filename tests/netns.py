"""Running servers that bind more than loopback (Ray, torch.distributed) in a network namespace.

Tests here listen on loopback only, so such a group runs under ``unshare``: a new network
namespace where only ``lo`` is brought up, and a new PID namespace, so whatever the group leaves
behind dies with it. Needs root (CI runs as root) or unprivileged user namespaces (then
``--map-root-user``). Missing either FAILS the test, so CI cannot pass without running the
group; ``how_to_skip`` tells a developer the variable that skips it instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def unshare_prefix(what: str, how_to_skip: str, mount_proc: bool = False) -> list[str]:
    """The ``unshare`` command line for a private network and PID namespace, checked to work.

    ``what`` names the group in the failure message; ``mount_proc`` also gives it its own
    ``/proc`` (for tools that list processes, such as ``ray stop``).
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail(f"{what} needs unshare (util-linux) to run in a network namespace; {how_to_skip}")
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    proc = ["--mount-proc"] if mount_proc else []
    prefix = [unshare, *user, "--net", "--pid", "--fork", *proc, "--kill-child"]
    probe = subprocess.run(
        [*prefix, "ip", "link", "set", "lo", "up"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.fail(
            f"{what}: cannot create a network namespace (unshare: {probe.stderr.strip()}): run as root or "
            f"allow user namespaces; {how_to_skip}"
        )
    return prefix
