"""The semantics registry: one function per instruction family, declared where it is written.

A semantic is registered with the ``@semantic`` decorator, which names the mnemonics it serves,
the flags it reads, writes and leaves undefined. The lifter's flag liveness uses ``reads`` and
``writes`` (a flag written and then overwritten before any read is never computed); the
conformance tests use ``undefined``. Each may be a string, or a function of the mnemonic when it
differs across the family::

    @semantic("add", "adc", writes="cf pf af zf sf of", reads=lambda m: "cf" if m == "adc" else "")
    def arith(L, insn):
        ...

``writes`` must be exact: a flag listed there is assumed overwritten on every path. A semantic
that keeps a flag on some paths (a shift by a count that may be zero) lists it in ``reads`` too.

``L`` is the lifter's FunctionLifter (translator/lifter.py): operand reads and writes generic over
kind and width, checked memory, flag helpers and condition codes. Semantics never see capstone.
"""
from __future__ import annotations

from collections.abc import Callable     # (not typing: 2.6 ms of the first lift)

from ..plain import dataclass


@dataclass(frozen=True)
class Semantic:
    fn: Callable
    mnemonic: str
    writes: frozenset
    undefined: frozenset
    reads: frozenset


SEMANTICS: dict[str, Semantic] = {}

CONDITION_CODES = ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np",
                   "l", "ge", "le", "g")


_FLAG_SETS: dict[str, frozenset] = {}     # (454 semantics, a few dozen distinct flag lists)


def _flags(spec, mnemonic: str) -> frozenset:
    text = spec(mnemonic) if callable(spec) else spec
    flags = _FLAG_SETS.get(text)
    if flags is None:
        flags = _FLAG_SETS[text] = frozenset(text.split())
    return flags


def semantic(*mnemonics: str, writes="", undefined="", reads=""):
    """Register the decorated function as the semantic of `mnemonics`."""
    def register(fn):
        for m in mnemonics:
            if m in SEMANTICS:
                raise ValueError(f"two semantics for {m}")
            SEMANTICS[m] = Semantic(fn, m, _flags(writes, m), _flags(undefined, m), _flags(reads, m))
        return fn
    return register


CC_FLAGS = {"o": "of", "b": "cf", "ae": "cf", "e": "zf", "be": "cf zf", "a": "cf zf", "s": "sf",
            "p": "pf", "l": "sf of", "ge": "sf of", "le": "zf sf of", "g": "zf sf of"}


def cc_reads(prefix: str):
    """The flags read by a conditional mnemonic (jne, setbe, cmovl, ...)."""
    def reads(mnemonic: str) -> str:
        cc = mnemonic[len(prefix):]
        return CC_FLAGS.get(cc) or CC_FLAGS[cc[1:]]    # "ne" reads what "e" reads
    return reads


ALL_FLAGS = "cf pf af zf sf of df"


def with_cc(prefix: str) -> tuple[str, ...]:
    """All mnemonics of a conditional family (jo, jno, ..., jg)."""
    return tuple(prefix + cc for cc in CONDITION_CODES)


# Importing the families registers them.
from . import (alu, atomic, bits, control, data, mmx, muldiv, shift, shiftd, sse,  # noqa: E402,F401
               sse_fp, sse_int, string, x87)
