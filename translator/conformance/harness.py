"""Differential conformance: one instruction form run on the host CPU and under jitbt, from the
same registers, flags and memory, with the whole resulting state compared.

``JitCPU`` mirrors hostcpu.py's ``HostCPU`` (prepare + run) on top of jitbt's own decoder,
lifter and codegen. ``check_form`` drives both with a table of input vectors and returns the
mismatches on defined state, and separately on the flags the manual leaves undefined::

    host, jit = HostCPU(), JitCPU()
    result = check_form(host, jit, Form("add rcx, rdx", "add"), vectors)
    assert not result.mismatches

The form tables and their vector generators are in forms_int.py, forms_sse.py and forms_x87.py;
report.py runs them for ``jitbt conformance``, the tests in tests/test_conformance*.py for pytest.

SSE state: a vector may carry two more items, ``(regs, rflags, mem, xmm, mxcsr)`` with ``xmm`` a
dict {register number: 128-bit int}; xmm0..xmm15 and MXCSR are compared after every run (three-item
vectors start from zeroed xmm registers and the default MXCSR). MXCSR's exception flags (bits 0-5)
are set by hardware on inexact, overflow and the like, which jitbt does not model yet: they are
counted in ``Result.mxcsr_flag_mismatches``, like undefined flags, and only bits 6-15 must match.

x87 state: a six-item vector ``(regs, rflags, mem, xmm, mxcsr, fpu)`` carries a 512-byte FXSAVE
image (hostcpu.fxsave_image); after the run the control word, the status word (TOP and C0-C3),
the abridged tag and ST(0)..ST(7) are compared. The status word's exception flags (bits 0-5) are
counted in ``Result.fpu_flag_mismatches``; FOP/FIP/FDP, which hold host addresses natively, are
not compared (a form lists the memory bytes where an instruction stores them in ``mem_ignore``).
"""
from __future__ import annotations

import ctypes
import random
from dataclasses import dataclass, field

from runtime.memory import GuestMemory
from translator import Translator
from translator.knobs import Knobs
from translator.plain import replace
from translator.semantics import SEMANTICS
from translator.state import FPU_CW_DEFAULT, PERM_R, PERM_W, PERM_X, CPUState, Exit

from .hostcpu import FLAG_BITS as HOST_FLAG_BITS
from .hostcpu import GPR_NAMES, MXCSR_DEFAULT, HostCPU, assemble, fxsave_image  # noqa: F401

CODE = 0x10000
DATA = 0x20000
MEM_SIZE = 4096
FLAGS = tuple(f.lower() for f in HOST_FLAG_BITS)
MXCSR_STATUS = 0x3F          # exception flag bits: not modelled yet (see the module docstring)
FPU_EXCEPTIONS = 0x3F        # x87 status word exception flags: compared apart
U64 = (1 << 64) - 1


