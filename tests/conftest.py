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
# session, never the user's (tests that need a fresh one set their own). pytest-xdist's workers
# inherit it from the controlling process, so that they share one handler library.
if "JITBT_TEST_CACHE" not in os.environ:
    os.environ["JITBT_TEST_CACHE"] = tempfile.mkdtemp(prefix="jitbt-test-cache-")
os.environ["XDG_CACHE_HOME"] = os.environ["JITBT_TEST_CACHE"]


def guest_list() -> list[str]:
    """The guest binaries the guests Makefile builds (the ones that exit normally)."""
    out = subprocess.run(["make", "-s", "-C", str(GUESTS), "list"], capture_output=True,
                         text=True, check=True).stdout
    return [line.strip()[len("build/"):] for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="session", autouse=True)
def built_guests():
    """Build the guests and the native decoder if needed (make test does it first; this keeps
    `pytest` alone working), and the interpreter's handler library for them and the
    conformance forms, as `make run` does for a user (once for all workers: the first takes a
    lock and builds it)."""
    import fcntl
    subprocess.run(["make", "-s", "-C", str(GUESTS)], check=True, capture_output=True)
    subprocess.run(["make", "-s", "-C", str(ROOT), "native"], check=True, capture_output=True)
    cache = Path(os.environ["XDG_CACHE_HOME"])
    with open(cache / "prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / "prepared").exists():
            subprocess.run(["make", "-s", "-C", str(ROOT), "prepare"], check=True,
                           capture_output=True)
            (cache / "prepared").touch()
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


@pytest.fixture(scope="module", params=["hot", "cold", "interp"])
def cpus(request):
    """The host CPU and jitbt, each ready to run one instruction form (translator/conformance),
    by each of jitbt's compiling tiers and its interpreter."""
    from translator.conformance import HostCPU, JitCPU
    return HostCPU(), JitCPU(tier=request.param)


def clean_env():
    """A small fixed environment, so native and translated runs see the same one."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C",
            "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"]}
