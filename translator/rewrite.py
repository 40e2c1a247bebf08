"""Rewrite rules: the one place where sensitive instructions are classified.

An instruction is *sensitive* when translating it as plain computation would be wrong: it talks to
the kernel, reveals the host, reads time, or is privileged in user mode. Each rule below names the
instructions, what they become, and why. The decoder ends a block at every sensitive instruction;
the lifter turns the rule into an exit to the runtime or a guest fault::

    from translator.rewrite import classify
    rule = classify(insn)            # None for an ordinary (safe) instruction
    rule.action, rule.reason

Actions:
  exit   leave translated code with ``rule.code`` (rip = next instruction); the runtime does the work
  fault  raise ``rule.signal`` in the guest; ``rule.after`` says whether rip points past the
         instruction (traps, as for int3) or at it (faults)
"""
from __future__ import annotations

from .plain import dataclass

from .state import SIGILL, SIGSEGV, SIGTRAP, Exit

HELPER_CPUID = 1
HELPER_RDTSC = 2
HELPER_RDTSCP = 3


@dataclass(frozen=True)
class Rule:
    name: str
    action: str               # "exit" or "fault"
    reason: str
    code: int = Exit.CONTINUE
    helper: int = 0
    signal: int = 0
    after: bool = False       # fault reported with rip after the instruction (a trap)
    ends_block: bool = True

    @property
    def ends_run(self) -> bool:
        """True when nothing after the instruction runs without the runtime deciding so."""
        return self.action == "fault"


RULES: dict[str, Rule] = {}


def _rule(mnemonics: str, **kw) -> None:
    for m in mnemonics.split():
        RULES[m] = Rule(name=m, **kw)


_rule("syscall", action="exit", code=Exit.SYSCALL,
      reason="system calls are served by the runtime's Linux layer, never by the host kernel directly")
_rule("cpuid", action="exit", code=Exit.HELPER, helper=HELPER_CPUID,
      reason="the guest sees the declared CPU model (runtime/cpu.py), never the host's features")
_rule("rdtsc", action="exit", code=Exit.HELPER, helper=HELPER_RDTSC,
      reason="time is the runtime's: monotonic host time now, a modelled clock at cycle level")
_rule("rdtscp", action="exit", code=Exit.HELPER, helper=HELPER_RDTSCP,
      reason="as rdtsc, and it also reads TSC_AUX (the cpu number)")
_rule("int3", action="fault", signal=SIGTRAP, after=True,
      reason="breakpoint trap: SIGTRAP with rip after the int3, as the kernel reports it")
_rule("int1", action="fault", signal=SIGTRAP, after=True,
      reason="icebp debug trap: SIGTRAP")
_rule("int", action="fault", signal=SIGSEGV,
      reason="software interrupts other than int3 are a general-protection fault in 64-bit user "
             "mode (int 0x80, the 32-bit syscall gate, is not supported yet)")
_rule("into", action="fault", signal=SIGILL, reason="into is invalid in 64-bit mode")
_rule("ud2 ud1 ud0", action="fault", signal=SIGILL,
      reason="defined to raise #UD: SIGILL at the instruction")
_rule("(bad)", action="fault", signal=SIGILL,
      reason="bytes that do not decode raise #UD: SIGILL at the address")
_rule("xgetbv", action="fault", signal=SIGILL,
      reason="the CPU model does not claim OSXSAVE, so xgetbv raises #UD")
_rule("hlt cli sti in out insb insw insd outsb outsw outsd clts lgdt lidt lldt ltr lmsw invd "
      "wbinvd invlpg wrmsr rdmsr rdpmc swapgs sysret sysexit sysenter iretd iretq",
      action="fault", signal=SIGSEGV,
      reason="privileged or I/O instruction: #GP in user mode, which Linux delivers as SIGSEGV")


def classify(insn) -> Rule | None:
    """The rule for a sensitive instruction, or None when it is safe to translate as computation."""
    mnemonic = insn.mnemonic
    rule = RULES.get(mnemonic)
    if rule is not None:
        return rule
    if mnemonic == "mov" and ("cr" in insn.op_str or "dr" in insn.op_str) \
            and any(o.strip().startswith(("cr", "dr")) for o in insn.op_str.split(",")):
        return RULES["hlt"]   # moves to or from control and debug registers: privileged
    return None