class JitCPU:
    """Runs one instruction through jitbt (decode, lift, compile) from a given state."""

    def __init__(self, knobs=None, tier: str = "hot"):
        """`knobs` (translator/knobs.py) as the accuracy level; with the exact flag model
        (datapath) the comparison counts undefined flags and exception bits as mismatches.
        `tier`: the optimising tier ("hot"), the cold one ("cold": -O0, and IR written for
        fast instruction selection), which lift some things differently, or the interpreter
        ("interp": the handler of the instruction's shape, translator/interp.py, from the
        handler library, built at once when it lacks one)."""
        self.hot = tier == "hot"
        self.tier = tier
        self.library = None
        self.records = None            # the interpreted block (keeps its records alive)
        self.mem = GuestMemory()
        self.mem.map(CODE, 0x1000, PERM_R | PERM_X)
        self.mem.map(DATA, MEM_SIZE, PERM_R | PERM_W)
        # The block runs on its own, called from here, not from the dispatcher: it returns to us
        # at its end instead of chaining through a lookup table that does not exist.
        self.translator = Translator(self.mem.fetch, replace(knobs or Knobs(), chain="off"))
        self.exact = self.translator.knobs.exact_flags
        self.state = CPUState()
        self.fn = None
        self.insn = None

    @property
    def mem_address(self) -> int:
        return DATA

    def prepare(self, code: bytes) -> None:
        """Translate the first instruction of `code` as a block of its own."""
        self.prepare_block(code, max_insns=1)

    def prepare_block(self, code: bytes, max_insns: int | None = None) -> None:
        """Translate `code` (straight-line instructions) as one block."""
        self.mem.poke(CODE, code + b"\xc3")           # a ret ends the block after the code
        block = self.translator.decoder.decode_block(self.mem.fetch, CODE, max_insns=max_insns)
        if max_insns is None:
            block.insns.pop()                          # drop the ret: fall through to the end
        self.insn = block.insns[0]
        if self.tier == "interp":
            t = self._interpret(block)
        else:
            (t,) = self.translator.compile_blocks([block], hot=self.hot)
        self.fn = self.translator.entry(t.host, t.data)

    def _interpret(self, block):
        from translator.handlers import HandlerLibrary, library_key
        from translator.interp import interpret
        if self.library is None or self.library.key != library_key(self.translator.knobs):
            # (first, or the CPU model changed: its handlers are another library's)
            self.library = HandlerLibrary(self.translator.codegen, self.translator.knobs)
            self.library.load()
        t = interpret(self.library, block)
        if t is None:
            self.library.build()
            t = interpret(self.library, block)
        self.records = t
        return t

    def run(self, regs: dict, rflags: int, mem: bytes | None = None):
        code, out, flags, mem, _, _ = self.run_full(regs, rflags, mem)
        return code, out, flags, mem

    def run_full(self, regs: dict, rflags: int, mem: bytes | None = None,
                 xmm: dict | None = None, mxcsr: int = MXCSR_DEFAULT):
        """As run(), from and returning the SSE state too (xmm: {number: 128-bit int})."""
        return self.run_x87(regs, rflags, mem, xmm, mxcsr)[:6]

    def run_x87(self, regs: dict, rflags: int, mem: bytes | None = None,
                xmm: dict | None = None, mxcsr: int = MXCSR_DEFAULT, fpu: bytes | None = None):
        """As run_full(), from and returning the x87 state as an FXSAVE image (see
        hostcpu.fxsave_image; None is the fninit state)."""
        st = self.state
        image = fpu if fpu is not None else fxsave_image(FPU_CW_DEFAULT)
        st.fpu_cw = int.from_bytes(image[0:2], "little")
        sw = int.from_bytes(image[2:4], "little")
        st.fpu_sw, st.fpu_top, st.fpu_tag = sw & ~0x3800, (sw >> 11) & 7, image[4]
        for i in range(8):
            v = int.from_bytes(image[32 + 16 * i:42 + 16 * i], "little")
            p = (st.fpu_top + i) & 7
            st.st[p][0], st.st[p][1] = v & U64, v >> 64
        xmm = xmm or {}
        for i in range(16):
            v = xmm.get(i, 0)
            st.xmm[i][0], st.xmm[i][1] = v & U64, v >> 64
        st.mxcsr = mxcsr
        for i, name in enumerate(GPR_NAMES):
            st.gpr[i] = regs.get(name, 0)
        st.gpr[4] = DATA + MEM_SIZE      # rsp: unused by the forms, but inside guest memory
        st.set_rflags(rflags)
        st.rip = CODE
        if mem is not None:
            self.mem.write(DATA, mem)
        code = self.fn(ctypes.addressof(st), self.mem.base, self.mem.perm_base)
        out = {name: st.gpr[i] for i, name in enumerate(GPR_NAMES) if name != "rsp"}
        xmm_out = {i: st.xmm[i][0] | st.xmm[i][1] << 64 for i in range(16)}
        fx = bytearray(512)
        fx[0:2] = st.fpu_cw.to_bytes(2, "little")
        fx[2:4] = (st.fpu_sw | st.fpu_top << 11).to_bytes(2, "little")
        fx[4] = st.fpu_tag
        for i in range(8):
            p = (st.fpu_top + i) & 7
            fx[32 + 16 * i:42 + 16 * i] = (st.st[p][0] | st.st[p][1] << 64).to_bytes(10, "little")
        return (code, out, st.rflags(), self.mem.read(DATA, MEM_SIZE), xmm_out, st.mxcsr,
                bytes(fx))


