"""Hosted programs linked statically against glibc (non-PIE and static-pie) and musl, run natively
and under jitbt: stdout, stderr and exit status must be identical byte for byte. They exercise
libc start-up (IRELATIVE relocations, TLS, cpuid-driven dispatch in glibc), stdio with integer
and floating-point formats (musl formats every double through x87 long double), malloc, qsort,
setjmp/longjmp, the environment, files, time and libm; numeric.c (also built at -O0 and -O3)
exercises 128-bit integers, SSE2-vectorised loops and float, double and long double printing;
hotloops.c (also -O0 and -O3) runs loops long enough for the optimising tier, whose values live
in host registers across trips (xmm ones included) and must be written back on the way out;
windows.c runs hot loops over an area whose page permissions change between their calls;
calls.c calls and returns in hot code in every way a region may see (recursion, rets to an address
no call pushed, longjmp) and has loop paths that first run after the loop turned hot."""
from __future__ import annotations

import re
import subprocess

import pytest

from conftest import BUILD, GUESTS, clean_env, run_jitbt, run_native


def libc_guests() -> list[str]:
    out = subprocess.run(["make", "-s", "-C", str(GUESTS), "list-libc"], capture_output=True,
                         text=True, check=True).stdout
    return [line.strip()[len("build/"):] for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("guest", [g for g in libc_guests() if g.startswith("libcmix")])
def test_libc_program_identical_to_native(guest, tmp_path):
    native_dir, jit_dir = tmp_path / "native", tmp_path / "jit"
    native_dir.mkdir()
    jit_dir.mkdir()
    env = clean_env()
    native = run_native(BUILD / guest, [str(native_dir)], env=env)
    jit = run_jitbt("run", BUILD / guest, jit_dir, env=env)
    assert jit.stderr == native.stderr
    assert jit.stdout == native.stdout
    assert jit.returncode == native.returncode == 7
    assert sorted(p.name for p in jit_dir.iterdir()) == sorted(p.name for p in native_dir.iterdir())


@pytest.mark.parametrize("guest", [g for g in libc_guests() if g.startswith("numeric")])
def test_numeric_program_identical_to_native(guest, tmp_path):
    """numeric.c at -O0, -O2 and -O3 (SSE2-vectorised loops), glibc and musl: 128-bit integers,
    double, float and long double arithmetic, printf formats and strtod/strtold round trips."""
    env = clean_env()
    native = run_native(BUILD / guest, env=env)
    jit = run_jitbt("run", BUILD / guest, env=env)
    assert jit.stderr == native.stderr == b""
    assert jit.stdout == native.stdout
    assert jit.returncode == native.returncode == 0


@pytest.mark.parametrize("background", ["off", "on"])
@pytest.mark.parametrize("guest", [g for g in libc_guests() if g.startswith("hotloops")])
def test_hot_loops_identical_to_native(guest, background):
    """Loops compiled hot (with background=off deterministically so, before their end): their
    registers, xmm ones included, reach the state when they leave the region."""
    env = clean_env()
    native = run_native(BUILD / guest, env=env)
    jit = run_jitbt("run", "--no-cache", "--stats", "--set", f"background={background}",
                    BUILD / guest, env=env)
    assert jit.stdout == native.stdout
    assert jit.returncode == native.returncode == 0
    if background == "off":
        assert int(re.search(rb"hot regions \(optimising tier\) +(\d+)", jit.stderr)[1]) >= 4


@pytest.mark.parametrize("background", ["off", "on"])
@pytest.mark.parametrize("guest", [g for g in libc_guests() if g.startswith("windows")])
def test_access_windows_end_when_page_permissions_change(guest, background):
    """windows.c: loops compiled hot check their accesses against windows of pages that allow
    them, kept from one call to the next; after mprotect, munmap or mmap over part of the
    area, the same loops must fault at the first byte they may no longer touch, as natively."""
    env = clean_env()
    native = run_native(BUILD / guest, env=env)
    jit = run_jitbt("run", "--no-cache", "--set", f"background={background}", BUILD / guest,
                    env=env)
    assert native.returncode == 0
    assert b"signal 11 at offset 49152" in native.stdout
    assert jit.stdout == native.stdout
    assert jit.stderr == native.stderr
    assert jit.returncode == native.returncode


@pytest.mark.parametrize("background", ["off", "on"])
@pytest.mark.parametrize("guest", [g for g in libc_guests() if g.startswith("calls")])
def test_hot_calls_and_returns_identical_to_native(guest, background):
    """calls.c: a hot region branches inside itself for a ret that pops one of its own return
    sites, and leaves for any other; a jmp through a GOT-like pointer branches inside only
    while the pointer still points where it did when the region was formed; a region grows to
    take in paths that first ran after it was compiled. Every result must be native's."""
    env = clean_env()
    native = run_native(BUILD / guest, env=env)
    jit = run_jitbt("run", "--no-cache", "--stats", "--set", f"background={background}",
                    BUILD / guest, env=env)
    assert native.returncode == 0 and b"bounce" in native.stdout
    assert jit.stdout == native.stdout
    assert jit.returncode == 0
    if background == "off":       # the late branch and fib's late paths grow their regions
        assert re.search(rb"hot regions \(optimising tier\) .* of them grown", jit.stderr)
