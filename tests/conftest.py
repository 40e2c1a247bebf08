"""Shared test support: paths, building the guests, and running jitbt as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guests"
BUILD = GUESTS / "build"
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The persistent translation cache of every jitbt the tests start lives in a folder of this test
# session, never the user's (tests that need a fresh one set their own).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="jitbt-test-cache-")


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


JITBT = [sys.executable, "-I", "-c",
         f"import sys; sys.path.insert(0, {str(ROOT)!r}); from runtime.cli import main; "
         "sys.exit(main())"]


def run_jitbt(*cli_args, stdin=b"", env=None, timeout=300, cwd=ROOT):
    """Run the jitbt command line, from any folder, and capture everything."""
    return subprocess.run([*JITBT, *map(str, cli_args)], input=stdin, capture_output=True,
                          env=env, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module", params=["hot", "cold"])
def cpus(request):
    """The host CPU and jitbt, each ready to run one instruction form (translator/conformance),
    by each of jitbt's compiling tiers."""
    from translator.conformance import HostCPU, JitCPU
    return HostCPU(), JitCPU(tier=request.param)


def clean_env():
    """A small fixed environment, so native and translated runs see the same one."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C",
            "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"]}