@dataclass
class Form:
    text: str                 # Intel syntax; memory operands use [rbx + disp]
    mnemonic: str             # jitbt's semantic for it (its flag declarations are used)
    inputs: str = "alu"       # which vector generator (see vectors() in forms_int.py)
    pointers: tuple = ()      # registers holding offsets into the scratch buffer
    mem_ignore: tuple = ()    # (start, end) scratch offsets not compared (x87 FIP/FDP images)

    def __post_init__(self):
        if not self.pointers and "[" in self.text:
            self.pointers = ("rbx",)


@dataclass
class Result:
    form: Form
    vectors: int = 0
    mismatches: list = field(default_factory=list)       # defined state
    undefined_mismatches: int = 0                         # flags the manual leaves undefined
    mxcsr_flag_mismatches: int = 0                        # MXCSR bits 0-5 (not modelled yet)
    fpu_flag_mismatches: int = 0                          # x87 status word bits 0-5


def flag_dict(rflags: int) -> dict:
    return {f.lower(): (rflags >> b) & 1 for f, b in HOST_FLAG_BITS.items()}


def check_form(host: HostCPU, jit: JitCPU, form: Form, vectors, predicate=None,
               defined_extra=None) -> Result:
    """Run `vectors` (regs, rflags, mem[, xmm, mxcsr]) through both CPUs; compare everything
    defined.

    `predicate(regs)` returns "fault" for inputs that raise #DE natively (checked to be SIGFPE
    under jitbt, never run natively). `defined_extra(regs)` names undefined flags that are
    defined for this input (OF of a shift by one).
    """
    code = assemble(form.text)
    host.prepare(code)
    jit.prepare(code)
    sem = SEMANTICS[jit.insn.mnemonic]
    res = Result(form)
    for vec in vectors:
        regs, rflags, mem = vec[:3]
        xmm, mxcsr = vec[3:5] if len(vec) > 3 else (None, MXCSR_DEFAULT)
        fpu = vec[5] if len(vec) > 5 else None
        res.vectors += 1
        if predicate is not None and predicate(regs) == "fault":
            exit_code, _, _, _ = jit.run(regs, rflags, mem)
            if exit_code != Exit.FAULT or jit.state.fault_sig != 8:
                res.mismatches.append((regs, rflags, "expected SIGFPE", exit_code))
            continue
        # Pointer registers hold offsets into the buffer: each CPU adds its own buffer address.
        host_regs = dict(regs)
        jit_regs = dict(regs)
        for r in form.pointers:
            host_regs[r] = (host.mem_address + regs.get(r, 0)) % (1 << 64)
            jit_regs[r] = (jit.mem_address + regs.get(r, 0)) % (1 << 64)
        h_regs, h_flags, h_mem, h_xmm, h_mxcsr, h_fpu = host.run_x87(host_regs, rflags, mem, xmm,
                                                                     mxcsr, fpu)
        exit_code, j_regs, j_flags, j_mem, j_xmm, j_mxcsr, j_fpu = jit.run_x87(
            jit_regs, rflags, mem, xmm, mxcsr, fpu)
        for r in form.pointers:
            h_regs[r] = (h_regs[r] - host.mem_address) % (1 << 64)
            j_regs[r] = (j_regs[r] - jit.mem_address) % (1 << 64)
        problems = []
        if exit_code != Exit.CONTINUE or jit.state.rip != CODE + len(code):
            problems.append(f"exit {Exit.NAMES.get(exit_code)} rip {jit.state.rip:#x}")
        for name in h_regs:
            if h_regs[name] != j_regs[name]:
                problems.append(f"{name}: host {h_regs[name]:#x} jit {j_regs[name]:#x}")
        for i in range(16):
            if h_xmm[i] != j_xmm[i]:
                problems.append(f"xmm{i}: host {h_xmm[i]:#034x} jit {j_xmm[i]:#034x}")
        if (h_mxcsr ^ j_mxcsr) & ~MXCSR_STATUS:
            problems.append(f"mxcsr: host {h_mxcsr:#x} jit {j_mxcsr:#x}")
        elif h_mxcsr != j_mxcsr:
            res.mxcsr_flag_mismatches += 1
            if jit.exact:
                problems.append(f"mxcsr exception bits: host {h_mxcsr:#x} jit {j_mxcsr:#x}")
        if fpu is not None:
            problems += fpu_problems(h_fpu, j_fpu)
            if (h_fpu[2] ^ j_fpu[2]) & FPU_EXCEPTIONS:
                res.fpu_flag_mismatches += 1
                if jit.exact:
                    problems.append(f"x87 exception bits: host {h_fpu[2]:#x} jit {j_fpu[2]:#x}")
        for start, end in form.mem_ignore:
            h_mem = h_mem[:start] + j_mem[start:end] + h_mem[end:]
        if h_mem != j_mem:
            diff = next(i for i in range(len(h_mem)) if h_mem[i] != j_mem[i])
            problems.append(f"memory differs from offset {diff}")
        hf, jf = flag_dict(h_flags), flag_dict(j_flags)
        undefined = set(sem.undefined) - set(defined_extra(regs) if defined_extra else ())
        for f in FLAGS:
            if hf[f] != jf[f]:
                if f in undefined:
                    res.undefined_mismatches += 1
                    if jit.exact:
                        problems.append(f"{f.upper()} (undefined): host {hf[f]} jit {jf[f]}")
                else:
                    problems.append(f"{f.upper()}: host {hf[f]} jit {jf[f]}")
        if problems:
            res.mismatches.append((regs, rflags, "; ".join(problems)))
    return res


