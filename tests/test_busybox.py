"""Debian's busybox-static, unmodified, natively and under jitbt: applets and shell scripts with
pipes, loops, command substitution, tar and gzip round trips must give identical output. The
shell's children (fork, execve) run under jitbt too, never natively."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import BUILD, clean_env, run_jitbt

BUSYBOX = "/bin/busybox"
APPLETS = ("sh sort sha256sum wc awk sed grep ls find tar gzip gunzip cat echo seq uniq head "
           "tail tr cut md5sum basename mkdir rm cp mv").split()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder of applet links (first on PATH, so scripts never reach the host's dynamic
    coreutils, which jitbt cannot run yet) and a small tree of files to work on."""
    assert os.path.exists(BUSYBOX), "busybox-static is installed by `make deps`"
    root = tmp_path_factory.mktemp("bb")
    bin_ = root / "bin"
    bin_.mkdir()
    for a in APPLETS:
        (bin_ / a).symlink_to(BUSYBOX)
    data = root / "data"
    (data / "d" / "e").mkdir(parents=True)
    (data / "f.txt").write_text("pear\napple\nfig\nbanana\napple\n")
    (data / "d" / "e" / "x").write_text("hello\n" * 100)
    (data / "d" / "y").write_bytes(bytes(range(256)) * 64)
    return root


def both(world, *args):
    env = clean_env()
    env["PATH"] = f"{world / 'bin'}:{env['PATH']}"
    data = world / "data"
    native = subprocess.run([BUSYBOX, *args], capture_output=True, env=env, cwd=data, timeout=60)
    jit = run_jitbt("run", BUSYBOX, *args, env=env, cwd=data)
    return native, jit


APPLET_CASES = [
    ("sort", "f.txt"), ("sha256sum", "f.txt", "d/y"), ("wc", "f.txt"), ("grep", "-n", "an", "f.txt"),
    ("sed", "s/a/A/g", "f.txt"), ("awk", "{print $1, length($1)}", "f.txt"), ("find", "."),
    ("ls", "-l", "d"), ("uniq", "-c", "f.txt"), ("md5sum", "d/y"), ("seq", "3", "2", "17"),
]


@pytest.mark.parametrize("args", APPLET_CASES, ids=[" ".join(a) for a in APPLET_CASES])
def test_applet_identical_to_native(world, args):
    native, jit = both(world, *args)
    assert (jit.stdout, jit.stderr, jit.returncode) == (native.stdout, native.stderr, native.returncode)


SCRIPTS = [
    "x=0; for i in 1 2 3 4; do x=$((x+i)); done; echo sum=$x",
    "echo $(echo sub) $(seq 1 3 | wc -l)",
    "sort f.txt | uniq -c | sort -rn | head -2",
    "gzip -c d/y | gunzip -c | md5sum; md5sum < d/y",
    "tar cf - d | tar tf - | sort",
    "mkdir -p out && tar cf - d | (cd out && tar xf -) && find out | sort && cat out/d/e/x | wc -l; rm -rf out",
    "false; echo rc=$?; (exit 3); echo rc=$?; ls /nonexistent; echo rc=$?",
    "seq 1 200 | awk '{s+=$1} END {print s}' | sed 's/^/total: /'",
    "for f in *.txt d/*; do if [ -f $f ]; then echo file $f; else echo dir $f; fi; done",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_shell_script_identical_to_native(world, script):
    native, jit = both(world, "sh", "-c", script)
    assert (jit.stdout, jit.stderr, jit.returncode) == (native.stdout, native.stderr, native.returncode)


def test_children_run_under_jitbt(world):
    """The shell forks and execs a program: under jitbt it sees jitbt's CPU, so it ran translated."""
    vendor = shutil.copy(BUILD / "cpuvendor", world / "bin" / "cpuvendor")
    native, jit = both(world, "sh", "-c", f"{vendor}; echo $(cpuvendor | cat)")
    assert native.stdout.split() != [b"JitbtVirtCPU"] * 2
    assert jit.stdout.split() == [b"JitbtVirtCPU"] * 2 and jit.returncode == 0


def test_argv0_and_environment_options(world):
    """--argv0 sets the guest's argv[0] (busybox picks its applet by it), -E and -U edit the
    guest's environment, as in qemu-user."""
    env = clean_env()
    env["HOME"] = "/home/somebody"
    native = subprocess.run(["bash", "-c", f"exec -a seq {BUSYBOX} 3"], capture_output=True, env=env)
    jit = run_jitbt("run", "--argv0", "seq", BUSYBOX, "3", env=env)
    assert jit.stdout == native.stdout == b"1\n2\n3\n"
    jit = run_jitbt("run", "-E", "FOO=bar baz", "-U", "HOME", BUSYBOX, "sh", "-c",
                    'echo "$FOO|${HOME:-unset}"', env=env)
    assert jit.stdout == b"bar baz|unset\n"
