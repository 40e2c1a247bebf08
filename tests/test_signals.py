"""Guest signals, differential against the native run: handlers for faults (recovered with
siglongjmp or by editing the saved context), raise/kill with SA_SIGINFO, masks, sigsuspend, an
alternate stack, timers, default actions (abort, SIGPIPE, unhandled faults) and host signals sent
to jitbt while the guest runs. The guests (guests/libc/sig*.c) are built for glibc static, glibc
static-pie and musl static; stdout, stderr and exit status must match the native run, except that
a guest killed by a fault gets jitbt's one explanatory line on stderr."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from conftest import BUILD, ROOT, clean_env, run_jitbt, run_native

VARIANTS = ("glibc", "glibc-pie", "musl")


@pytest.mark.parametrize("variant", VARIANTS)
def test_handlers_masks_altstack_and_context_edits_match_native(variant):
    guest = BUILD / f"sigcatch-{variant}"
    native = run_native(guest, env=clean_env())
    jit = run_jitbt("run", guest, env=clean_env())
    assert native.returncode == 0, native.stdout
    assert jit.stdout.decode() == native.stdout.decode()
    assert jit.stderr == native.stderr
    assert jit.returncode == native.returncode


# mode -> (signal name, mnemonic) for the modes that die of a fault (jitbt explains them)
FAULT_MODES = {"segv": ("SIGSEGV", "mov"), "segv-blocked": ("SIGSEGV", "mov"),
               "fpe-ignored": ("SIGFPE", "idiv")}
SILENT_MODES = ("abort", "pipe", "pipe-ignored", "term", "kill")
# the statuses the kernel gives, as a shell shows them (128 + signal)
STATUS = {"abort": 134, "pipe": 141, "term": 143, "kill": 137, "segv": 139, "pipe-ignored": 0,
          "fpe-ignored": 136}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", [*FAULT_MODES, *SILENT_MODES])
def test_default_actions_end_the_guest_as_the_kernel_does(variant, mode):
    guest = BUILD / f"sigdie-{variant}"
    native = run_native(guest, [mode], env=clean_env())
    jit = run_jitbt("run", guest, mode, env=clean_env())
    status = 128 - native.returncode if native.returncode < 0 else native.returncode
    assert status == STATUS.get(mode, status)
    assert jit.returncode == native.returncode       # killed by the same signal, or same exit
    assert jit.stdout == native.stdout           # output written before the signal is not lost
    if mode in FAULT_MODES:
        signame, mnemonic = FAULT_MODES[mode]
        (line,) = jit.stderr.decode().splitlines()
        assert line.startswith(f"jitbt: guest killed by {signame} at 0x") and mnemonic in line
    else:
        assert jit.stderr == native.stderr


def _run_until_ready(cmd):
    # stdin stays open: read blocks. The signals sent start with their default action,
    # whatever this process inherited (a shell starts background jobs with SIGINT ignored,
    # nohup ignores SIGHUP, and exec keeps ignored signals ignored).
    def defaults():
        for signo in {s for _, s in HOST_CASES}:
            signal.signal(signo, signal.SIG_DFL)
    p = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=clean_env(), preexec_fn=defaults)
    lines = [p.stdout.readline(), p.stdout.readline()]
    assert lines[1] == b"ready\n", lines
    return p, b"".join(lines)


def _signal_and_finish(p, head, signo):
    time.sleep(1.0)           # for jitbt: long enough for the spin loop to run as a hot region
    p.send_signal(signo)
    try:
        p.wait(timeout=30)
    finally:
        p.kill()
    return head + p.stdout.read(), p.stderr.read(), p.returncode


HOST_CASES = [("wait-int", signal.SIGINT), ("pause", signal.SIGTERM), ("spin", signal.SIGTERM),
              ("spin", signal.SIGINT), ("read", signal.SIGINT), ("read", signal.SIGHUP)]


@pytest.mark.parametrize("mode,signo", HOST_CASES, ids=[f"{m}-{s.name}" for m, s in HOST_CASES])
def test_host_signals_reach_the_guest(mode, signo):
    """A signal sent to jitbt is the guest's: its handler runs (in a hot loop, in pause), or the
    default action ends it silently with 128 + signal, as a native process ends."""
    guest = str(BUILD / "sigdie-glibc")
    native = _signal_and_finish(*_run_until_ready([guest, mode]), signo)
    jit = _signal_and_finish(*_run_until_ready([sys.executable, "-m", "runtime.cli", "run", guest,
                                                mode]), signo)
    assert jit == native                              # output, errors, and the same death


@pytest.mark.parametrize("variant", ("glibc", "musl"))
def test_alarm_interrupts_a_blocking_read_with_eintr(variant):
    """alarm(1), a SIGALRM handler without SA_RESTART, read from a pipe that stays open: the read
    fails with EINTR after the handler ran."""
    def run(cmd):
        p = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=clean_env())
        try:
            p.wait(timeout=60)
        finally:
            p.kill()
        return p.stdout.read(), p.stderr.read(), p.returncode
    guest = str(BUILD / f"sigdie-{variant}")
    native = run([guest, "read-alarm"])
    assert b"read=-1 eintr=1 flag=14" in native[0]
    assert run([sys.executable, "-m", "runtime.cli", "run", guest, "read-alarm"]) == native


def test_strace_shows_delivery_and_death():
    jit = run_jitbt("run", "--strace", BUILD / "sigdie-glibc", "term")
    err = jit.stderr.decode()
    assert "--- SIGTERM {si_signo=SIGTERM, si_code=SI_TKILL" in err
    assert "+++ killed by SIGTERM +++" in err
    assert jit.returncode == -15                       # killed by SIGTERM


# ---- the frame itself, in process ------------------------------------------------------------

def _machine_with_handler(signo, flags=0):
    import struct as st_

    from runtime import signals as sg
    from runtime.machine import Machine
    m = Machine()
    m.mem.map(0x10000, 0x10000, 3)                       # stack
    m.state.gpr[4] = 0x1F000 - 0x30                      # an arbitrary, unaligned-ish rsp
    for i in range(16):
        if i != 4:
            m.state.gpr[i] = 0x1111 * (i + 1)
    m.state.rip, m.state.zf, m.state.cf = 0x401000, 1, 1
    m.state.xmm[3][0], m.state.xmm[3][1], m.state.mxcsr = 5, 6, 0x1FA0
    m.signals.actions[signo] = sg.Action(0x402000, sg.SA_SIGINFO | sg.SA_RESTORER | flags,
                                         0x403000, 1 << 9)
    return m, sg, st_


def test_unsupported_instruction_goes_to_a_sigill_handler_and_sigreturn_restores_everything():
    m, sg, struct = _machine_with_handler(4)
    before = ([m.state.gpr[i] for i in range(16)], m.state.rflags(), m.state.mxcsr,
              [tuple(x) for x in m.state.xmm])
    m.unsupported(0x401000)
    st = m.state
    frame = st.gpr[4]
    assert frame % 16 == 8 and frame < 0x1F000 - 0x30 - 128
    assert (st.rip, st.gpr[7], st.gpr[0]) == (0x402000, 4, 0)
    assert (st.gpr[6], st.gpr[2]) == (frame + sg.INFO_OFF, frame + sg.UC_OFF)
    assert m.mem.read_u64(frame) == 0x403000                          # return to the restorer
    signo, _, code, _, addr = struct.unpack("<iiiiQ", m.mem.read(st.gpr[6], 24))
    assert (signo, code, addr) == (4, sg.ILL_ILLOPC, 0x401000)
    assert m.mem.read_u64(st.gpr[2] + 40 + 16 * 8) == 0x401000       # gregs[REG_RIP]
    assert m.signals.blocked == (1 << 3) | (1 << 9)                  # SIGILL and sa_mask
    assert (st.mxcsr, tuple(st.xmm[3])) == (0x1F80, (0, 0))
    st.gpr[4] = frame + 8                                            # the restorer's ret
    assert sg.sigreturn(m) == before[0][0]
    after = ([st.gpr[i] for i in range(16)], st.rflags(), st.mxcsr, [tuple(x) for x in st.xmm])
    assert after == before and st.rip == 0x401000 and m.signals.blocked == 0


def test_unsupported_instruction_without_a_handler_still_reports_it():
    from runtime.machine import Machine
    from runtime.signals import GuestTerminated
    m = Machine()
    with pytest.raises(GuestTerminated) as e:
        m.unsupported(0x401000)
    assert e.value.signo == 4 and "unsupported instruction" in e.value.args[0]


def test_alternate_stack_and_autodisarm():
    m, sg, _ = _machine_with_handler(10)
    m.mem.map(0x30000, 0x4000, 3)
    s = m.signals
    s.actions[10].flags |= sg.SA_ONSTACK
    assert s.set_alt_stack(0x30000, sg.SS_AUTODISARM, 0x4000, m.state.gpr[4]) == 0
    sg.queue(m, 10, sg.SI_USER)
    sg.deliver_pending(m)
    assert 0x30000 < m.state.gpr[4] < 0x34000
    assert s.alt_size == 0 and s.alt_flags == sg.SS_DISABLE       # disarmed while in the handler
    m.state.gpr[4] += 8
    sg.sigreturn(m)
    assert (s.alt_sp, s.alt_size, s.alt_flags) == (0x30000, 0x4000, sg.SS_AUTODISARM)
