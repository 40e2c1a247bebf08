"""Guest signals as Linux x86-64 has them: dispositions, the blocked mask, pending signals, the
alternate stack, the kernel's signal frame (struct rt_sigframe) and rt_sigreturn, delivery at the
runtime's delivery points, and the default actions.

Signals reach the guest from four places: its own faults (``deliver_fault``, synchronous), its own
kill/tgkill/raise/abort and broken-pipe writes (``queue``), and host signals sent to the jitbt
process (``host_signals`` installs Python handlers that queue them). Queued signals are delivered
at the next delivery point: after each syscall and when the dispatcher returns with its budget
spent (at most ~1M blocks)::

    m.signals = SignalState()
    queue(m, SIGUSR1, SI_TKILL, pid=os.getpid())   # e.g. from tgkill
    serve_syscall(m)        # a syscall, then what became deliverable is delivered
    deliver_fault(m, SIGSEGV, 0x10)               # True: the guest's handler will run

Delivery builds the frame the kernel builds (see /usr/include/x86_64-linux-gnu/sys/ucontext.h and
asm/sigcontext.h): below the interrupted rsp (less the 128-byte red zone) or at the top of the
alternate stack, a 512-byte fxsave area aligned to 64, then the frame, placed so that rsp at handler
entry is 16n-8 as after a call: return address (sa_restorer), struct ucontext (uc_flags, uc_link,
uc_stack, struct sigcontext, the 64-bit uc_sigmask), struct siginfo. rt_sigreturn reads them back.

A guest that dies of a signal exits with 128 + signal. Faults print jitbt's one line (signal,
address, instruction); a signal sent by the guest itself or from outside (SIGINT, SIGTERM, abort's
SIGABRT, SIGPIPE) ends it silently, as a native process killed by it prints nothing itself.
Stop signals the guest sends itself stop the jitbt process (it resumes on SIGCONT).
"""
from __future__ import annotations

import errno
import os
import select
import signal
import struct
import threading
import time
from translator.plain import dataclass

from translator.state import ADDRESS_LIMIT, PAGE_SHIFT, SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP

from .memory import PERM_MAPPED, GuestFault

MASK64 = (1 << 64) - 1
NSIG = 64
SIGKILL, SIGSTOP, SIGPIPE, SIGABRT, SIGRTMIN = 9, 19, 13, 6, 32
SIG_DFL, SIG_IGN = 0, 1
SA_SIGINFO, SA_ONSTACK, SA_RESTART, SA_NODEFER = 0x4, 0x08000000, 0x10000000, 0x40000000
SA_RESETHAND, SA_RESTORER = 0x80000000, 0x04000000
SS_ONSTACK, SS_DISABLE, SS_AUTODISARM = 1, 2, 1 << 31
MINSIGSTKSZ = 2048

# si_code values (bits/siginfo-consts.h)
SI_USER, SI_KERNEL, SI_TKILL = 0, 0x80, -6
SEGV_MAPERR, SEGV_ACCERR, FPE_INTDIV, ILL_ILLOPC, ILL_ILLOPN = 1, 2, 1, 1, 2
BUS_ADRERR = 2
CODE_NAMES = {(0, SI_USER): "SI_USER", (0, SI_KERNEL): "SI_KERNEL", (0, SI_TKILL): "SI_TKILL",
              (SIGSEGV, 1): "SEGV_MAPERR", (SIGSEGV, 2): "SEGV_ACCERR", (SIGFPE, 1): "FPE_INTDIV",
              (SIGILL, 1): "ILL_ILLOPC", (SIGILL, 2): "ILL_ILLOPN", (SIGBUS, 2): "BUS_ADRERR"}

# The default action of each signal (signal(7)); the rest (1..64) terminate.
DEFAULT_ACTION = {s: "term" for s in range(1, NSIG + 1)}
DEFAULT_ACTION.update({s: "core" for s in (3, 4, 5, 6, 7, 8, 11, 24, 25, 31)})
DEFAULT_ACTION.update({s: "ignore" for s in (17, 18, 23, 28)})   # CHLD CONT URG WINCH
DEFAULT_ACTION.update({s: "stop" for s in (19, 20, 21, 22)})     # STOP TSTP TTIN TTOU
SYNCHRONOUS = (SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, 31)     # delivered first (next_signal)

