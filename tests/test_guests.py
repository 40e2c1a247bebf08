"""Every guest program, run natively and under jitbt: stdout, stderr and exit status must be
identical byte for byte. Guests that fault must end as the kernel ends them (killed by the signal,
which a shell shows as 128 + signal) with one line naming the signal, the address and the
instruction."""
from __future__ import annotations

import pytest

from conftest import BUILD, clean_env, guest_list, run_jitbt, run_native

GUESTS = guest_list()
# (arguments, stdin) each guest is run with; revstr reads both.
INPUTS = {"revstr": [((), b""), (("abc", "hello world", ""), b"some stdin\nbytes\n")]}


def _inputs(name):
    prog = name.split("-O")[0]
    return INPUTS.get(prog, [((), b"")])


CASES = [(g, args, stdin) for g in GUESTS for args, stdin in _inputs(g)]


@pytest.mark.parametrize("guest,args,stdin", CASES,
                         ids=[f"{g}{'+args' if a else ''}" for g, a, _ in CASES])
def test_guest_output_identical_to_native(guest, args, stdin):
    env = clean_env()
    native = run_native(BUILD / guest, args, stdin, env=env)
    jit = run_jitbt("run", BUILD / guest, *args, stdin=stdin, env=env)
    assert jit.stderr == native.stderr
    assert jit.stdout == native.stdout
    assert jit.returncode == native.returncode


FAULTS = [("fault-div0", "SIGFPE", "idiv"), ("fault-segv", "SIGSEGV", "mov"),
          ("fault-ud2", "SIGILL", "ud2"), ("fault-wx", "SIGSEGV", "mov")]


@pytest.mark.parametrize("guest,signame,mnemonic", FAULTS)
def test_guest_fault_ends_like_the_kernel(guest, signame, mnemonic):
    native = run_native(BUILD / guest)
    assert native.returncode < 0, "the native run must die of a signal"
    jit = run_jitbt("run", BUILD / guest)
    assert jit.returncode == native.returncode        # killed by the same signal
    assert jit.stdout == native.stdout          # output before the fault is not lost
    lines = jit.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert signame in lines[0] and mnemonic in lines[0] and "0x4010" in lines[0]


def test_unsupported_instruction_is_reported_with_address_bytes_and_mnemonic():
    jit = run_jitbt("run", BUILD / "unsupported")
    assert jit.returncode == -4                         # killed by SIGILL
    (line,) = jit.stderr.decode().splitlines()
    assert line.startswith("jitbt: unsupported instruction at 0x401000: 62 f1 6d 48 fe d9")
    assert "vpaddd" in line and "SIGILL" in line


def test_guest_spinning_in_a_hot_loop_still_answers_sigint():
    """A hot loop becomes a region function whose back edge never leaves native code; the
    back-edge budget must still bring control back to Python so that Ctrl-C works."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT
    p = subprocess.Popen([sys.executable, "-m", "runtime.cli", "run", str(BUILD / "spin")],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"spinning\n"
    time.sleep(1.5)          # long enough for the loop to turn hot and run as a region
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == -signal.SIGINT
    assert err == b""        # as a native process killed by SIGINT: the guest's death is silent
