"""Native "reference CPU" for differential testing of jitbt.

:class:`HostCPU` executes one (or a few) x86-64 instructions directly on the
host processor, starting from a caller-supplied general-purpose register /
RFLAGS / scratch-memory state, and reports the resulting state.  Translator
semantics are compared against what this returns::

    host = HostCPU()
    host.prepare(assemble("add rax, rbx"))
    regs, rflags, mem = host.run({"rax": 2, "rbx": 3}, 0)     # regs["rax"] == 5

How it works
------------
A small RWX code page holds ``prologue + <instruction bytes> + epilogue``.  It
is called through ctypes as ``void stub(uint64_t *state)`` (System V ABI, the
pointer arrives in ``rdi``).  The state block is 17 qwords::

    state[0..15]  GPRs in GPR_NAMES (x86 encoding) order; the rsp slot (4)
                  is unused
    state[16]     RFLAGS
    state[17]     MXCSR (low 32 bits)
    state[18]     the host's MXCSR, saved by the prologue and restored by the epilogue
    state[20..51] xmm0..xmm15, two qwords each (low qword first); 16-byte aligned
    state[52..115]  the guest's x87/SSE state as a 512-byte FXSAVE64 image (loaded
                  with fxrstor64 before the code, stored with fxsave64 after it)
    state[116..179] the host's FXSAVE64 image, saved first and restored last

The prologue saves the callee-saved registers (rbx, rbp, r12-r15), pushes the
state pointer, loads RFLAGS (push/popfq), saves the host's x87/SSE state
(fxsave64) and loads the guest's x87 state (fxrstor64), saves the host's MXCSR
in the state block and loads the guest's, loads xmm0..xmm15, then every GPR
except rsp from the state block, rdi last.  The epilogue does pushfq; push rax;
reloads the state pointer from the stack, stores every GPR, xmm0..xmm15 and
MXCSR, stores the guest's x87 state (fxsave64), restores the host's x87/SSE
state (fxrstor64) and MXCSR, then stores the saved rax and RFLAGS, discards the saved state
pointer, clears DF (cld - the ABI requires DF=0 on return to C code), restores
the callee-saved registers and returns.

Contract for callers (violations crash or corrupt the Python process; there
are deliberately no signal handlers):

* The code under test must not change ``rsp`` and must leave the stack
  contents at and above ``rsp`` intact (it may use memory *below* rsp only as
  a normal push/pop pair would, i.e. net stack effect zero).
* The code must fall through to its end: no jumps/calls/returns leaving the
  installed byte range, no ``syscall``/``int``/``hlt`` etc.
* It must not fault: no division by zero or quotient overflow (#DE), no
  access outside the scratch buffer (:attr:`HostCPU.mem_address`, ``mem_size``
  bytes; the buffer is page aligned), no privileged or undefined opcodes
  (#UD / #GP).  Filtering such inputs is the caller's job.
* Only the 15 GPRs (all but rsp), the RFLAGS bits in :data:`FLAG_BITS`,
  xmm0..xmm15 and MXCSR are set up and observed (:meth:`HostCPU.run_full`;
  :meth:`HostCPU.run` starts from zeroed xmm registers and the default MXCSR
  0x1F80).  MXCSR must keep every exception masked (bits 7-12 set), so SSE
  faults cannot happen; the host's MXCSR is restored on the way out.  The x87
  state is set up and captured by :meth:`HostCPU.run_x87` as an FXSAVE image
  (other runs start from the fninit state); its control word must keep every
  exception masked (bits 0-5 set) and no exception flag may be pending, so x87
  faults cannot happen; the host's x87 state is restored on the way out.
* Input RFLAGS: only the FLAG_BITS bits are honoured; all others are forced
  to 0 except reserved bit 1, which is always 1 (so TF/AC/etc. are never set).
"""

from __future__ import annotations

import ctypes
import mmap

from keystone import KS_ARCH_X86, KS_MODE_64, Ks

__all__ = ["GPR_NAMES", "FLAG_BITS", "FLAG_MASK", "MXCSR_DEFAULT", "FPU_CW_DEFAULT", "HostCPU",
           "assemble", "fxsave_image"]

GPR_NAMES = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
FLAG_BITS = {"CF": 0, "PF": 2, "AF": 4, "ZF": 6, "SF": 7, "DF": 10, "OF": 11}
FLAG_MASK = sum(1 << b for b in FLAG_BITS.values())