# Host signals that, sent to jitbt while the guest runs, are the guest's.
# SIGCHLD (a forked guest child ended), SIGWINCH, SIGURG and SIGCONT matter only to guests that
# handle them (ignored by default, they are dropped when queued).
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGPIPE, signal.SIGALRM, signal.SIGTERM, signal.SIGVTALRM, signal.SIGPROF,
             signal.SIGCHLD, signal.SIGWINCH, signal.SIGURG, signal.SIGCONT)
# Syscalls that may block: a host signal the guest must see now interrupts them with EINTR.
BLOCKING = frozenset((0, 1, 7, 17, 18, 19, 20, 23, 35, 43, 44, 45, 46, 47, 61, 202, 230, 232, 270,
                      271, 281, 288, 295, 296))
# Writes that raise SIGPIPE on EPIPE (send* unless MSG_NOSIGNAL in their flags).
PIPE_WRITERS = {1: None, 18: None, 20: None, 296: None, 44: 3, 46: 2}
MSG_NOSIGNAL = 0x4000

# Fault kind -> (trapno, si_code) for the sigcontext and siginfo.
TRAP = {SIGFPE: (0, FPE_INTDIV), SIGILL: (6, ILL_ILLOPN), SIGTRAP: (3, SI_KERNEL),
        SIGBUS: (17, BUS_ADRERR)}

# struct sigcontext's general registers in order (r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp)
# as indices into CPUState.gpr; then rip, eflags, cs/gs/fs/ss, err, trapno, oldmask, cr2, fpstate.
SC_GPRS = (8, 9, 10, 11, 12, 13, 14, 15, 7, 6, 5, 3, 2, 0, 1, 4)
UCONTEXT = struct.Struct("<QQQI4xQ" "18Q4H4QQ64x" "Q")     # 304 bytes, from uc_flags to uc_sigmask
SIGINFO_SIZE = 128
FRAME_SIZE = 8 + UCONTEXT.size + SIGINFO_SIZE            # pretcode, ucontext, siginfo
UC_OFF, INFO_OFF = 8, 8 + UCONTEXT.size
UC_GREGS, UC_FPSTATE = 5, 31                              # indices into UCONTEXT's fields
FXSAVE_SIZE = 512
FXSAVE_HEAD = struct.Struct("<HHBxHQQII")                 # fcw fsw ftw fop rip rdp mxcsr mask
XMM_OFF = 160
UC_FLAGS = 0x2 | 0x4                                      # UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
USER_CS, USER_SS = 0x33, 0x2B
RED_ZONE = 128
EFLAGS_RESTORED = 0x50DD5           # the kernel's FIX_EFLAGS: CF PF AF ZF SF TF DF OF AC RF


class GuestTerminated(Exception):
    """The guest died of a signal; jitbt exits with 128 + signal. The message (None: silent) is
    the one line jitbt prints about it."""

    def __init__(self, signo: int, message: str | None):
        super().__init__(message)
        self.signo = signo


class Interrupted(OSError):
    """A blocking syscall interrupted by a signal the guest must see now (the syscall's -EINTR)."""

    def __init__(self):
        super().__init__(errno.EINTR, os.strerror(errno.EINTR))


def signal_name(signo: int) -> str:
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"SIGRT{signo - SIGRTMIN}" if SIGRTMIN < signo <= NSIG else f"signal {signo}"


def bit(signo: int) -> int:
    return 1 << (signo - 1)


UNBLOCKABLE = bit(SIGKILL) | bit(SIGSTOP)


@dataclass
class Action:
    """struct sigaction as the kernel stores it (x86-64: handler, flags, restorer, mask)."""
    handler: int = SIG_DFL
    flags: int = 0
    restorer: int = 0
    mask: int = 0

    PACK = struct.Struct("<QQQQ")

    def pack(self) -> bytes:
        return self.PACK.pack(self.handler, self.flags, self.restorer, self.mask)

    @classmethod
    def unpack(cls, data: bytes) -> "Action":
        return cls(*cls.PACK.unpack(data))


