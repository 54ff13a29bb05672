"""ss_gen: the search space of an annotated model, found by a dry run of the trial command.

The command runs with ``NASCTL_GEN_SEARCH_SPACE=<absolute path>``; the SDK writes the space there
and exits 0 before training. Unlike NNI we check the exit status and the file, and show the
command's own stderr when either is wrong. The CLI's ``nasctl ss_gen`` and the daemon (an
experiment with no ``searchSpaceFile``) both call :func:`generate_search_space`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from trials import env
from trials.errors import SearchSpaceError
from trials.searchspace import SearchSpace

STDERR_TAIL_LINES = 20


def generate_search_space(
    trial_command: str,
    trial_dir: str | Path = ".",
    output: str | Path | None = None,
    timeout: float | None = 600.0,
) -> SearchSpace:
    """Run ``trial_command`` in ``trial_dir`` as a dry run and return the space it wrote.

    ``output`` (made absolute against the caller's working directory, like NNI) receives the
    canonical JSON; by default a temporary file is used and removed. Raises
    :class:`SearchSpaceError` with the command's stderr tail when it fails or writes nothing.
    """
    trial_dir = Path(trial_dir).resolve()
    if not trial_dir.is_dir():
        raise SearchSpaceError(f"ss_gen: trial directory {trial_dir} does not exist")
    with tempfile.TemporaryDirectory(prefix="nasctl-ssgen-") as tmp:
        target = Path(output).resolve() if output is not None else Path(tmp) / "search_space.json"
        target.unlink(missing_ok=True)
        child_env = {**os.environ, env.GEN_SEARCH_SPACE: str(target)}
        for name in (env.TRIAL_ID, env.PARAMETER_FILE, env.TRIAL_DIR):
            child_env.pop(name, None)
        try:
            proc = subprocess.run(
                trial_command,
                shell=True,
                cwd=trial_dir,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise SearchSpaceError(
                f"ss_gen: '{trial_command}' did not finish within {timeout:.0f} s"
            ) from None
        tail = _tail(proc.stderr)
        if proc.returncode != 0:
            raise SearchSpaceError(f"ss_gen: '{trial_command}' failed with exit code {proc.returncode}{tail}")
        if not target.is_file():
            raise SearchSpaceError(
                f"ss_gen: '{trial_command}' exited 0 but wrote no search space; does it call "
                f"get_and_apply_next_architecture(model) or dump_search_space(model)?{tail}"
            )
        space = SearchSpace.load(target)
        target.write_text(space.dumps())
        return space


def _tail(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").rstrip().splitlines()[-STDERR_TAIL_LINES:]
    return ("\n--- stderr (last lines) ---\n" + "\n".join(lines)) if lines else ""
