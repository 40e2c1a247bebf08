"""The accuracy levels (translator/knobs.py): the command line, the knobs in the cache keys, and
the guarantees of the levels that are not shown elsewhere:

- self-modifying code works at every level (guests/libc/smc.c, compared with the native run),
  and the test fails when the protection is switched off (--set smc=off);
- at instruction level and finer, a guest faulting in the middle of a block sees in its signal
  handler the registers and flags as they were before the faulting instruction (identical to
  the native run of guests/libc/faultctx.c), and an access to an unmapped or read-only page
  changes nothing;
- the retired-instruction count is exact, checked on a loop whose count is known by
  construction (guests/src/icount.S), and --trace writes one line per executed instruction.

The datapath flag model is proven by tests/test_datapath_*.py, the cycle clock by
tests/test_cycle.py and routine replacement by tests/test_hle.py.
"""
from __future__ import annotations

import re

import pytest
from elftools.elf.elffile import ELFFile

from conftest import BUILD, clean_env, run_jitbt, run_native
from translator.knobs import KNOBS, LEVELS, KnobError, Knobs, knobs_for

ALL_LEVELS = list(LEVELS)
PRECISE_LEVELS = ["instruction", "cycle", "datapath"]


# ---- the command line ------------------------------------------------------------------------
def test_levels_command_lists_every_level_and_knob():
    r = run_jitbt("levels")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    for level in ALL_LEVELS:
        assert re.search(rf"^{level}\s", out, re.M), level
    for knob in KNOBS:
        assert re.search(rf"^\s+{knob}\s", out, re.M), knob


@pytest.mark.parametrize("args,message", [
    (["--accuracy", "precise"], "--accuracy precise: expected one of datapath"),
    (["--set", "flags=lazy"], "flags must be one of exact, precise, live"),
    (["--set", "nosuch=1"], "expected KNOB=VALUE"),
    (["--set", "opt=7"], "opt must be one of 0, 1, 2, 3"),
    (["--set", "region=0"], "region must be at least 1"),
])
def test_bad_level_or_knob_is_one_clear_line(args, message):
    r = run_jitbt("run", *args, BUILD / "hello")
    assert r.returncode != 0
    err = r.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("jitbt: ") and message in err, err


def test_set_changes_one_knob_of_the_preset():
    k = knobs_for("instruction", ["clock=virtual", "opt=1"])
    base = LEVELS["instruction"][0]
    assert (k.clock, k.opt) == ("virtual", 1)
    assert all(getattr(k, n) == getattr(base, n) for n in KNOBS if n not in ("clock", "opt"))
    r = run_jitbt("run", "--accuracy", "instruction", "--set", "clock=virtual", "--stats",
                  BUILD / "hello")
    assert r.returncode == 0
    assert re.search(rb"accuracy +instruction: .*clock=virtual", r.stderr), r.stderr


def test_knob_errors_name_the_problem():
    with pytest.raises(KnobError, match="unit must be one of"):
        knobs_for("block", ["unit=page"])


def test_every_knob_is_in_the_cache_keys():
    """Two knob sets that differ in any one knob give different block-cache and persistent-cache
    keys, so no translation made under one is ever used under the other."""
    from runtime.memory import GuestMemory
    from translator import Translator
    from translator.state import PERM_R, PERM_X
    mem = GuestMemory()
    mem.map(0x10000, 0x1000, PERM_R | PERM_X)
    mem.poke(0x10000, b"\x48\x01\xd8\xc3")          # add rax, rbx; ret
    base = Knobs()
    variants = {"unit": "block", "flags": "precise", "smc": "off", "count": "on",
                "clock": "virtual", "routines": "libc", "opt": 1, "region": 4, "trace": True,
                "chain": "off", "entries": "returns", "memory": "bounded"}
    # background, baseline and warmup change when code is compiled (and whether it is
    # interpreted first), not the code: the last assertions show it
    assert set(variants) >= set(KNOBS) - {"background", "baseline", "warmup"}
    keys = set()
    for name, value in [(None, None), *variants.items()]:
        k = base if name is None else Knobs(**{name: value})
        tr = Translator(mem.fetch, k)
        block = tr.decoder.decode_block(mem.fetch, 0x10000)
        keys.add((tr.cache.key, tr.key("blocks", tr.codegen, [block])))
    assert len({c for c, _ in keys}) == len(variants) + 1
    assert len({p for _, p in keys}) == len(variants) + 1
    for same in (Knobs(background="off"), Knobs(baseline="jit"), Knobs(warmup=5)):
        tr = Translator(mem.fetch, same)
        block = tr.decoder.decode_block(mem.fetch, 0x10000)
        assert (tr.cache.key, tr.key("blocks", tr.codegen, [block])) in keys


