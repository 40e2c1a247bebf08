"""Which host CPU jitbt's code is generated for, and how the persistent cache tells hosts apart.

Everything jitbt compiles (translations, the interpreter's handler library, the dispatcher) runs
on the machine that compiled it, or on one that loads it from the persistent cache. By default
LLVM generates code for this host's CPU and the features it reports (``native``: on the AMD
EPYC of the README's table, znver4 with AVX-512), as a JIT should: the guest sees its own
virtual CPU model whatever the host has (runtime/cpu.py), so this changes the host code that
carries out the guest's instructions, never what they do. ``generic`` (the environment's
JITBT_HOST_CPU=generic) generates baseline x86-64 code (SSE2), as jitbt did until the twentieth
round: for comparing the two, and for a cache folder shared by machines of different CPUs.

A cache key holds the choice and, for ``native``, the CPU as /proc/cpuinfo describes it
(vendor, family, model and feature flags: what LLVM's host detection reads from cpuid too),
read without loading LLVM, which a warm run may never need; where /proc/cpuinfo cannot be
read, code is generic, so a key never stands for code a different CPU cannot run::

    from translator import host
    host.choice()          # "native" or "generic"
    host.identity()        # what keys hold: "generic", or "native" and the CPU's description
    host.has("avx")        # code may use AVX (only when native and the CPU has it)
"""
from __future__ import annotations

import os

ENV = "JITBT_HOST_CPU"
CHOICES = ("native", "generic")
_CPUINFO_FIELDS = ("vendor_id", "cpu family", "model", "flags")
_identity: str | None = None


class HostChoiceError(ValueError):
    pass


def _cpuinfo() -> str | None:
    """The first processor's vendor, family, model and flags from /proc/cpuinfo; None when the
    file cannot be read or lacks them."""
    try:
        with open("/proc/cpuinfo", "rb") as f:
            text = f.read(1 << 16).decode(errors="replace")
    except OSError:
        return None
    found = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        name, sep, value = line.partition(":")
        name = name.strip()
        if sep and name in _CPUINFO_FIELDS:
            found[name] = " ".join(value.split())
    if "flags" not in found:
        return None
    return "\n".join(f"{name}: {found.get(name, '')}" for name in _CPUINFO_FIELDS)


def choice() -> str:
    """``native`` or ``generic``: JITBT_HOST_CPU (default native); generic where the host's
    CPU cannot be described (see identity)."""
    return identity().split("\n", 1)[0]


def flags() -> frozenset:
    """The feature flags (as /proc/cpuinfo names them: "avx", "avx2") of the CPU code is
    generated for; none with generic code."""
    if choice() != "native":
        return frozenset()
    return frozenset(identity().split("flags: ", 1)[1].split("\n", 1)[0].split())


def has(flag: str) -> bool:
    """Is code generated for a CPU with `flag`? Never with generic code."""
    return flag in flags()


def identity() -> str:
    """What cache keys hold of the host target: "generic", or "native" and the CPU's
    description (once a process). A JITBT_HOST_CPU that is neither raises HostChoiceError."""
    global _identity
    if _identity is None:
        want = os.environ.get(ENV, "native").strip().lower() or "native"
        if want not in CHOICES:
            raise HostChoiceError(f"{ENV}={want!r}: expected one of {', '.join(CHOICES)}")
        described = _cpuinfo() if want == "native" else None
        _identity = "generic" if described is None else f"native\n{described}"
    return _identity
