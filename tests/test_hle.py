"""Routine replacement (--accuracy hle, translator/hle.py), compared with native runs and with the
guest's own routines.

- strmem (guests/libc/strmem.c), glibc and musl, static and static-pie: stdout, stderr and exit
  status identical to the native run, and --stats names the routines replaced with their counts.
- Bad pointers: a replaced routine declines and the guest's own code faults, so the guest dies of
  the same signal, or its handler sees the same fault address, as natively.
- Routine by routine: each replaced routine is called in-process on many inputs (sizes, overlaps,
  alignments, page ends, bad pointers) once as host code and once as the guest's own translated
  code; results, memory and faults must agree.
"""
from __future__ import annotations

import os
import random
import re
import struct

import pytest

from conftest import BUILD, clean_env, run_jitbt, run_native

# glibc-pie is left to the bad-pointer test: a glibc start-up costs seconds to translate
VARIANTS = ["glibc", "musl", "musl-pie"]
ROUNDS = "30"             # strmem's work, scaled down (the default is sized for measurements)


def split_stats(stderr: bytes) -> tuple[bytes, str]:
    """The guest's stderr and jitbt's --stats text (printed after it)."""
    head, _, stats = stderr.partition(b"jitbt stats:\n")
    return head, stats.decode()


def routine_counts(stats: str) -> dict[str, int]:
    (line,) = [ln for ln in stats.splitlines() if ln.strip().startswith("routines replaced")]
    return {name: int(n) for name, n in re.findall(r"(\w+) (\d+)", line)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_strmem_identical_to_native_and_routines_counted(variant):
    guest = BUILD / f"strmem-{variant}"
    native = run_native(guest, ["work", ROUNDS], env=clean_env())
    jit = run_jitbt("run", "--accuracy", "hle", "--stats", guest, "work", ROUNDS, env=clean_env())
    err, stats = split_stats(jit.stderr)
    assert native.returncode == 0 and b"checksum" in native.stdout
    assert jit.stdout == native.stdout
    assert err == native.stderr
    assert jit.returncode == native.returncode
    counts = routine_counts(stats)
    copies = counts.get("memcpy", 0) + counts.get("memmove", 0)
    compares = counts.get("memcmp", 0) + counts.get("memcmp_sse2", 0)
    assert copies > 1000 and compares > 1000
    for name in ("memset", "strlen", "strcmp", "strncmp", "strchr", "strrchr", "memchr"):
        assert counts[name] > 100, (name, counts)


def test_block_level_replaces_nothing():
    jit = run_jitbt("run", "--stats", BUILD / "strmem-musl", "work", "1", env=clean_env())
    assert jit.returncode == 0
    assert "routines replaced" not in split_stats(jit.stderr)[1]


@pytest.mark.parametrize("variant,mode", [("glibc", "catch"), ("musl", "catch"),
                                          ("glibc-pie", "badmemcpy"), ("musl", "badstrlen")])
def test_bad_pointers_fault_as_natively(variant, mode):
    """The routine declines; the guest's code faults: same status, or the handler (which prints
    the fault address relative to the bad pointer) runs as natively."""
    guest = BUILD / f"strmem-{variant}"
    native = run_native(guest, [mode], env=clean_env())
    jit = run_jitbt("run", "--accuracy", "hle", "--stats", guest, mode, env=clean_env())
    err, stats = split_stats(jit.stderr)
    assert jit.returncode == native.returncode
    assert jit.stdout == native.stdout
    if native.returncode < 0:
        assert native.returncode == -11
        (line,) = err.decode().splitlines()
        assert line.startswith("jitbt: guest killed by SIGSEGV at 0x")
    else:
        assert native.returncode == 0 and err == native.stderr
        assert native.stdout.count(b"caught signal 11") == 4
    assert "(declined)" in stats


# ---- routine by routine, in-process ----------------------------------------------------------
DATA = 0x20000000         # data: four RW pages, an unmapped page, two RW pages, a read-only one
RETURN = 0x3000           # the return address given to calls: never translated
CASES = 100               # calls per routine (HLE_SEED=n in the environment varies the inputs)


class Caller:
    """Call guest routines of a program run up to its main, with or without replacement."""

    def __init__(self, guest: str, level: str):
        from runtime.machine import Machine, Options
        from translator.knobs import knobs_for
        from translator.state import PERM_R, PERM_W
        # (background=off: this loop enters hot regions as promote returns them)
        self.m = m = Machine(Options(knobs=knobs_for(level, ["background=off"]), cache=True))
        m.load(str(guest), [str(guest).encode()], [])
        # libc start-up first: glibc's routines read tunables it sets (copy thresholds).
        assert self.run_to(_symbols(guest)["main"] + m.image.load_bias) is None
        m.mem.map(DATA, 0x4000, PERM_R | PERM_W)          # 4 pages
        m.mem.map(DATA + 0x5000, 0x3000, PERM_R | PERM_W)  # unmapped page at DATA + 0x4000
        m.mem.protect(DATA + 0x7000, 0x1000, PERM_R)       # read-only page at the end
        self.sp = m.state.gpr[4] - 4096

    def replace_again(self, address: int) -> None:
        """Undo a decline at `address`: the routine replaces the guest's code there again."""
        tr = self.m.translator
        if address in tr.declined:
            tr.declined.discard(address)
            for t in tr.cache.invalidate_range(address, address + 1):
                self.m.dispatcher.remove(t)

    def call(self, address: int, *args: int):
        """(rax, None) after the routine returns, or (None, (signal, address)) if it faults."""
        st = self.m.state
        for reg, v in zip((7, 6, 2), args):
            st.gpr[reg] = v & 0xFFFFFFFFFFFFFFFF
        sp = self.sp - 8
        self.m.mem.write(sp, struct.pack("<Q", RETURN))
        st.gpr[4] = sp
        st.rip = address
        fault = self.run_to(RETURN)
        if fault:
            return None, fault
        assert st.gpr[4] == sp + 8
        return st.gpr[0], None

    def run_to(self, stop: int):
        """Run until the guest reaches `stop` (a miss there); a fault stops it too: (signal,
        address)."""
        from runtime.machine import WARM
        from runtime.signals import serve_syscall
        from translator.state import Exit
        m, st, disp = self.m, self.m.state, self.m.dispatcher
        while True:
            st.ticks = 1 << 20
            code = disp.run(m.state_addr, m.mem.base, m.mem.perm_base)
            if code == Exit.MISS:
                if st.rip == stop:
                    return None
                disp.insert(m.translator.lookup(st.rip))
            elif code == Exit.HOT:
                for t in m.translator.promote(st.rip, lambda a: disp.count(a) >= WARM):
                    disp.insert(t)
            elif code == Exit.DECLINE:
                disp.insert(m.translator.decline(st.rip))
            elif code == Exit.FAULT:
                return st.fault_signal, st.fault_addr
            elif code == Exit.SYSCALL:
                serve_syscall(m)
            elif code == Exit.HELPER:
                m._helper(st.exit_arg)
            elif code != Exit.BUDGET:
                raise AssertionError(f"exit {Exit.NAMES.get(code, code)} at {st.rip:#x}")


def _symbols(path) -> dict[str, int]:
    from elftools.elf.elffile import ELFFile
    with open(path, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in tab.iter_symbols()
                if s["st_info"]["type"] == "STT_FUNC"}


def _cases(rng: random.Random):
    """(routine name, argument builder) pairs: each builder fills the data area and returns the
    arguments. Strings of few letters so comparisons go deep; sizes around the SSE2 routines'
    thresholds; places near page ends, next to the unmapped gap and in the read-only page."""
    top = DATA + 0x4000             # first byte of the unmapped gap
    ro = DATA + 0x7000              # the read-only page

    def place(n: int) -> int:
        kind = rng.random()
        if kind < 0.15:
            return top - n - rng.randrange(0, 20)              # ends near the gap
        if kind < 0.25:
            return DATA + 0x1000 - rng.randrange(0, 64)         # crosses a page boundary
        return DATA + rng.randrange(0, 0x3000 - max(n, 0) % 0x3000)

    def size() -> int:
        return rng.choice([0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100,
                           127, 128, 129, 255, 256, 600, 3000, rng.randrange(0, 5000)])

    def text(n: int) -> bytes:
        alphabet = b"ab" if rng.random() < 0.5 else bytes(range(1, 256))
        return bytes(rng.choice(alphabet) for _ in range(n))

    return place, size, text, top, ro


def _one_case(rng, name, place, size, text, top, ro, write):
    """Fill memory through `write(addr, bytes)` and return the call's arguments."""
    n = size()
    bad = rng.random() < 0.04
    if name in ("memcpy", "memmove", "mempcpy"):
        src = place(n)
        dst = src + rng.randrange(-40, 40) if rng.random() < 0.3 and name == "memmove" else place(n)
        if name != "memmove" and abs(dst - src) < n:
            dst = DATA + 0x2800 if src < DATA + 0x2000 else DATA
            n = min(n, 0x800)
        write(src, text(n))
        if bad:
            src = rng.choice([16, top - n // 2, top + 8, 1 << 40, (1 << 64) - 8])
            dst = rng.choice([dst, ro + 100])
        return dst, src, n
    if name == "memset":
        dst = place(n)
        if bad:
            dst = rng.choice([16, top - n // 2 - 1, ro + 10, -5])
        return dst, rng.randrange(-300, 300), n
    if name in ("memcmp", "strcmp", "strncmp"):
        a = text(n) + b"\0"
        b = bytearray(a)
        if n and rng.random() < 0.8:
            b[rng.randrange(n + 1)] = rng.randrange(256)
        if rng.random() < 0.2:
            b = b[:rng.randrange(len(b))] + b"\0"
        if name != "memcmp" and 0 not in b:
            b += b"\0"           # strings end inside the memory they lie in (else undefined)
        pa, pb = place(len(a)), place(len(b))
        if abs(pa - pb) < len(a) + len(b):
            pb = DATA + 0x3000 - len(b) if pa < DATA + 0x1800 else DATA
        write(pa, a)
        write(pb, bytes(b))
        limit = rng.choice([n, n + 1, len(b), rng.randrange(0, 40), (1 << 64) - 1])
        if bad:
            pb = rng.choice([16, 1 << 40] + ([top - 3] if name == "memcmp" else []))
        return pa, pb, (n if name == "memcmp" else limit)
    # strings and searches
    s = text(n) + b"\0"
    p = place(len(s))
    write(p, s)
    c = rng.choice([rng.randrange(-256, 512), 0, ord("a"), ord("b"), s[rng.randrange(len(s))]])
    limit = rng.choice([n, n + 1, rng.randrange(0, n + 2), (1 << 64) - 1])
    if bad:
        p = rng.choice([16, top - 1, 1 << 40])
    if name in ("strcpy", "stpcpy"):
        # overlapping copies are undefined: the string in the lower half, dst in the upper
        p = DATA + rng.randrange(0x2000 - len(s))
        write(p, s)
        dst = rng.choice([DATA + 0x2000 + rng.randrange(0x2000 - len(s)), top - len(s),
                          top - len(s) + rng.randrange(1, 8), ro + 4])
        return dst, p
    if name in ("memchr", "memrchr", "strnlen"):
        return p, (c if name != "strnlen" else limit), (limit if name != "strnlen" else 0)
    return p, c


@pytest.mark.parametrize("variant", ["glibc", "musl"])
def test_each_routine_matches_the_guests_own(variant):
    from translator import hle
    guest = BUILD / f"strmem-{variant}"
    fast, slow = Caller(guest, "hle"), Caller(guest, "block")
    syms = _symbols(guest)
    routines = fast.m.translator.routines
    # the variants glibc's IFUNC resolvers pick for jitbt's CPU model, and musl's routines
    picks = {"glibc": ["__memmove_sse2_unaligned", "__memcpy_sse2_unaligned",
                       "__mempcpy_sse2_unaligned", "__memset_sse2_unaligned", "__strlen_sse2",
                       "__strnlen_sse2", "__strchr_sse2", "__strchrnul_sse2", "__memchr_sse2",
                       "__rawmemchr_sse2", "__strrchr_sse2", "__memrchr_sse2", "__strcpy_sse2",
                       "__stpcpy_sse2", "__strcmp_sse2", "__strncmp_sse2", "__memcmp_sse2"],
             "musl": ["memmove", "memcpy", "memset", "strlen", "strnlen", "strchr", "strchrnul",
                      "memchr", "strrchr", "memrchr", "strcpy", "stpcpy", "strcmp", "strncmp",
                      "memcmp"]}[variant]
    rng = random.Random(int(os.environ.get("HLE_SEED", "20240611")))
    place, size, text, top, ro = _cases(rng)

    def write(addr, data):
        fast.m.mem.write(addr, data)
        slow.m.mem.write(addr, data)

    ran = {}
    for sym in picks:
        if sym not in syms:
            continue
        address = syms[sym]
        assert address in routines, f"{sym} not recognised"
        number = routines[address]
        name = hle.ROUTINES[number].name
        kind = {"memcmp_sse2": "memcmp", "rawmemchr": "memchr"}.get(name, name)
        for case in range(CASES):
            args = _one_case(rng, kind, place, size, text, top, ro, write)
            if name == "rawmemchr":
                args = args[:2]
            fast.replace_again(address)        # a declined call must not disable the routine
            got, want = fast.call(address, *args), slow.call(address, *args)
            where = (sym, case, [hex(a & ((1 << 64) - 1)) for a in args])
            assert got == want, where
            assert fast.m.mem.read(DATA, 0x4000) == slow.m.mem.read(DATA, 0x4000), where
        ran[name] = fast.m.state.hle_calls[number]
    assert ran and all(ran.values()), ran            # most calls ran as host code
    assert slow.m.state.hle_calls[:] == [0] * len(slow.m.state.hle_calls)