def test_persistent_cache_is_not_shared_between_levels(tmp_path):
    env = {**clean_env(), "XDG_CACHE_HOME": str(tmp_path)}

    def hits(level):           # (baseline=jit: every block compiled, and stored)
        r = run_jitbt("run", "--accuracy", level, "--set", "baseline=jit", "--stats",
                      BUILD / "hello", env=env)
        assert r.returncode == 0
        return int(re.search(rb"persistent cache +(\d+) hits", r.stderr).group(1))

    assert hits("block") == 0
    assert hits("instruction") == 0      # nothing from the block level is reused
    assert hits("instruction") > 0       # its own translations are


# ---- self-modifying code at every level ------------------------------------------------------
@pytest.mark.parametrize("level", ALL_LEVELS)
@pytest.mark.parametrize("guest", ["smc-glibc", "smc-musl"])
def test_self_modifying_code_takes_effect_at_every_level(level, guest):
    env = clean_env()
    native = run_native(BUILD / guest, env=env)
    jit = run_jitbt("run", "--accuracy", level, BUILD / guest, env=env)
    assert jit.stderr == native.stderr
    assert jit.stdout == native.stdout
    assert jit.returncode == native.returncode == 0


def test_without_smc_protection_stale_code_runs():
    """The knob matters, and the test above can fail: with smc=off, code rewritten in place
    after it ran keeps its old translation."""
    env = clean_env()
    native = run_native(BUILD / "smc-musl", env=env)
    jit = run_jitbt("run", "--set", "smc=off", BUILD / "smc-musl", env=env)
    assert jit.returncode == 0
    assert jit.stdout != native.stdout
    # W^X code (mprotect between writes) is still right: mprotect invalidates.
    pick = lambda out: re.search(rb"w\^x buffer: \d+", out).group(0)   # noqa: E731
    assert pick(jit.stdout) == pick(native.stdout)


# ---- precise faults --------------------------------------------------------------------------
@pytest.mark.parametrize("level", PRECISE_LEVELS)
@pytest.mark.parametrize("guest", ["faultctx-glibc", "faultctx-musl"])
def test_fault_in_mid_block_sees_the_state_before_the_instruction(level, guest):
    env = clean_env()
    native = run_native(BUILD / guest, env=env)
    jit = run_jitbt("run", "--accuracy", level, BUILD / guest, env=env)
    assert native.returncode == 0
    assert jit.stdout == native.stdout
    assert jit.stderr == native.stderr
    assert jit.returncode == 0


@pytest.mark.parametrize("background", ["off", "on"])
def test_block_level_faults_reach_the_guest_with_the_right_signal_and_address(background):
    """At block level only block boundaries are precise: the flags may differ, but the signal,
    its code, the faulting instruction and the registers the instructions wrote do not. (With
    background=off the hot loop case faults in code the optimising tier compiled: its guest
    state lives in locals, written back on the way out; with on, wherever the region is then.)"""
    env = clean_env()
    native = run_native(BUILD / "faultctx-glibc", env=env).stdout.decode().splitlines()
    jit = run_jitbt("run", "--set", f"background={background}", BUILD / "faultctx-glibc",
                    env=env).stdout.decode().splitlines()
    strip = lambda lines: [re.sub(r" flags \w+$", "", x) for x in lines]   # noqa: E731
    assert strip(jit) == strip(native)


