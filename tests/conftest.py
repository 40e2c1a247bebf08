"""Shared test support: paths, building the guests, and running jitbt as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guests"
BUILD = GUESTS / "build"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def guest_list() -> list[str]:
    """The guest binaries the guests Makefile builds (the ones that exit normally)."""
    out = subprocess.run(["make", "-s", "-C", str(GUESTS), "list"], capture_output=True,
                         text=True, check=True).stdout
    return [line.strip()[len("build/"):] for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="session", autouse=True)
def built_guests():
    """Build the guests if needed (make test does it first; this keeps `pytest` alone working)."""
    subprocess.run(["make", "-s", "-C", str(GUESTS)], check=True, capture_output=True)
    return BUILD


def run_native(path, args=(), stdin=b"", env=None):
    return subprocess.run([str(path), *args], input=stdin, capture_output=True, env=env,
                          timeout=60)


def run_jitbt(*cli_args, stdin=b"", env=None, timeout=300):
    """Run the jitbt command line (as `python -m runtime.cli`) and capture everything."""
    return subprocess.run([sys.executable, "-m", "runtime.cli", *map(str, cli_args)],
                          input=stdin, capture_output=True, env=env, cwd=ROOT, timeout=timeout)


def clean_env():
    """A small fixed environment, so native and translated runs see the same one."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}
