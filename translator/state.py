"""The guest CPU state, declared once.

Everything translated code reads or writes about the guest CPU lives in one struct. Its layout is
declared here, in ``FIELDS``; the ctypes mirror (``CPUState``) and the LLVM type (``LLVM_TYPE``) are
both derived from that one list, and the field indices used by the lifter come from it too::

    from translator.state import CPUState, field_index
    st = CPUState()
    st.gpr[0] = 42            # rax
    field_index("rip")        # -> position of rip in the LLVM struct

Flags are kept one byte per flag (0 or 1): translated code computes them eagerly and LLVM removes
the stores that a later instruction overwrites inside the same block.
"""
import ctypes

GPR_NAMES = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")

# Flag name -> bit in RFLAGS. Each of these has its own byte in the state.
FLAG_BITS = {"cf": 0, "pf": 2, "af": 4, "zf": 6, "sf": 7, "df": 10, "of": 11}
FLAG_NAMES = tuple(FLAG_BITS)

# (name, ctypes type, LLVM type). Arrays are (ctype * n) with an LLVM array type.
FIELDS = (
    ("gpr", ctypes.c_uint64 * 16, "[16 x i64]"),
    ("rip", ctypes.c_uint64, "i64"),
    ("fs_base", ctypes.c_uint64, "i64"),
    ("gs_base", ctypes.c_uint64, "i64"),
    ("fault_addr", ctypes.c_uint64, "i64"),   # address that faulted (SIGSEGV) or 0
    ("exit_arg", ctypes.c_uint64, "i64"),     # extra word for an exit (e.g. which helper)
    ("hits", ctypes.c_uint64, "i64"),         # blocks the dispatcher loop called
    ("ticks", ctypes.c_int64, "i64"),         # back edges and chained transfers before BUDGET
    ("table", ctypes.c_uint64, "i64"),        # host address of the native lookup table
    ("hot", ctypes.c_uint64, "i64"),          # runs that make a cold block hot (Exit.HOT)
    ("check", ctypes.c_uint64, "i64"),        # host address of the memory check the cold tier
                                              # calls (set by every entry to translated code)
    ("flagfn", ctypes.c_uint64, "i64"),       # host address of the cold tier's flag helper
                                              # (set with `check`)
    ("windowfn", ctypes.c_uint64, "i64"),     # host address of the optimising tier's access
                                              # window search (set with `check`)
    ("wgen", ctypes.c_uint64, "i64"),         # access windows' generation: every entry from
                                              # the runtime starts a new one (lifter.py)
    ("fault_sig", ctypes.c_uint32, "i32"),    # guest signal number of a fault exit in the low
                                              # byte (fault_signal); above it, a failed memory
                                              # check's access (access_fault)
    ("pad0", ctypes.c_uint32, "i32"),
) + tuple((f, ctypes.c_uint8, "i8") for f in FLAG_NAMES) + (
    ("pad1", ctypes.c_uint8, "i8"),
    # SSE state, reserved now so the layout does not move when SSE arrives.
    ("xmm", (ctypes.c_uint64 * 2) * 16, "[16 x [2 x i64]]"),
    ("mxcsr", ctypes.c_uint32, "i32"),
    # x87 FPU state (translator/semantics/x87.py). The eight physical registers R0-R7 hold
    # 80-bit extended reals in their low 10 bytes (loaded and stored as x86_fp80); ST(i) is
    # R[(fpu_top + i) & 7]. fpu_sw is the status word with its TOP field (bits 11-13) kept zero:
    # TOP lives in fpu_top. fpu_tag is the abridged tag (FXSAVE's): bit i set when Ri is not empty.
    ("st", (ctypes.c_uint64 * 2) * 8, "[8 x [2 x i64]]"),
    ("fpu_cw", ctypes.c_uint16, "i16"),
    ("fpu_sw", ctypes.c_uint16, "i16"),
    ("fpu_top", ctypes.c_uint8, "i8"),
    ("fpu_tag", ctypes.c_uint8, "i8"),
    ("pad2", ctypes.c_uint8 * 2, "[2 x i8]"),
    # Counters kept by translated code when the knobs ask (translator/knobs.py): instructions
    # retired and modelled cycles (translator/costs.py), both exact at every exit.
    ("icount", ctypes.c_uint64, "i64"),
    ("cycles", ctypes.c_uint64, "i64"),
    # --trace: translated code appends the address of each instruction it starts to a buffer
    # of trace_cap words at host address trace_buf; the runtime empties it (Exit.TRACE).
    ("trace_buf", ctypes.c_uint64, "i64"),
    ("trace_n", ctypes.c_uint64, "i64"),
    ("trace_cap", ctypes.c_uint64, "i64"),
    # Routine replacement (hle): how often each replaced routine ran, by routine number.
    ("hle_calls", ctypes.c_uint64 * 32, "[32 x i64]"),
)

# The x87 control word Linux starts a process with (and fninit sets): every exception masked,
# 64-bit precision, round to nearest; and the MXCSR it starts with (all SSE exceptions masked).
FPU_CW_DEFAULT = 0x037F
MXCSR_DEFAULT = 0x1F80