_RSP = GPR_NAMES.index("rsp")
_RFLAGS_SLOT = len(GPR_NAMES)            # 16
_MXCSR_SLOT = _RFLAGS_SLOT + 1           # 17
_HOST_MXCSR_SLOT = _MXCSR_SLOT + 1       # 18
_XMM_SLOT = 20                           # xmm0 at state[20] (byte 160, 16-byte aligned)
_FX_GUEST_SLOT = _XMM_SLOT + 2 * 16      # 52 (byte 416, 16-byte aligned)
_FX_HOST_SLOT = _FX_GUEST_SLOT + 64      # 116
_STATE_QWORDS = _FX_HOST_SLOT + 64       # 180
FPU_CW_DEFAULT = 0x037F                  # the fninit / Linux process start control word
MXCSR_DEFAULT = 0x1F80
_MXCSR_MASKS = 0x1F80                    # the six exception mask bits
_U128 = (1 << 128) - 1
_U64 = (1 << 64) - 1
_REG_INDEX = {n: i for i, n in enumerate(GPR_NAMES) if n != "rsp"}
_OUT_NAMES = tuple(n for n in GPR_NAMES if n != "rsp")
_CALLEE_SAVED = ("rbx", "rbp", "r12", "r13", "r14", "r15")
_PAGE = mmap.PAGESIZE

_ks = None


def assemble(text: str, address: int = 0) -> bytes:
    """Assemble Intel-syntax x86-64 ``text`` with keystone and return bytes.

    Used by the conformance forms and tests.  ``;`` separates statements.  Keystone 0.9.2
    quirks seen on this host (verify encodings with capstone when the exact
    form matters):

    * some invalid operand combinations (e.g. ``mov ah, sil``) hit an LLVM
      fatal error that *aborts the whole process* instead of raising KsError;
      generators must not produce high-byte registers (ah/ch/dh/bh) together
      with REX-only operands (sil/dil/spl/bpl, r8-r15, 64-bit operands);
    * ``nop dword ptr [rax]`` is encoded as 0F 18 /4 (a reserved hint NOP)
      rather than the canonical 0F 1F /0;
    * ``mov rax, [0x1000]`` picks the moffs64 form (A1 + 8-byte address), not
      ModRM+disp32;
    * a leading zero means octal (``mov rax, 010`` moves 8); ``0ah`` and
      ``0b1010`` work, ``1010b`` and ``ffh`` do not; memory operands with an
      immediate source need an explicit size (``add [rbx], 1`` is rejected);
    * relative branches are relative to ``address`` (default 0), so pass
      ``HostCPU.code_address`` if branch targets matter.
    """
    global _ks
    if _ks is None:
        _ks = Ks(KS_ARCH_X86, KS_MODE_64)
    encoding, _count = _ks.asm(text, address)
    if not encoding:
        raise ValueError(f"keystone produced no code for {text!r}")
    return bytes(encoding)


def _off(name: str) -> int:
    return 8 * GPR_NAMES.index(name)


def _xmm_off(i: int) -> int:
    return 8 * (_XMM_SLOT + 2 * i)


def _prologue_asm() -> str:
    lines = [f"push {r}" for r in _CALLEE_SAVED]
    lines.append("push rdi")                       # state pointer
    lines.append(f"push qword ptr [rdi + {8 * _RFLAGS_SLOT}]")
    lines.append("popfq")
    lines.append(f"stmxcsr dword ptr [rdi + {8 * _HOST_MXCSR_SLOT}]")
    lines.append(f"fxsave64 [rdi + {8 * _FX_HOST_SLOT}]")
    lines.append(f"fxrstor64 [rdi + {8 * _FX_GUEST_SLOT}]")
    lines.append(f"ldmxcsr dword ptr [rdi + {8 * _MXCSR_SLOT}]")
    for i in range(16):
        lines.append(f"movups xmm{i}, xmmword ptr [rdi + {_xmm_off(i)}]")
    for name in GPR_NAMES:
        if name in ("rsp", "rdi"):
            continue
        lines.append(f"mov {name}, qword ptr [rdi + {_off(name)}]")
    lines.append(f"mov rdi, qword ptr [rdi + {_off('rdi')}]")
    return "\n".join(lines)


