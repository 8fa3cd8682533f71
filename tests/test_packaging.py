"""constraints.txt, the tested versions scripts/setup.sh installs, agrees with pyproject.toml."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not a name==version pin"
        pins[canonicalize_name(name)] = version
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + project["optional-dependencies"]["test"]
    return [Requirement(r) for r in names]


@pytest.mark.parametrize("req", [r for r in _requirements() if r.name != "torch"], ids=lambda r: r.name)
def test_every_dependency_is_pinned_inside_its_range(req):
    pins = _pins()
    name = canonicalize_name(req.name)
    assert name in pins, f"{req.name} is in pyproject.toml but not pinned in constraints.txt"
    assert req.specifier.contains(Version(pins[name]), prereleases=True), (
        f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject.toml's {req.specifier}")


@pytest.mark.parametrize("name", ["torch", "torchvision", "triton", "nvidia-cudnn-cu12", "simpleseg-lite"])
def test_builds_that_depend_on_the_machine_are_not_pinned(name):
    # torch: the CPU wheel or the user's CUDA build (setup.sh decides); torchvision: never installed here.
    assert canonicalize_name(name) not in _pins()


def test_setup_installs_with_the_constraints_and_has_a_way_out():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert re.search(r"pip install .*-c constraints\.txt", setup)
    assert "SIMPLESEG_UNPINNED" in setup
    # the install stamp covers the constraints, so editing them re-installs
    assert re.search(r"want=.*constraints\.txt", setup)