@dataclass
class SigInfo:
    signo: int
    code: int
    pid: int = 0
    uid: int = 0
    addr: int | None = None        # faults: si_addr

    def pack(self) -> bytes:
        head = struct.pack("<iii4x", self.signo, 0, self.code)
        body = struct.pack("<Q", self.addr) if self.addr is not None else \
            struct.pack("<iI", self.pid, self.uid)
        return (head + body).ljust(SIGINFO_SIZE, b"\0")

    def describe(self) -> str:
        """As strace shows it: {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10}."""
        code = CODE_NAMES.get((self.signo, self.code)) or CODE_NAMES.get((0, self.code)) or \
            str(self.code)
        rest = f"si_addr={self.addr:#x}" if self.addr is not None else \
            f"si_pid={self.pid}, si_uid={self.uid}"
        return f"{{si_signo={signal_name(self.signo)}, si_code={code}, {rest}}}"


class SignalState:
    """The guest's signal state (kept on the Machine as ``m.signals``)."""

    def __init__(self):
        self.actions = [Action() for _ in range(NSIG + 1)]
        self.blocked = 0
        self.pending: dict[int, list[SigInfo]] = {}
        self.alt_sp, self.alt_size, self.alt_flags = 0, 0, SS_DISABLE
        self.saved_mask: int | None = None    # sigsuspend's mask to restore after the handler
        self.blocking = False                 # in a blocking syscall that a signal may interrupt
        self.wakeup_fd = -1                   # host signals write a byte here (pause, sigsuspend)

    # ---- queries -----------------------------------------------------------------------------
    def ignored(self, signo: int) -> bool:
        h = self.actions[signo].handler
        return h == SIG_IGN or (h == SIG_DFL and DEFAULT_ACTION[signo] == "ignore")

    def next_deliverable(self) -> int:
        ready = [s for s in self.pending if not self.blocked & bit(s)]
        if not ready:
            return 0
        sync = [s for s in ready if s in SYNCHRONOUS]
        return min(sync or ready)

    def acts_now(self, signo: int) -> bool:
        """Unblocked and not ignored: a handler runs or the default action (end, stop) happens."""
        return signo == SIGKILL or not self.blocked & bit(signo) and not self.ignored(signo)

    def pending_mask(self) -> int:
        return sum(bit(s) for s in self.pending)

    # ---- alternate stack -----------------------------------------------------------------------
    def on_alt_stack(self, sp: int) -> bool:
        return self.alt_size != 0 and self.alt_sp < sp <= self.alt_sp + self.alt_size

    def alt_stack_flags(self, sp: int) -> int:
        """sigaltstack's ss_flags as seen from stack pointer `sp`."""
        if self.alt_size == 0:
            return SS_DISABLE
        return (SS_ONSTACK if self.on_alt_stack(sp) else 0) | (self.alt_flags & SS_AUTODISARM)

    def set_alt_stack(self, sp: int, flags: int, size: int, cur_sp: int) -> int:
        """do_sigaltstack: 0 or a positive errno."""
        if self.on_alt_stack(cur_sp) and not self.alt_flags & SS_AUTODISARM:
            return errno.EPERM
        mode = flags & ~SS_AUTODISARM
        if mode not in (0, SS_ONSTACK, SS_DISABLE):
            return errno.EINVAL
        if mode == SS_DISABLE:
            self.alt_sp, self.alt_size, self.alt_flags = 0, 0, SS_DISABLE
            return 0
        if size < MINSIGSTKSZ:
            return errno.ENOMEM
        self.alt_sp, self.alt_size, self.alt_flags = sp, size, flags & SS_AUTODISARM
        return 0


def committing(m) -> None:
    """The syscall is about to consume something (read data, reap a child): from here a host
    signal no longer turns it into EINTR (it is delivered after the call), so nothing is lost.
    Blocking syscalls wait interruptibly first, without consuming, then call this."""
    state(m).blocking = False


def state(m) -> SignalState:
    s = getattr(m, "signals", None)
    if s is None:
        s = m.signals = SignalState()
    return s


# ---- queueing --------------------------------------------------------------------------------

def queue(m, signo: int, code: int, pid: int = 0, uid: int = 0, replace: bool = False) -> None:
    """Make `signo` pending. An unblocked ignored signal is dropped at once, as the kernel does;
    a standard signal already pending is not queued twice (realtime signals are)."""
    s = state(m)
    if s.ignored(signo) and not s.blocked & bit(signo):
        return
    info = SigInfo(signo, code, pid, uid)
    if signo in s.pending and signo < SIGRTMIN:
        if replace:
            s.pending[signo] = [info]
        return
    s.pending.setdefault(signo, []).append(info)