# ---- exact retired-instruction count and the trace -------------------------------------------
def _retired(stderr: bytes) -> int:
    return int(re.search(rb"instructions retired +(\d+)", stderr).group(1))


@pytest.mark.parametrize("level", PRECISE_LEVELS)
def test_retired_instruction_count_is_exact(level):
    for args in ([], ["a", "b"]):
        r = run_jitbt("run", "--accuracy", level, "--stats", BUILD / "icount", *args)
        assert r.returncode == 0
        assert _retired(r.stderr) == 2000 * (1 + len(args)) + 5


def test_retired_count_stops_before_a_faulting_instruction(tmp_path):
    """fault-ud2 faults on its ud2: the instructions before it retire, the ud2 does not. The
    count under the instruction level equals the trace's lines less the faulting one."""
    out = tmp_path / "ud2.trace"
    r = run_jitbt("run", "--accuracy", "instruction", "--stats", "--trace", out,
                  BUILD / "fault-ud2")
    assert r.returncode == run_native(BUILD / "fault-ud2").returncode    # killed by SIGILL
    lines = out.read_text().splitlines()
    assert "ud2" in lines[-1]
    assert _retired(r.stderr) == len(lines) - 1


def test_trace_has_one_line_per_executed_instruction(tmp_path):
    with open(BUILD / "icount", "rb") as f:
        entry = ELFFile(f).header.e_entry
    for args in ([], ["x"]):
        out = tmp_path / "trace.txt"
        r = run_jitbt("run", "--trace", out, BUILD / "icount", *args)
        assert r.returncode == 0
        lines = out.read_text().splitlines()
        assert len(lines) == 2000 * (1 + len(args)) + 5
        assert lines[0].startswith(f"{entry:#x}: ") and "mov" in lines[0]
        assert lines[-1].endswith("syscall")
        assert sum("jne" in x for x in lines) == 1000 * (1 + len(args))


def test_trace_file_that_cannot_be_written_is_one_clear_line(tmp_path):
    r = run_jitbt("run", "--trace", tmp_path / "no" / "such" / "dir", BUILD / "hello")
    assert r.returncode != 0
    assert r.stderr.decode().startswith("jitbt: --trace")


# ---- chaining (knob chain) -----------------------------------------------------------------
def test_chaining_keeps_execution_out_of_the_dispatcher_loop():
    """With chain=on, translations go on to their successors through the lookup table without
    the dispatcher loop (ret and the switch's indirect jump included); the output is native's
    either way, and --set chain=off shows what the loop would have run. (Block by block: in a
    region most of these transfers are branches inside one function, see below.)"""
    guest = BUILD / "statemachine-O2"
    native = run_native(guest)
    entries = {}
    for chain in ("on", "off"):
        r = run_jitbt("run", "--no-cache", "--stats", "--set", f"chain={chain}", "--set",
                      "unit=block", "--set", "background=off", guest, env=clean_env())
        assert (r.returncode, r.stdout) == (native.returncode, native.stdout), chain
        entries[chain] = int(re.search(rb"blocks run by the dispatcher loop\s+(\d+)",
                                       r.stderr).group(1))
    # Cold code (its first 20,000 runs) always returns to the loop; the hot code chains.
    assert entries["on"] * 2 < entries["off"], entries


def test_a_hot_switch_runs_inside_its_region():
    """A hot region takes in the blocks a jmp through a register went to nearby (the cases of
    a switch), and the jmp becomes a branch inside the function: the state machine's loop,
    switch included, then leaves its region several times less often than block by block."""
    guest = BUILD / "statemachine-O2"
    native = run_native(guest)
    ticks = {}
    for unit in ("region", "block"):
        r = run_jitbt("run", "--no-cache", "--stats", "--set", "chain=off", "--set",
                      f"unit={unit}", "--set", "background=off", guest, env=clean_env())
        assert (r.returncode, r.stdout) == (native.returncode, native.stdout), unit
        ticks[unit] = int(re.search(rb"blocks run by the dispatcher loop\s+(\d+)",
                                    r.stderr).group(1))
    # (Without the switch inside, region and block come out about even; cold code, its first
    # 20,000 runs, returns to the loop either way.)
    assert ticks["region"] * 3 < ticks["block"], ticks


