"""requirements.lock keeps up with pyproject.toml: every dependency that `make install` installs is locked at a version
the project allows, with its hashes (docs/dependencies.md). A dependency added or bounded without `make lock` fails
here, naming it, instead of as an import error somewhere in the suite."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements.lock"
# What `make install` installs: the dependencies and these extras (dev names qa itself).
EXTRAS = ("piper", "dev", "qa")
# A locked requirement: name==version, an optional marker, then one --hash line per published file.
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)[^\n]*\\\n((?:\s+--hash=sha256:[0-9a-f]{64}[^\n]*\n)+)", re.M)


def project_requirements() -> list[Requirement]:
    """pyproject.toml's requirements that `make install` installs, without the project's references to itself."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = project["dependencies"] + [line for extra in EXTRAS for line in project["optional-dependencies"][extra]]
    requirements = [Requirement(line) for line in listed]
    return [req for req in requirements if canonicalize_name(req.name) != canonicalize_name(project["name"])]


def locked_versions() -> dict[str, list[str]]:
    """The lock's versions by package name (one per marker branch), for pins that carry at least one hash."""
    versions: dict[str, list[str]] = {}
    for name, version, _hashes in _PIN.findall(LOCK.read_text(encoding="utf-8")):
        versions.setdefault(canonicalize_name(name), []).append(version)
    return versions


def test_every_pin_in_the_lock_has_hashes():
    text = LOCK.read_text(encoding="utf-8")
    pinned_lines = re.findall(r"^[A-Za-z0-9._-]+==\S+", text, re.M)
    assert len(locked_versions()) > 50
    assert sum(len(versions) for versions in locked_versions().values()) == len(pinned_lines)


def test_every_dependency_is_locked_at_an_allowed_version():
    locked = locked_versions()
    stale = [
        str(req)
        for req in project_requirements()
        if not any(
            req.specifier.contains(version, prereleases=True) for version in locked.get(canonicalize_name(req.name), [])
        )
    ]
    assert stale == [], f"not in requirements.lock at an allowed version (run `make lock`): {stale}"