def _epilogue_asm() -> str:
    # Stack on entry to the epilogue: [rsp] = state pointer.
    lines = ["pushfq", "push rax",
             "mov rax, qword ptr [rsp + 16]"]      # state pointer
    for name in GPR_NAMES:
        if name in ("rsp", "rax"):
            continue
        lines.append(f"mov qword ptr [rax + {_off(name)}], {name}")
    for i in range(16):
        lines.append(f"movups xmmword ptr [rax + {_xmm_off(i)}], xmm{i}")
    lines.append(f"stmxcsr dword ptr [rax + {8 * _MXCSR_SLOT}]")
    lines.append(f"fxsave64 [rax + {8 * _FX_GUEST_SLOT}]")
    lines.append(f"fxrstor64 [rax + {8 * _FX_HOST_SLOT}]")
    lines.append(f"ldmxcsr dword ptr [rax + {8 * _HOST_MXCSR_SLOT}]")
    lines.append(f"pop qword ptr [rax + {_off('rax')}]")
    lines.append(f"pop qword ptr [rax + {8 * _RFLAGS_SLOT}]")
    lines.append("pop rax")                        # discard state pointer
    lines.append("cld")
    lines.extend(f"pop {r}" for r in reversed(_CALLEE_SAVED))
    lines.append("ret")
    return "\n".join(lines)


_PROLOGUE: bytes | None = None
_EPILOGUE: bytes | None = None


def _stubs() -> tuple[bytes, bytes]:
    global _PROLOGUE, _EPILOGUE
    if _PROLOGUE is None:
        _PROLOGUE = assemble(_prologue_asm())
        _EPILOGUE = assemble(_epilogue_asm())
    return _PROLOGUE, _EPILOGUE


