"""The lock: requirements.txt pins every package the book runs with, and the environment is it."""

from __future__ import annotations

import re
from importlib import metadata

from conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    entries = [line for line in lines if line and not line.startswith("#")]
    unpinned = [line for line in entries if not PIN.match(line) and line != "-e ."]
    assert not unpinned, f"lines in the lock that pin no version: {unpinned}"
    return {canonical(m[1]): m[2] for m in map(PIN.match, entries) if m}


def test_every_installed_package_is_locked_at_its_version():
    pins = locked()
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    installed = {name: v for name, v in installed.items() if name not in ("mlsd", "setuptools", "wheel")}
    assert {n: v for n, v in installed.items() if pins.get(n) != v} == {}, "run `make setup` (or `make lock`)"
    assert set(pins) - set(installed) == set(), "the lock names packages this environment lacks"


def test_what_the_book_uses_directly_is_in_the_lock_at_the_same_version():
    direct = {}
    for line in (ROOT / "requirements.in").read_text().splitlines():
        match = PIN.match(line.split("#")[0].strip())
        if match:
            direct[canonical(match[1])] = match[2]
    pins = locked()
    assert direct and {n: v for n, v in direct.items() if pins.get(n) != v} == {}, "run `make lock`"