def _take(s: SignalState, signo: int) -> SigInfo:
    infos = s.pending[signo]
    info = infos.pop(0)
    if not infos:
        del s.pending[signo]
    return info


def discard(s: SignalState, signo: int) -> None:
    s.pending.pop(signo, None)


# ---- delivery --------------------------------------------------------------------------------

def deliver_pending(m) -> None:
    """At a delivery point: act on every pending signal the guest does not block (lowest number
    first, faults before others); each handler gets its frame, nested as the kernel nests them."""
    s = state(m)
    while s.pending:
        signo = s.next_deliverable()
        if not signo:
            break
        info = _take(s, signo)
        act = s.actions[signo]
        if m.strace:
            m.strace_line(f"--- {signal_name(signo)} {info.describe()} ---")
        if act.handler == SIG_IGN and signo != SIGKILL:
            continue
        if act.handler == SIG_DFL or signo == SIGKILL:
            default_action(m, signo, None)
            continue
        setup_frame(m, signo, info, act)
    if s.saved_mask is not None:          # sigsuspend woke for nothing that ran a handler
        s.blocked, s.saved_mask = s.saved_mask, None


def default_action(m, signo: int, message: str | None) -> None:
    """The kernel's default action: terminate (also for core-dump signals; no core file is
    written), ignore, or stop (the jitbt process itself stops until SIGCONT)."""
    kind = DEFAULT_ACTION.get(signo, "term")
    if kind == "ignore":
        return
    if kind == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
        return
    if m.strace:
        core = " (core dumped)" if kind == "core" else ""
        m.strace_line(f"+++ killed by {signal_name(signo)}{core} +++")
    raise GuestTerminated(signo, message)


def fault_info(m, signo: int, addr: int, code: int | None = None) -> tuple[SigInfo, int, int]:
    """The siginfo of a fault, with the sigcontext's trapno and err (x86 exception vector and
    error code)."""
    rip = m.state.rip
    if signo == SIGSEGV:
        if code is None and addr == 0 and _is_rule_fault(m, rip):
            code = SI_KERNEL           # #GP from a privileged instruction: no address
        if code == SI_KERNEL:
            return SigInfo(signo, SI_KERNEL, addr=0), 13, 0
        if addr >= 1 << 47 and addr < (1 << 64) - (1 << 47):
            return SigInfo(signo, SI_KERNEL, addr=0), 13, 0    # non-canonical: #GP
        mapped = addr < ADDRESS_LIMIT and m.mem.perms[addr >> PAGE_SHIFT] & PERM_MAPPED
        code = SEGV_ACCERR if mapped else SEGV_MAPERR
        return SigInfo(signo, code, addr=addr), 14, 4 | (1 if mapped else 0)
    trapno, default_code = TRAP.get(signo, (0, SI_KERNEL))
    code = default_code if code is None else code
    where = 0 if signo == SIGTRAP else rip
    return SigInfo(signo, code, addr=where), trapno, 0


def _is_rule_fault(m, rip: int) -> bool:
    """Whether the instruction at rip faults by a rewrite rule (#GP), not by its memory access."""
    from translator.decoder import disassemble
    from translator.rewrite import classify
    insns = disassemble(m.mem.fetch(rip, 15), rip)[:1]
    rule = classify(insns[0]) if insns else None
    return bool(rule and rule.action == "fault")


def deliver_fault(m, signo: int, addr: int, code: int | None = None) -> bool:
    """A synchronous fault. True when the guest's handler will run; False when the default action
    must end the process (no handler, or the signal is blocked or ignored: the kernel then resets
    it to the default and kills, as force_sig_info does)."""
    s = state(m)
    info, trapno, err = fault_info(m, signo, addr, code)
    act = s.actions[signo]
    if m.strace:
        m.strace_line(f"--- {signal_name(signo)} {info.describe()} ---")
    if s.blocked & bit(signo) or act.handler in (SIG_DFL, SIG_IGN):
        if m.strace:
            m.strace_line(f"+++ killed by {signal_name(signo)} (core dumped) +++")
        return False
    setup_frame(m, signo, info, act, trapno=trapno, err=err, cr2=addr if signo == SIGSEGV else 0)
    return True


