"""Which wheels a GPU machine without network needs to run nasctl: ``name==version`` per line.

Walks nasctl's runtime requirements (``[project] dependencies`` of pyproject.toml, extras left
out, markers evaluated for CPython 3.12 on Linux x86_64) through the installed distributions, and pins each package to the
version installed here, so the GPU machine runs what the tests ran. Left out: torch and what it
pulls in (the machine's CUDA build must stay the one used) and the compiled packages those
machines already have (:data:`ON_THE_MACHINE`). The pure-python packages they have too (click,
h11, anyio, idna, typing-extensions) are shipped anyway: small, and then their versions match.

Used by ``bench/gpu_wheels.sh``: ``python bench/_gpu_wheels.py`` prints the list, and
``python bench/_gpu_wheels.py --check .whl`` checks that the wheels there cover one another's
requirements (each wheel's METADATA ``Requires-Dist``), given what the GPU machine has.
"""

from __future__ import annotations

import re
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

#: Present on the GPU machines (compiled against their Python) or to be left alone there.
ON_THE_MACHINE = frozenset({"torch", "psutil", "pyyaml"})
TARGET_MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements() -> list[str]:
    """``[project] dependencies`` of pyproject.toml (an editable install's metadata may be stale);
    on Python 3.10, which has no tomllib, the installed nasctl's requirements without extras."""
    try:
        import tomllib
    except ModuleNotFoundError:
        from packaging.requirements import Requirement

        requires = distribution("nasctl").requires or []
        return [r for r in requires if Requirement(r).marker is None]
    return list(tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"])


def pins(roots: list[str] | None = None, skip: frozenset[str] = ON_THE_MACHINE) -> dict[str, str]:
    """``{canonical name: installed version}`` of everything ``roots`` (requirement strings; default:
    nasctl's runtime dependencies) need at run time, minus ``skip``."""
    from packaging.requirements import Requirement

    if roots is None:
        roots = runtime_requirements()
    found: dict[str, str] = {}
    todo = [Requirement(text).name for text in roots]
    while todo:
        name = canonical(todo.pop())
        if name in found or name in skip:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f"_gpu_wheels: {name} is not installed here; run `make setup` first") from None
        found[name] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(TARGET_MARKERS):
                todo.append(requirement.name)
    return dict(sorted(found.items()))


def wheel_metadata(path: Path) -> tuple[str, str, list[str]]:
    """(canonical name, version, Requires-Dist lines) read from a wheel's ``*.dist-info/METADATA``."""
    with zipfile.ZipFile(path) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        text = wheel.read(name).decode("utf-8")
    fields: dict[str, list[str]] = {}
    for line in text.split("\n\n", 1)[0].splitlines():  # the headers end at the first blank line
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value.strip())
    return canonical(fields["Name"][0]), fields["Version"][0], fields.get("Requires-Dist", [])


def check_wheels(folder: Path, on_the_machine: frozenset[str] = ON_THE_MACHINE) -> list[str]:
    """Problems with the wheels of ``folder``: a requirement (markers for the GPU machine) that no
    wheel there satisfies and that the machine does not provide. [] when the set is complete."""
    from packaging.requirements import Requirement

    wheels = {}
    for path in sorted(folder.glob("*.whl")):
        name, version, requires = wheel_metadata(path)
        wheels[name] = (version, requires)
    problems = []
    for name, (_, requires) in wheels.items():
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(TARGET_MARKERS):
                continue
            wanted = canonical(requirement.name)
            if wanted in on_the_machine:
                continue
            if wanted not in wheels:
                problems.append(f"{name} needs {text}: no wheel")
            elif not requirement.specifier.contains(wheels[wanted][0], prereleases=True):
                problems.append(f"{name} needs {text}: the wheel is {wanted} {wheels[wanted][0]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--check"] and len(argv) == 2:
        problems = check_wheels(Path(argv[1]))
        for problem in problems:
            print(f"_gpu_wheels: missing: {problem}")
        return 1 if problems else 0
    for name, version in pins().items():
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