# ---- memory=bounded ------------------------------------------------------------------------
@pytest.mark.parametrize("guest", ["libcmix-glibc", "numeric-glibc-O3", "sort-O2"])
@pytest.mark.parametrize("baseline", ["interp", "jit"])
def test_bounded_memory_runs_programs_as_native_does(guest, baseline):
    """Without checks (memory=bounded) a program that does not fault prints what it prints
    natively, interpreted first or compiled."""
    native = run_native(BUILD / guest, env=clean_env())
    r = run_jitbt("run", "--no-cache", "--set", "memory=bounded", "--set", f"baseline={baseline}",
                  "--stats", BUILD / guest, env=clean_env())
    assert (r.stdout, r.returncode) == (native.stdout, native.returncode)
    assert re.search(rb"accuracy +block: .*memory=bounded smc=off", r.stderr), r.stderr


def test_bounded_memory_keeps_every_access_inside_the_guest_region():
    """An unchecked access far outside the guest address space lands inside the host region
    reserved for it (its address modulo the space), never in host memory: a store to 2**40 + 8
    and a load from 2**44 + 8 are guest address 8's, in the interpreter's handlers, the cold
    tier and the optimising tier alike; with the checks, the same code faults."""
    import ctypes

    from runtime.memory import GuestMemory
    from translator import Translator
    from translator.conformance import assemble
    from translator.state import ADDRESS_LIMIT, PERM_R, PERM_W, PERM_X, CPUState, Exit
    assert (1 << 40) % ADDRESS_LIMIT == 0 and (1 << 44) % ADDRESS_LIMIT == 0
    base = 0x400000
    code = assemble("mov rax, 0x10000000008; mov qword ptr [rax], rbx; "
                    "mov rcx, 0x100000000008; mov rdx, qword ptr [rcx]; jmp 0x400100", base)
    for memory, tier in [("bounded", "interp"), ("bounded", "jit"), ("bounded", "hot"),
                         ("checked", "jit")]:
        mem = GuestMemory()
        mem.map(base, 0x1000, PERM_R | PERM_X)
        mem.map(0x1000, 0x1000, PERM_R | PERM_W)        # (guest address 8 stays unmapped)
        mem.poke(base, code)
        knobs = knobs_for("block", [f"memory={memory}", "background=off",
                                    f"baseline={'interp' if tier == 'interp' else 'jit'}"])
        tr = Translator(mem.fetch, knobs)
        t = (tr.compile_region([tr.decoder.decode_block(mem.fetch, base)]) if tier == "hot"
             else tr.lookup(base))
        assert t.interpreted == (tier == "interp")
        st = CPUState()
        st.gpr[3] = 0x1122334455667788                     # rbx
        st.rip = base
        exit_code = tr.entry(t.host, t.data)(ctypes.addressof(st), mem.base, mem.perm_base)
        if memory == "checked":
            assert exit_code == Exit.FAULT and st.fault_addr == 0x10000000008
            continue
        # (a hot region's exit may also hand over for its tick budget: the state's is 0 here)
        assert exit_code in (Exit.CONTINUE, Exit.BUDGET) and st.rip == 0x400100, (tier, exit_code)
        assert st.gpr[2] == 0x1122334455667788, tier       # rdx: read back through 2**44 + 8
        assert mem.view[8:16].tobytes() == (0x1122334455667788).to_bytes(8, "little"), tier


def test_bounded_memory_turns_self_modifying_code_checks_off():
    assert knobs_for("block", ["memory=bounded"]).smc == "off"
    with pytest.raises(KnobError, match="not with smc=page"):
        knobs_for("block", ["memory=bounded", "smc=page"])
    for command in ("run", "prepare"):
        r = run_jitbt(command, "--set", "memory=bounded", "--set", "smc=page", BUILD / "hello")
        err = r.stderr.decode()
        assert r.returncode != 0 and err.count("\n") == 1 and "not with smc=page" in err, err
