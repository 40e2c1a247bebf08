"""The native decoder (translator/native.c, fastdec.py) against the Python path it stands in for.

The interpreter's records of a block must be the same whichever path made them: the handler
library, the records kept between runs and the compiled tiers all read them. So every block
that starts at an instruction of the guest programs' executable sections (glibc and musl,
static and static-pie, -O3 vector and x87 code, busybox) is made both ways; where the native
helper makes a block, its records, handler keys, extent, bytes and successors must equal the
Python path's, and it must make every block the Python path makes without a rewrite rule, an
operand the translator does not take, bytes that do not decode, an instruction without
semantics, or a handler per encoding (what it leaves to Python by design)."""
from __future__ import annotations

import ctypes

import pytest

from conftest import BUILD

PROGRAMS = ["libcmix-glibc", "libcmix-glibc-pie", "libcmix-musl", "numeric-glibc-O3",
            "numeric-musl-O3", "/bin/busybox"]


def test_the_native_decoder_is_built():
    """make builds the helpers (make native) before it runs or tests anything."""
    from translator import fastdec, native
    assert fastdec.load() is not None, f"{native.LIBRARY} missing or stale: run `make native`"


def _memory(path):
    """Guest memory holding a program's executable segments (a static-pie's where the loader
    puts it)."""
    from elftools.elf.elffile import ELFFile

    from runtime.loader import PIE_BASE
    from runtime.memory import GuestMemory
    from translator.state import PERM_R, PERM_X
    mem = GuestMemory()
    with open(path, "rb") as f:
        elf = ELFFile(f)
        bias = PIE_BASE if elf["e_type"] == "ET_DYN" else 0
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_flags"] & 1:
                start = (seg["p_vaddr"] + bias) & ~0xFFF
                end = (seg["p_vaddr"] + bias + seg["p_memsz"] + 0xFFF) & ~0xFFF
                mem.map(start, end - start, PERM_R | PERM_X)
                mem.poke(seg["p_vaddr"] + bias, seg.data())
    return mem, bias


def _both_ways(fetch, level: str = "block"):
    """compare(address): makes the block at `address` both ways, checks that the native path
    made it exactly when it should and then the same as the Python path; True when it did.
    (`level`: whose handler library; datapath's has more shapes with handlers per encoding.)"""
    from translator import Translator, fastdec
    from translator.decoder import Decoder
    from translator.interp import RECORD, UNSUPPORTED, interpret, is_static_key
    from translator.knobs import knobs_for
    tr = Translator(fetch, knobs_for(level, ["background=off"]))
    lib = tr.handlers
    lib.load()
    assert len(lib.addr) > 3000, "the handler library is not prepared"
    native, decoder = fastdec.load(), Decoder()
    assert native is not None, "the native decoder is not built: run `make native`"

    def compare(address: int) -> bool:
        keys: list[str] = []
        fast = native.interpret(lib, fetch, address, None, keys)
        block = decoder.decode_block(fetch, address)
        py_keys: list[str] = []
        t = interpret(lib, block, py_keys)
        eligible = (t is not None and block.fetch_fault is None
                    and all(i.rule is None and not i.bad_operands for i in block.insns)
                    and not any(is_static_key(k) or k == UNSUPPORTED for k in py_keys))
        where = block.insns[0].describe() if block.insns else hex(address)
        assert (fast is not None) == eligible, where
        if fast is None:
            return False
        ft, raw, succs = fast
        size = (t.ninsns + 1) * RECORD
        assert (ft.address, ft.end, ft.ninsns, ft.host) == (t.address, t.end, t.ninsns, t.host)
        assert ctypes.string_at(ft.data, size) == ctypes.string_at(t.data, size), where
        assert keys == py_keys, where
        assert raw == b"".join(i.raw for i in block.insns), where
        assert succs == block.successors(), where
        return True
    return compare


@pytest.mark.parametrize("program", PROGRAMS)
def test_native_and_python_records_agree_on_every_block(program):
    from translator.handlers import sweep
    path = program if program.startswith("/") else str(BUILD / program)
    mem, bias = _memory(path)
    compare = _both_ways(mem.fetch)
    made = python_only = 0
    for insn in sweep(path):
        if compare(insn.address + bias):
            made += 1
        else:
            python_only += 1
    assert made > 5 * python_only, (made, python_only)


@pytest.mark.parametrize("level", ["block", "datapath"])
def test_native_and_python_records_agree_on_random_bytes(level):
    """Random bytes (seeded; prefixes, rare encodings, bytes that do not decode, blocks cut off
    by the end of executable memory) through both paths, with the handler library of block
    level and of datapath: the same blocks, records and keys, and nothing raises or crashes."""
    import random

    from runtime.memory import GuestMemory
    from translator.state import PERM_R, PERM_X
    rng = random.Random(2026)
    base, size = 0x400000, 0x4000
    mem = GuestMemory()
    mem.map(base, size, PERM_R | PERM_X)
    compare = _both_ways(mem.fetch, level)
    # (prefix-heavy and escape-heavy bytes besides uniform ones: the encodings that matter)
    alphabet = bytes(range(256)) + bytes([0x66, 0x67, 0xF2, 0xF3, 0xF0, 0x48, 0x4C, 0x0F] * 16)
    made = 0
    for _ in range(300):
        mem.poke(base, bytes(rng.choice(alphabet) for _ in range(size)))
        for _ in range(40):
            made += compare(base + rng.randrange(size))
    assert made > 1000


@pytest.mark.parametrize("guest", ["calls-glibc", "libcmix-musl-pie", "numeric-glibc-O3"])
def test_runs_decode_natively_and_match_native(guest):
    """A cold run decodes nearly every block it interprets with the native decoder (`--stats`)
    and prints what the native program prints; with JITBT_NATIVE=off it decodes them all in
    Python, with the same output."""
    import re

    from conftest import clean_env, run_jitbt, run_native
    native = run_native(BUILD / guest, env=clean_env())
    fast = run_jitbt("run", "--no-cache", "--stats", BUILD / guest, env=clean_env())
    slow = run_jitbt("run", "--no-cache", "--stats", BUILD / guest,
                     env=dict(clean_env(), JITBT_NATIVE="off"))
    assert fast.stdout == slow.stdout == native.stdout
    assert fast.returncode == slow.returncode == native.returncode
    decoded = re.search(r"blocks decoded\s+(\d+) \((\d+) by the native decoder\)",
                        fast.stderr.decode())
    assert decoded and int(decoded[2]) > 0.9 * int(decoded[1]), fast.stderr.decode()
    assert "native helpers" in fast.stderr.decode() and "loaded" in fast.stderr.decode()
    assert "by the native decoder" not in slow.stderr.decode()
    assert "JITBT_NATIVE=off" in slow.stderr.decode()