def setup_frame(m, signo: int, info: SigInfo, act: Action, trapno: int = 0, err: int = 0,
                cr2: int = 0) -> None:
    """Build the rt_sigframe and enter the handler (the kernel's setup_rt_frame and
    handle_signal). A frame that cannot be written ends in SIGSEGV, as force_sigsegv does."""
    st, s = m.state, state(m)
    old_mask = s.blocked if s.saved_mask is None else s.saved_mask
    rsp = st.gpr[4]
    sp = rsp - RED_ZONE
    if act.flags & SA_ONSTACK and s.alt_stack_flags(rsp) & (SS_ONSTACK | SS_DISABLE) == 0:
        sp = s.alt_sp + s.alt_size
    fpstate = (sp - FXSAVE_SIZE) & ~63
    frame = ((fpstate - FRAME_SIZE) & ~15) - 8
    gregs = [st.gpr[r] for r in SC_GPRS] + [st.rip, st.rflags()]
    uc = UCONTEXT.pack(UC_FLAGS, 0, s.alt_sp, s.alt_stack_flags(rsp), s.alt_size,
                       *gregs, USER_CS, 0, 0, USER_SS, err, trapno, old_mask & MASK64, cr2, fpstate,
                       old_mask & MASK64)
    try:
        if not act.flags & SA_RESTORER:
            raise GuestFault(0)             # x86-64 requires a restorer: the kernel fails the frame
        m.mem.write(fpstate, fxsave_bytes(st))
        m.mem.write(frame, struct.pack("<Q", act.restorer) + uc + info.pack())
    except GuestFault:
        _frame_failed(m, signo, rsp)
        return
    s.saved_mask = None
    if s.alt_flags & SS_AUTODISARM:
        s.alt_sp, s.alt_size, s.alt_flags = 0, 0, SS_DISABLE
    s.blocked |= act.mask
    if not act.flags & SA_NODEFER:
        s.blocked |= bit(signo)
    s.blocked &= ~UNBLOCKABLE & MASK64
    st.gpr[4], st.gpr[7], st.gpr[6], st.gpr[2] = frame, signo, frame + INFO_OFF, frame + UC_OFF
    st.gpr[0] = 0
    st.rip = act.handler
    if act.flags & SA_RESETHAND:
        s.actions[signo] = Action(SIG_DFL, act.flags, act.restorer, act.mask)
    st.df = 0
    for reg in st.xmm:                     # the handler starts with the FPU/SSE init state
        reg[0] = reg[1] = 0
    st.mxcsr = 0x1F80


def _frame_failed(m, signo: int, rsp: int) -> None:
    s = state(m)
    if signo == SIGSEGV:
        s.actions[SIGSEGV].handler = SIG_DFL
    if signo == SIGSEGV or not deliver_fault(m, SIGSEGV, 0, SI_KERNEL):
        raise GuestTerminated(SIGSEGV, f"guest killed by SIGSEGV: no room for the frame of "
                                       f"{signal_name(signo)} on the guest stack (rsp={rsp:#x})")


def fxsave_bytes(st) -> bytes:
    """The 512-byte fxsave image: x87 control word at its default, MXCSR, xmm0-15."""
    out = bytearray(FXSAVE_SIZE)
    FXSAVE_HEAD.pack_into(out, 0, 0x037F, 0, 0, 0, 0, 0, st.mxcsr, 0xFFFF)
    for i, reg in enumerate(st.xmm):
        struct.pack_into("<QQ", out, XMM_OFF + 16 * i, reg[0], reg[1])
    return bytes(out)


