"""The CPU model the guest sees: the one place that says what cpuid reports.

It claims only what the translator implements. Today that is 64-bit integer code (long mode,
syscall, cmov, lahf/sahf in 64-bit mode, rdtsc); no x87, MMX or SSE yet, so those bits are clear
even though every real x86-64 CPU has them. The model is raised as coverage grows::

    from runtime.cpu import cpuid
    eax, ebx, ecx, edx = cpuid(0x1, 0)
"""
VENDOR = b"JitbtVirtCPU"          # 12 bytes: ebx, edx, ecx of leaf 0
BRAND = b"jitbt virtual x86-64 CPU (integer baseline)"

# leaf 1 EDX feature bits claimed
EDX1_TSC = 1 << 4
EDX1_CMOV = 1 << 15
LEAF1_EDX = EDX1_TSC | EDX1_CMOV
LEAF1_ECX = 0
# leaf 0x80000001
EXT_ECX_LAHF = 1 << 0
EXT_EDX_SYSCALL = 1 << 11
EXT_EDX_LM = 1 << 29

FAMILY, MODEL, STEPPING = 6, 0, 0

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
        return 0, 0, EXT_ECX_LAHF, EXT_EDX_SYSCALL | EXT_EDX_LM
    if 0x80000002 <= leaf <= 0x80000004:
        w = _words(BRAND.ljust(48, b"\0"))
        i = (leaf - 0x80000002) * 4
        return tuple(w[i:i + 4])
    return 0, 0, 0, 0