class CPUState(ctypes.Structure):
    _fields_ = [(name, ctype) for name, ctype, _ in FIELDS]

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.fpu_cw = FPU_CW_DEFAULT       # the state a new Linux process starts in
        self.mxcsr = MXCSR_DEFAULT

    @property
    def fault_signal(self) -> int:
        """The signal number of a fault exit (fault_sig without the access it may carry)."""
        return self.fault_sig & 0xFF

    def rflags(self) -> int:
        """RFLAGS as the guest would see it with pushfq (bit 1 and IF set)."""
        value = 0x202
        for name, bit in FLAG_BITS.items():
            value |= (getattr(self, name) & 1) << bit
        return value

    def set_rflags(self, value: int) -> None:
        for name, bit in FLAG_BITS.items():
            setattr(self, name, (value >> bit) & 1)


_INDEX = {name: i for i, (name, _, _) in enumerate(FIELDS)}
LLVM_TYPE = "{ " + ", ".join(t for _, _, t in FIELDS) + " }"


def field_index(name: str) -> int:
    return _INDEX[name]


def field_offset(name: str) -> int:
    return getattr(CPUState, name).offset


class Exit:
    """Why translated code (a block, or the native dispatcher) returned to the runtime.

    Every block function returns one of these; before returning it stores the guest address to
    continue at (or of the faulting instruction) in ``rip``.
    """
    CONTINUE = 0      # block done, rip holds the next guest address
    MISS = 1          # dispatcher: no translation for rip in the native table
    SYSCALL = 2       # rip is after the syscall instruction
    HELPER = 3        # exit_arg names the helper (cpuid, rdtsc); rip is after the instruction
    FAULT = 4         # fault_sig / fault_addr set; rip is the faulting instruction
    BUDGET = 5        # dispatcher ran its block budget: Python gets a look (signals, stop)
    UNSUPPORTED = 6   # no semantics for the instruction at rip (reported, then SIGILL)
    HOT = 7           # dispatcher: the cold block at rip just became hot (not yet run this time)
    TRACE = 8         # the trace buffer cannot hold the next block: rip is that block's start
    SMC = 9           # a store would write into translated code: fault_addr is where, rip the store
    DECLINE = 10      # a replaced routine (hle) cannot do this call: rip is the routine, unchanged
    NAMES = {0: "continue", 1: "miss", 2: "syscall", 3: "helper", 4: "fault", 5: "budget",
             6: "unsupported", 7: "hot", 8: "trace", 9: "smc", 10: "decline"}


SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV = 4, 5, 7, 8, 11

# The native lookup table (runtime/dispatcher.py), read by the dispatcher and by translated code
# that chains to its successor: 2**TABLE_BITS entries of {guest address, host function, runs,
# data}, direct-mapped by table_index. `data` is passed to the function as its fourth argument:
# 0 for compiled code, the block's records for the interpreter (translator/interp.py).
TABLE_BITS = 16
TABLE_ENTRY = "{ i64, ptr, i64, ptr }"


def table_index(rip: int) -> int:
    return (rip ^ (rip >> TABLE_BITS)) & ((1 << TABLE_BITS) - 1)


def table_index_ir(emit, rip: str) -> str:
    """table_index in IR: `emit(instruction)` returns the value it defines."""
    high = emit(f"lshr i64 {rip}, {TABLE_BITS}")
    return emit(f"and i64 {emit(f'xor i64 {rip}, {high}')}, {(1 << TABLE_BITS) - 1}")

# The guest address space: guest addresses 0 .. 2**ADDRESS_BITS-1 live in one reserved host region,
# host = base + guest. Every access is checked against a page permission table (one byte a page);
# page 0 is never mapped, so a failed range check can safely look at entry 0.
ADDRESS_BITS = 36
ADDRESS_LIMIT = 1 << ADDRESS_BITS
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PERM_R, PERM_W, PERM_X = 1, 2, 4


# A memory check that fails exits with fault_sig = access_fault(size, need): SIGSEGV with the
# access's size and the permission it needed above the signal number, so that the runtime can
# report the address Linux would (fault_address): a check knows only that one of the access's
# pages refused it.
def access_fault(size: int, need: int) -> int:
    return SIGSEGV | (size - 1) << 8 | need << 20


def fault_address(fault_sig: int, addr: int, perms) -> tuple[int, int]:
    """(signal, faulting address) of a fault exit. For a failed access [addr, addr+n] that
    straddles two pages and may touch the first, it is the first byte of the second page (the
    first byte the processor could not access), as x86 Linux reports in si_addr; `perms` is
    the page permission table."""
    signo, n1, need = fault_sig & 0xFF, (fault_sig >> 8) & 0xFFF, fault_sig >> 20
    page = addr >> PAGE_SHIFT
    if need and addr + n1 < ADDRESS_LIMIT and (addr + n1) >> PAGE_SHIFT != page \
            and perms[page] & need == need:
        addr = (page + 1) << PAGE_SHIFT
    return signo, addr