def sigreturn(m) -> int:
    """rt_sigreturn: restore what setup_frame saved, from the frame at rsp-8 (the restorer's ret
    popped the return address). Returns the restored rax. A frame the guest cannot read is fatal
    (SIGSEGV), as in the kernel."""
    st, s = m.state, state(m)
    frame = st.gpr[4] - 8
    try:
        f = UCONTEXT.unpack(m.mem.read(frame + UC_OFF, UCONTEXT.size))
        fpstate = f[UC_FPSTATE]
        fx = m.mem.read(fpstate, FXSAVE_SIZE) if fpstate else None
    except GuestFault:
        raise GuestTerminated(SIGSEGV, f"guest killed by SIGSEGV: rt_sigreturn with no readable "
                                       f"signal frame at {frame:#x}") from None
    _, _, ss_sp, ss_flags, ss_size = f[:5]
    gregs = f[UC_GREGS:UC_GREGS + 18]
    for r, v in zip(SC_GPRS, gregs):
        st.gpr[r] = v
    st.rip = gregs[16]
    st.set_rflags((st.rflags() & ~EFLAGS_RESTORED) | (gregs[17] & EFLAGS_RESTORED))
    if fx is None:
        for reg in st.xmm:
            reg[0] = reg[1] = 0
        st.mxcsr = 0x1F80
    else:
        st.mxcsr = FXSAVE_HEAD.unpack_from(fx)[6] & 0xFFFF
        for i, reg in enumerate(st.xmm):
            reg[0], reg[1] = struct.unpack_from("<QQ", fx, XMM_OFF + 16 * i)
    s.blocked = f[-1] & ~UNBLOCKABLE & MASK64
    s.set_alt_stack(ss_sp, ss_flags & ~SS_ONSTACK, ss_size, st.gpr[4])   # errors ignored
    return st.gpr[0]


# ---- syscalls and delivery points ----------------------------------------------------------------

def serve_syscall(m) -> None:
    """Serve the guest's syscall (syscalls.do_syscall), raise SIGPIPE for a write that met a
    broken pipe, then deliver what became deliverable."""
    from .syscalls import do_syscall
    st, s = m.state, state(m)
    nr = st.gpr[0]
    args = (st.gpr[7], st.gpr[6], st.gpr[2], st.gpr[10])
    s.blocking = nr in BLOCKING
    try:
        do_syscall(m)
    except Interrupted:     # the signal came just after the call: the guest sees EINTR
        st.gpr[0] = -errno.EINTR & MASK64
    finally:
        s.blocking = False
    if nr in PIPE_WRITERS and st.gpr[0] == -errno.EPIPE & MASK64:
        flags_arg = PIPE_WRITERS[nr]
        if flags_arg is None or not args[flags_arg] & MSG_NOSIGNAL:
            queue(m, SIGPIPE, SI_USER, os.getpid(), os.getuid(), replace=True)
    if s.pending:
        deliver_pending(m)


def wait_for_signal(m, deadline: float | None = None, wanted: int = 0) -> bool:
    """Block until a signal acts on the guest (or one in `wanted` is pending); False when the
    `deadline` (time.monotonic) passed first. Unblocked ignored signals are dropped meanwhile."""
    s = state(m)
    while True:
        for signo in list(s.pending):
            if not s.blocked & bit(signo) and not s.acts_now(signo):
                discard(s, signo)
        if any(s.acts_now(x) or wanted & bit(x) for x in s.pending):
            return True
        timeout = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
        if timeout <= 0:
            return False
        if s.wakeup_fd >= 0:
            select.select([s.wakeup_fd], [], [], timeout)
            try:
                os.read(s.wakeup_fd, 512)
            except BlockingIOError:
                pass
        else:
            time.sleep(min(timeout, 0.05))


class host_signals:
    """While the guest runs (``with host_signals(m):``), host signals sent to jitbt (FORWARDED)
    become the guest's. Only the main thread can install handlers; elsewhere (a Machine run from
    a thread) nothing changes. (A class, not contextlib's decorator: importing contextlib was a
    millisecond of every start.)"""

    def __init__(self, m):
        self.m = m
        self.saved = None       # (wakeup pipe, old wakeup fd, old handlers, state) while installed

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        m = self.m
        s = state(m)

        def on_signal(signo, frame):
            queue(m, signo, SI_KERNEL if signo in (signal.SIGALRM, signal.SIGVTALRM,
                                                   signal.SIGPROF) else SI_USER)
            if s.blocking and signo != SIGPIPE and s.acts_now(signo) and signo in s.pending and (
                    s.actions[signo].handler == SIG_DFL
                    or not s.actions[signo].flags & SA_RESTART):
                s.blocking = False
                raise Interrupted()

        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        old = {sig: signal.signal(sig, on_signal) for sig in FORWARDED}
        s.wakeup_fd = r
        self.saved = (r, w, old_fd, old, s)
        return self

    def __exit__(self, *exc) -> bool:
        if self.saved is None:
            return False
        r, w, old_fd, old, s = self.saved
        self.saved = None
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in old.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(old_fd)
        s.wakeup_fd = -1
        os.close(r)
        os.close(w)
        return False
