"""The semantics registry: one function per instruction family, declared where it is written.

A semantic is registered with the ``@semantic`` decorator, which names the mnemonics it serves and
the flags it writes and leaves undefined (the conformance tests read these declarations)::

    @semantic("add", "sub", writes="cf pf af zf sf of")
    def arith(L, insn):
        ...

``L`` is the lifter's FunctionLifter (translator/lifter.py): operand reads and writes generic over
kind and width, checked memory, flag helpers and condition codes. Semantics never see capstone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Semantic:
    fn: Callable
    mnemonic: str
    writes: frozenset
    undefined: frozenset


SEMANTICS: dict[str, Semantic] = {}

CONDITION_CODES = ("o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np",
                   "l", "ge", "le", "g")


def semantic(*mnemonics: str, writes: str = "", undefined: str = ""):
    """Register the decorated function as the semantic of `mnemonics`."""
    def register(fn):
        for m in mnemonics:
            if m in SEMANTICS:
                raise ValueError(f"two semantics for {m}")
            SEMANTICS[m] = Semantic(fn, m, frozenset(writes.split()), frozenset(undefined.split()))
        return fn
    return register


def with_cc(prefix: str) -> tuple[str, ...]:
    """All mnemonics of a conditional family (jo, jno, ..., jg)."""
    return tuple(prefix + cc for cc in CONDITION_CODES)


# Importing the families registers them.
from . import alu, control, data, muldiv, shift, string  # noqa: E402,F401
