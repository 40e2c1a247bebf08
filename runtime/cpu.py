"""The CPU model the guest sees: the one place that says what cpuid reports.

It claims only what the translator implements, each bit proven against the host CPU by
tests/test_conformance*.py: 64-bit integer code (long mode, syscall, cmov, lahf/sahf in 64-bit
mode, rdtsc, cmpxchg8b/16b, popcnt, lzcnt), x87 with fxsave/fxrstor, MMX (the mm registers
aliasing the x87 ones, and the mm-register forms of SSE/SSE2), and SSE/SSE2: the baseline of
every x86-64 CPU. The model is raised as coverage grows::

    from runtime.cpu import cpuid
    eax, ebx, ecx, edx = cpuid(0x1, 0)

Semantics whose behaviour depends on the model consult it here (a leaf module): without BMI1
(leaf 7, not claimed: its VEX-encoded instructions are not implemented) ``tzcnt`` executes as
``bsf``, and without ABM ``lzcnt`` would execute as ``bsr``, as on real processors that lack
them (translator/semantics/bits.py).
"""
VENDOR = b"JitbtVirtCPU"          # 12 bytes: ebx, edx, ecx of leaf 0
BRAND = b"jitbt virtual x86-64 CPU (baseline)"

# leaf 1 EDX feature bits claimed
EDX1_FPU = 1 << 0              # x87 (translator/semantics/x87.py)
EDX1_TSC = 1 << 4
EDX1_CX8 = 1 << 8              # cmpxchg8b (translator/semantics/atomic.py)
EDX1_CMOV = 1 << 15
EDX1_MMX = 1 << 23             # translator/semantics/mmx.py, sse_int.py at 64 bits
EDX1_FXSR = 1 << 24            # fxsave/fxrstor (x87.py)
EDX1_SSE = 1 << 25             # translator/semantics/sse*.py
EDX1_SSE2 = 1 << 26
LEAF1_EDX = (EDX1_FPU | EDX1_TSC | EDX1_CX8 | EDX1_CMOV | EDX1_MMX | EDX1_FXSR | EDX1_SSE
             | EDX1_SSE2)
# leaf 1 ECX feature bits claimed
ECX1_CX16 = 1 << 13            # cmpxchg16b (atomic.py)
ECX1_POPCNT = 1 << 23          # popcnt (bits.py)
LEAF1_ECX = ECX1_CX16 | ECX1_POPCNT
# leaf 0x80000001
EXT_ECX_LAHF = 1 << 0
EXT_ECX_ABM = 1 << 5           # lzcnt (bits.py)
EXT_ECX = EXT_ECX_LAHF | EXT_ECX_ABM
EXT_EDX_SYSCALL = 1 << 11
EXT_EDX_LM = 1 << 29

FAMILY, MODEL, STEPPING = 6, 0, 0

# Features that change what an instruction does, as the semantics read them.
ABM = bool(EXT_ECX & EXT_ECX_ABM)      # lzcnt is lzcnt (else bsr)
BMI1 = False                           # leaf 7 EBX bit 3; tzcnt is bsf without it

# AT_HWCAP on x86 is leaf 1 EDX
HWCAP = LEAF1_EDX


def _words(b: bytes) -> list[int]:
    b = b.ljust((len(b) + 3) // 4 * 4, b"\0")
    return [int.from_bytes(b[i:i + 4], "little") for i in range(0, len(b), 4)]


def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
    """(eax, ebx, ecx, edx) for a cpuid leaf; unknown leaves read as zero, as on real CPUs past
    the maximum leaf (which in fact repeat the highest basic leaf; zero is what guests test)."""
    if leaf == 0:
        v = _words(VENDOR)
        return 1, v[0], v[2], v[1]
    if leaf == 1:
        signature = (FAMILY << 8) | (MODEL << 4) | STEPPING
        return signature, 0, LEAF1_ECX, LEAF1_EDX
    if leaf == 0x80000000:
        return 0x80000004, 0, 0, 0
    if leaf == 0x80000001:
        return 0, 0, EXT_ECX, EXT_EDX_SYSCALL | EXT_EDX_LM
    if 0x80000002 <= leaf <= 0x80000004:
        w = _words(BRAND.ljust(48, b"\0"))
        i = (leaf - 0x80000002) * 4
        return tuple(w[i:i + 4])
    return 0, 0, 0, 0


def signature() -> tuple:
    """Everything the model claims, as a value: part of the translation cache keys, since
    semantics consult the model (a tzcnt lifted without BMI1 is a bsf)."""
    g = globals()
    return tuple((name, g[name]) for name in _MODEL)


# The names signature() reads (looked up each time: tests change the model's values).
_MODEL = sorted(name for name, value in globals().items()
                if name.isupper() and isinstance(value, (int, bool, bytes)))