def fpu_problems(h: bytes, j: bytes) -> list[str]:
    """Differences between two FXSAVE images in CW, SW (less bits 0-5), tag and ST(0..7)."""
    out = []
    word = lambda b, k: int.from_bytes(b[k:k + 2], "little")        # noqa: E731
    if word(h, 0) != word(j, 0):
        out.append(f"fcw: host {word(h, 0):#x} jit {word(j, 0):#x}")
    if (word(h, 2) ^ word(j, 2)) & ~FPU_EXCEPTIONS:
        out.append(f"fsw: host {word(h, 2):#06x} jit {word(j, 2):#06x}")
    if h[4] != j[4]:
        out.append(f"ftw: host {h[4]:#04x} jit {j[4]:#04x}")
    for i in range(8):
        a, b = h[32 + 16 * i:42 + 16 * i], j[32 + 16 * i:42 + 16 * i]
        if a != b:
            out.append(f"st({i}): host {a[::-1].hex()} jit {b[::-1].hex()}")
    return out


def random_flags(rng: random.Random) -> int:
    v = 0
    for f, b in HOST_FLAG_BITS.items():
        if f != "DF" and rng.random() < 0.5:
            v |= 1 << b
    return v


def assert_matches_host(host, jit, form, vectors, *checks, min_vectors: int = 10) -> Result:
    """check_form, then fail with the first mismatching vector if any defined state differs."""
    return require(check_form(host, jit, form, vectors, *checks), min_vectors)


def require(result: Result, min_vectors: int = 10) -> Result:
    """Fail (AssertionError) unless `result` ran at least `min_vectors` vectors and none of them
    differs on defined state; the message names the form and the first mismatching vector."""
    form = result.form
    assert result.vectors >= min_vectors, f"{form.text}: only {result.vectors} vectors"
    assert not result.mismatches, (
        f"{form.text}: {len(result.mismatches)} of {result.vectors} vectors differ; first: "
        f"{result.mismatches[0]}")
    return result


class WholeBlock:
    """The JitCPU translating all of a form's instructions as one block (a sequence)."""

    def __init__(self, jit):
        self.jit = jit

    def prepare(self, code):
        self.jit.prepare_block(code)

    def __getattr__(self, name):
        return getattr(self.jit, name)