_STUB_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class HostCPU:
    """Runs single x86-64 instructions natively from a given state."""

    def __init__(self, mem_size: int = 4096, code_size: int = 4096):
        if mem_size <= 0:
            raise ValueError("mem_size must be positive")
        self._prologue, self._epilogue = _stubs()
        self._mem_size = mem_size
        code_size = max(_PAGE, -(-code_size // _PAGE) * _PAGE)
        self._code = mmap.mmap(
            -1, code_size,
            flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
            prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._code_addr = ctypes.addressof(ctypes.c_char.from_buffer(self._code))
        # Scratch memory: its own page-aligned RW mapping so alignment is
        # predictable (movaps-style instructions) and it never shares a page
        # with Python objects.
        self._mem = mmap.mmap(-1, -(-mem_size // _PAGE) * _PAGE,
                              flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._mem_addr = ctypes.addressof(ctypes.c_char.from_buffer(self._mem))
        self._state = (ctypes.c_uint64 * (_STATE_QWORDS + 1))()
        # 16-byte align the block so the xmm slots are aligned (one spare qword allows for it).
        self._state_addr = -(-ctypes.addressof(self._state) // 16) * 16
        self._slots = (ctypes.c_uint64 * _STATE_QWORDS).from_address(self._state_addr)
        # Keep the CFUNCTYPE object alive for the lifetime of this HostCPU.
        self._fn = _STUB_TYPE(self._code_addr)
        self._prepared = False

    @property
    def mem_address(self) -> int:
        """Host address of the (page-aligned) scratch buffer."""
        return self._mem_addr

    @property
    def mem_size(self) -> int:
        return self._mem_size

    @property
    def code_address(self) -> int:
        """Host address where the instruction bytes start after prepare()."""
        return self._code_addr + len(self._prologue)

    def prepare(self, code: bytes) -> None:
        """Install the machine code of one or more instructions.

        The bytes are placed at :attr:`code_address`, between the prologue and
        epilogue stubs; execution must fall through their end.  RIP-relative
        or relative-branch encodings are therefore relative to code_address.
        """
        code = bytes(code)
        blob = self._prologue + code + self._epilogue
        if len(blob) > len(self._code):
            raise ValueError(f"code too long ({len(code)} bytes)")
        self._code[:len(blob)] = blob
        self._prepared = True

    def run(self, regs: dict, rflags: int, mem: bytes | None = None
            ) -> tuple[dict, int, bytes]:
        """Execute the prepared code once.

        ``regs`` maps names from GPR_NAMES (except "rsp") to ints in
        [0, 2**64); missing registers start as 0.  Only the FLAG_BITS bits of
        ``rflags`` are used (bit 1 is always set).  ``mem``, if given, is
        copied to the start of the scratch buffer (bytes beyond ``len(mem)``
        keep whatever they held before; the buffer starts zeroed and persists
        across runs).

        Returns ``(regs_after, rflags_after & FLAG_MASK, scratch_bytes)`` where
        regs_after holds all 15 names except "rsp" and scratch_bytes is the
        full ``mem_size``-byte buffer.
        """
        regs, flags, mem, _, _ = self.run_full(regs, rflags, mem)
        return regs, flags, mem

    def run_full(self, regs: dict, rflags: int, mem: bytes | None = None,
                 xmm: dict | None = None, mxcsr: int = MXCSR_DEFAULT
                 ) -> tuple[dict, int, bytes, dict, int]:
        """As :meth:`run`, plus the SSE state.

        ``xmm`` maps register numbers 0..15 to 128-bit ints (missing ones start
        as 0); ``mxcsr`` must keep all exceptions masked (bits 7-12 set) and its
        reserved bits 16-31 clear.  Returns ``(regs, rflags, scratch, xmm,
        mxcsr)`` with all 16 xmm registers.
        """
        return self.run_x87(regs, rflags, mem, xmm, mxcsr)[:5]

    def run_x87(self, regs: dict, rflags: int, mem: bytes | None = None,
                xmm: dict | None = None, mxcsr: int = MXCSR_DEFAULT,
                fpu: bytes | None = None) -> tuple[dict, int, bytes, dict, int, bytes]:
        """As :meth:`run_full`, from and returning the x87 state too.

        ``fpu`` is a 512-byte FXSAVE64 image (:func:`fxsave_image` builds one; its
        MXCSR and xmm fields are ignored: ``mxcsr`` and ``xmm`` win); None is the
        fninit state.  Its control word must mask every exception and its status
        word must have no exception flag set.  Returns run_full's tuple plus the
        FXSAVE64 image stored after the code (bytes 0-159: FCW, FSW, abridged
        FTW, FOP, FIP, FDP, MXCSR, MXCSR_MASK, ST(0)..ST(7)).
        """
        image = bytearray(fpu if fpu is not None else fxsave_image())
        if len(image) != 512:
            raise ValueError("fpu must be a 512-byte FXSAVE image")
        cw, sw = int.from_bytes(image[0:2], "little"), int.from_bytes(image[2:4], "little")
        if cw & 0x3F != 0x3F or sw & 0x3F:
            raise ValueError(f"x87 cw={cw:#x} sw={sw:#x}: exceptions must be masked and clear")
        image[24:28] = mxcsr.to_bytes(4, "little")
        if not self._prepared:
            raise RuntimeError("prepare() must be called before run()")
        if mxcsr & _MXCSR_MASKS != _MXCSR_MASKS or mxcsr >> 16:
            raise ValueError(f"mxcsr={mxcsr:#x} must mask every exception and keep bits "
                             "16-31 clear")
        state = self._slots
        for i in range(_STATE_QWORDS):
            state[i] = 0
        for name, value in regs.items():
            idx = _REG_INDEX.get(name)
            if idx is None:
                raise ValueError(f"cannot set register {name!r}")
            if not 0 <= value <= _U64:
                raise ValueError(f"{name}={value!r} out of range 0..2**64-1")
            state[idx] = value
        state[_RFLAGS_SLOT] = (rflags & FLAG_MASK) | 0x2
        state[_MXCSR_SLOT] = mxcsr
        for i, value in (xmm or {}).items():
            if i not in range(16) or not 0 <= value <= _U128:
                raise ValueError(f"cannot set xmm{i} to {value!r}")
            state[_XMM_SLOT + 2 * i] = value & _U64
            state[_XMM_SLOT + 2 * i + 1] = value >> 64
        if mem is not None:
            n = len(mem)
            if n > self._mem_size:
                raise ValueError(f"mem is {n} bytes, scratch buffer is "
                                 f"{self._mem_size}")
            self._mem[:n] = mem
        fx = (ctypes.c_uint8 * 512).from_address(self._state_addr + 8 * _FX_GUEST_SLOT)
        fx[:] = image
        self._fn(self._state_addr)
        fpu_out = bytes(fx)
        out = {name: state[_REG_INDEX[name]] for name in _OUT_NAMES}
        xmm_out = {i: state[_XMM_SLOT + 2 * i] | state[_XMM_SLOT + 2 * i + 1] << 64
                   for i in range(16)}
        return (out, state[_RFLAGS_SLOT] & FLAG_MASK, self._mem[:self._mem_size], xmm_out,
                state[_MXCSR_SLOT] & 0xFFFFFFFF, fpu_out)


def fxsave_image(cw: int = FPU_CW_DEFAULT, sw: int = 0, tag: int = 0,
                 st: list[int] | None = None) -> bytes:
    """A 512-byte FXSAVE64 image of an x87 state: ``tag`` is the abridged tag (bit i set when
    physical register i is not empty), ``st`` the 80-bit contents of ST(0)..ST(7) (logical order,
    relative to TOP = sw bits 11-13)."""
    image = bytearray(512)
    image[0:2] = cw.to_bytes(2, "little")
    image[2:4] = sw.to_bytes(2, "little")
    image[4] = tag
    image[24:28] = MXCSR_DEFAULT.to_bytes(4, "little")
    for i, v in enumerate(st or ()):
        image[32 + 16 * i:42 + 16 * i] = v.to_bytes(10, "little")
    return bytes(image)
