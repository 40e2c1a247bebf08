"""Lift decoded blocks to LLVM IR functions.

One guest block becomes one function ``i32 @name(ptr noalias %st, ptr noalias %mem, ptr %perm,
ptr %data)``: ``st`` is the guest CPU state (translator/state.py), ``mem`` the host base of guest
memory, ``perm`` the page permission table and ``data`` the word kept beside the function in the
lookup table (compiled code ignores it; the interpreter's handlers get their record there). It returns an ``Exit`` code after storing the guest address to
continue at in ``st.rip``::

    from translator.lifter import Lifter
    text = Lifter().lift(block, "b_401000")     # the function's IR text

The lifter is the vocabulary that semantics (translator/semantics/) are written in: operand reads
and writes generic over kind and width, checked guest memory, flag helpers and condition codes.
"""
from __future__ import annotations

import re

from .irbuilder import SYNC, IRBuilder, const
from .knobs import Knobs
from .runtime_ir import (BLOCK_CC, CHECK_DEF, FLAGS_ADD, FLAGS_LOGIC, FLAGS_LOGIC_AF0,
                         FLAGS_SUB, FUNCTION_ARGS, MODULE_HEADER, STATE_TYPE, WINDOW)
from .state import (ADDRESS_LIMIT, FLAG_NAMES, GPR_NAMES, PERM_R, PERM_W, SIGSEGV, TABLE_ENTRY,
                    Exit, access_fault, field_index, table_index, table_index_ir)

_SEMANTICS: dict | None = None


def semantics() -> dict:
    """The semantics registry (translator/semantics), imported when first needed: a warm run
    lifts nothing, and importing every instruction family cost each start about 6 ms."""
    global _SEMANTICS
    if _SEMANTICS is None:
        from .semantics import SEMANTICS
        _SEMANTICS = SEMANTICS
    return _SEMANTICS



# condition code -> (flag expression kind)
CONDITIONS = {
    "o": "of", "no": "!of", "b": "cf", "ae": "!cf", "e": "zf", "ne": "!zf",
    "be": "cf|zf", "a": "!(cf|zf)", "s": "sf", "ns": "!sf", "p": "pf", "np": "!pf",
    "l": "sf^of", "ge": "!(sf^of)", "le": "zf|(sf^of)", "g": "!(zf|(sf^of))",
}


# Condition codes after `cmp a, c` (or sub) as comparisons of a and c.
COMPARED = {"e": "eq", "ne": "ne", "b": "ult", "ae": "uge", "be": "ule", "a": "ugt",
            "l": "slt", "ge": "sge", "le": "sle", "g": "sgt"}


# State fields the optimising tier keeps in locals (FunctionLifter.promote), with their types.
PROMOTED = {"gpr": "i64", "xmm": "<2 x i64>", "ticks": "i64", **{f: "i8" for f in FLAG_NAMES}}


class Unsupported(Exception):
    """Raised by a semantic for an operand form it does not handle (becomes an UNSUPPORTED exit)."""


ALL_FLAGS = frozenset(FLAG_NAMES)
# Ticks a hot region's back edge to its head leaves with; its other back edges leave at 0
# (see goto): a loop that comes back to the head leaves there, one that does not leaves at
# its own back edge this many back edges later.
DRAIN = 1 << 19
SYNC_LINE = re.compile(re.escape(SYNC) + r"((?: flags[^\n]*)?)\n")
STORE_GPR = re.compile(r"^  store i64 [^,]+, ptr %a_gpr(\d+)$")

# Instructions that read their memory destination, compute (flags included), then store: the
# read checks for write permission too, so a store that would fault faults before anything
# changes (a read-only page gets SIGSEGV with the flags as they were).
READ_MODIFY_WRITE = frozenset(
    "add adc sub sbb and or xor inc dec neg not shl shr sal sar rol ror rcl rcr shld shrd "
    "xchg xadd cmpxchg bts btr btc".split())


class _Retry(Exception):
    """A semantic gave up on an instruction: lift again with its block ending there."""

    def __init__(self, where: tuple[int, int]):
        self.where = where      # (block index, instruction index)


class Lifter:
    """Lifts blocks as the knobs say (translator/knobs.py): semantics read ``L.lifter.knobs``."""

    def __init__(self, knobs: Knobs | None = None):
        self.knobs = knobs = knobs or Knobs()
        self.checked = knobs.memory == "checked"
        self.flag_liveness = knobs.flags == "live"
        self.exact_flags = knobs.exact_flags

    def lift(self, block, name: str, chain: bool = True, entries: bool = False
             ) -> tuple[str, set]:
        """The IR text of the function for `block`, and the intrinsics it uses.

        `block` may be a list of blocks (a region, even of one block): they become one function
        entered at the first block, and direct branches between them (a block's branch to
        itself too) become branches inside the function. `chain` False: the function returns to
        the dispatcher at its end even when the chain knob is on (cold code: it runs a few
        thousand times before it is hot, and chaining code would cost compile time for nothing).
        `entries` True: `block` is a list of blocks that stay separate (every transfer leaves the
        function) but share one function, entered at the block whose address is in the state's
        rip: LLVM's per-function cost (about half a millisecond at -O0) is paid once a module.
        """
        blocks = block if isinstance(block, list) else [block]
        stops: dict[int, int] = {}
        rw_keys: frozenset = frozenset()
        while True:
            fn = FunctionLifter(self, blocks, stops, isinstance(block, list) and not entries,
                                chain, entries, name, rw_keys)
            try:
                body = fn.sync_exits(fn.run() + "\n")
            except _Retry as r:
                stops[r.where[0]] = r.where[1]
                continue
            both = frozenset(k for k, v in fn.needs.items() if v == PERM_R | PERM_W)
            if both <= rw_keys:
                break
            rw_keys = both          # lift again, with one window for each of those
        return ("".join(g + "\n" for g in fn.globals)
                + f"define {BLOCK_CC} i32 @{name}({FUNCTION_ARGS}) nounwind {{\nentry:\n"
                + "\n".join(fn.entry) + "\n" + body + "\n}\n"), fn.b.intrinsics


def flag_liveness(insns, stop: int | None = None, live_out: frozenset = ALL_FLAGS
                  ) -> tuple[list[frozenset], list[frozenset]]:
    """For each instruction, the flags live after it: read later in the block before being
    overwritten, or still set when the block ends (`live_out`: every flag, unless the block
    only branches inside a region, see region_flag_liveness; every flag at an exit to the
    runtime and before an instruction the lifter cannot translate); and those live before it
    (what a fault there must leave exact, for the code that runs on if the guest's handler
    returns)."""
    live = live_out
    out = [ALL_FLAGS] * len(insns)
    before = [ALL_FLAGS] * len(insns)
    sems = semantics()
    for i in range(len(insns) - 1, -1, -1):
        out[i] = live
        insn = insns[i]
        sem = None if insn.rule is not None or insn.bad_operands else sems.get(insn.mnemonic)
        if sem is None or (stop is not None and i >= stop):
            live = ALL_FLAGS
        else:
            live = (live - sem.writes) | sem.reads
        before[i] = live
    return out, before


def region_flag_liveness(blocks, inside, stops: dict[int, int]
                         ) -> tuple[dict[int, frozenset], dict[int, frozenset]]:
    """The flags live at the end of each of a region's blocks, and at the start of each.
    At the end: those a block it branches to inside the function (`inside`: their addresses)
    may read before writing them; every flag at the end of a block that may leave the
    function (a branch outside, an indirect jmp or call, a ret, an ending the runtime serves)
    or that stops at an instruction left to the runtime (`stops`: block index ->
    instruction). At the start: those the block reads before writing, and those live at its
    end that it does not write (what a budget exit to it must write back). A backward
    fixpoint over the blocks: flags a block's compare sets and its successors overwrite before
    reading are never computed (in a block on its own, every flag is live at its end)."""
    succ: dict[int, list[int]] = {}
    for i, b in enumerate(blocks):
        targets = b.successors()
        last = b.insns[-1] if b.insns else None
        indirect = last is not None and last.is_branch and not (
            last.ops and last.ops[0].kind == "imm")
        if targets and not indirect and i not in stops and all(a in inside for a in targets):
            succ[b.start] = targets
    live_in = {b.start: frozenset() for b in blocks}
    out: dict[int, frozenset] = {}
    changed = True
    while changed:                       # (live sets only grow: it ends)
        changed = False
        for i in range(len(blocks) - 1, -1, -1):
            b = blocks[i]
            targets = succ.get(b.start)
            end = ALL_FLAGS if targets is None else frozenset().union(
                *(live_in.get(a, ALL_FLAGS) for a in targets))
            out[b.start] = end
            _, before = flag_liveness(b.insns, stops.get(i), end)
            first = before[0] if before else end
            if first != live_in[b.start]:
                live_in[b.start] = first
                changed = True
    return out, live_in


def return_sites(blocks) -> list[int]:
    """The blocks of a region that its calls return to."""
    starts = {b.start for b in blocks}
    return sorted({b.insns[-1].next for b in blocks if b.insns
                   and b.insns[-1].mnemonic == "call" and b.insns[-1].next in starts})


def slot_sites(blocks) -> list[int]:
    """Where a PLT stub's jmp may branch inside a region: the blocks no other block of it
    branches to directly (the entries of the functions it took in)."""
    direct = {s for b in blocks for s in b.successors()}
    return [b.start for b in blocks if b.start not in direct]


def region_edges(blocks) -> dict[int, list[int]]:
    """Block start -> the blocks of a hot region's function its IR may branch to (as
    FunctionLifter lifts it: a call to the function's head, a ret to the return sites of its
    calls, a PLT stub's jmp to the blocks no other block branches to, any other indirect jmp to
    every block)."""
    starts = [b.start for b in blocks]
    inside = set(starts)
    returns = return_sites(blocks)
    slots = slot_sites(blocks)
    out = {}
    for b in blocks:
        last = b.insns[-1] if b.insns else None
        if last is not None and last.mnemonic == "call":
            out[b.start] = [s for s in b.successors() if s in inside and s != last.next]
        elif last is not None and last.mnemonic == "ret":
            out[b.start] = returns
        elif b.jump_slot is not None:
            out[b.start] = slots
        elif b.indirect_jump:
            out[b.start] = starts
        else:
            out[b.start] = [s for s in b.successors() if s in inside]
    return out


def region_loops(blocks) -> dict[int, set[int]]:
    """The natural loops of a hot region's function: loop head -> the blocks of its body. A
    loop's head dominates the blocks branching back to it (its latches); a cycle entered at
    more than one block has no head, and no block is routed through it (matmul's region has
    one: its first block, decoded on through the inner loop's first address, holds a copy of
    that loop's body, and the outer loop enters the inner one at both)."""
    succ = region_edges(blocks)
    head = blocks[0].start
    seen, todo = {head}, [head]
    while todo:
        for x in succ[todo.pop()]:
            if x not in seen:
                seen.add(x)
                todo.append(x)
    pred: dict[int, list[int]] = {a: [] for a in seen}
    for a in seen:
        for x in succ[a]:
            pred[x].append(a)
    dom = {a: set(seen) for a in seen}
    dom[head] = {head}
    changed = True
    while changed:
        changed = False
        for a in seen - {head}:
            d = set.intersection(*(dom[p] for p in pred[a])) | {a}
            if d != dom[a]:
                dom[a], changed = d, True
    bodies: dict[int, set[int]] = {}
    for u in seen:
        for h in succ[u]:
            if h in dom[u]:                 # a back edge u -> h
                body, todo = bodies.setdefault(h, {h}), [u]
                while todo:
                    a = todo.pop()
                    if a not in body:
                        body.add(a)
                        todo.extend(pred[a])
    return bodies


def side_entries(blocks, loops: dict[int, set[int]] | None = None) -> list[int]:
    """Where a hot region is entered besides its head (knob ``entries=returns``): the heads of
    its loops, and the return sites of its calls.
    - Code that runs cold (before the region was in, or after a way out of it) and loops comes
      round to a loop head: there it goes on in the region.
    - A callee the region does not hold, or holds only in part, may leave it; its ret comes
      back through the lookup table to the return site: to the region's own code, not to the
      cold code after the call.
    Without them, sort's merge loop ran on in cold code until one of its blocks turned hot and
    headed a region of the same loops: four in one run. (`loops`: region_loops(blocks).)"""
    if len(blocks) < 2:
        return []
    head = blocks[0].start
    succ = {b.start: b.successors() for b in blocks}

    def recursive(call) -> bool:
        """Does the callee's code in the region (followed without its rets) lead back to the
        call? Then the call's ret comes back inside the function (an entry at its return site
        cost recursion's hot region registers: every local's entry value merged there)."""
        seen, todo = set(), [a for a in succ[call.start] if a != call.insns[-1].next]
        while todo:
            a = todo.pop()
            if a == call.start:
                return True
            if a in succ and a not in seen:
                seen.add(a)
                todo.extend(succ[a])
        return False

    calls = [b for b in blocks if b.insns and b.insns[-1].mnemonic == "call"]
    if any(map(recursive, calls)):
        # A recursive function's region has none: with entries at its loops' heads (the
        # function's entry among them, a loop through its calls and rets) recursion's warm
        # run took 47% longer (bench/compare.py, 3 rounds: 2.39x -> 3.52x).
        return []
    returns = {b.insns[-1].next for b in calls if b.insns[-1].next in succ}
    return sorted((returns | set(region_loops(blocks) if loops is None else loops)) - {head})


class FunctionLifter:
    """Builds the IR of one block, or of a region of blocks. Semantics receive it as ``L``."""

    def __init__(self, lifter: Lifter, blocks, stops: dict[int, int], region: bool = False,
                 chain: bool = True, entries: bool = False, name: str = "f",
                 rw_keys: frozenset = frozenset()):
        self.lifter = lifter
        self.name = name               # of the function (its window globals are named after it)
        self.blocks = blocks
        self.stops = stops            # block index -> instruction to leave as UNSUPPORTED
        self.entries = entries        # entered at any block, by rip
        self.labels = {b.start: f"blk_{b.start:x}" for b in blocks} if region or entries else {}
        self.targets = self.labels if region else {}    # direct branches that stay inside
        # Where the region's calls return to, when those blocks are in it: a ret that pops one
        # of them branches there inside the function (a recursive call stays inside too, as a
        # direct branch to the region's head), so a recursion keeps its registers in host
        # registers instead of leaving and re-entering through the lookup table twice a call.
        self.returns = return_sites(blocks) if self.targets else []
        self.slot_sites = slot_sites(blocks) if self.targets else []
        self.block = blocks[0]
        self.chains = chain and lifter.knobs.chain == "on"
        self.windowed = chain          # optimising tier: stack accesses try the window first
        self.near_sp = False           # the memory operand being lifted is rsp/rbp based
        self.window = None             # stack window: access size -> its bound (_stack_window)
        # Stack accesses of the block being lifted at offsets from its entry rsp known while
        # lifting (see _block_stack_check): register -> its offset from that rsp, the accesses'
        # (offset, size), and the name of the block's one check.
        self.sp_regs: dict[int, int] | None = None
        self.sp_accesses: list[tuple[int, int]] = []
        self.sp_ok = ""
        self.check_loaded = False      # cold tier: %chk.fn holds the check's address
        self.flags_loaded = False      # cold tier: %flg.fn holds the flag helper's address
        self.gpr_block, self.gpr_values = -1, {}     # cold tier: see _gprs
        self.stop = None
        self.quick = not chain         # cold tier (-O0): IR that fast instruction selection takes
        # The guest registers' values known in the current IR basic block are used again
        # rather than loaded again (see _gprs): at -O0 a load costs selection and allocation,
        # at -O2 parsing and the passes' time. (Not in the interpreter's handlers, whose
        # register numbers are run-time values two operands may share.)
        self.cache_gprs = True
        self.b = IRBuilder(one_ret=self.quick)
        # Optimising tier: guest registers, flags and the tick count live in locals (allocas,
        # which LLVM turns into SSA values) from entry to exit, and are written back to the
        # state at each exit; a loop inside a region then keeps them in host registers and
        # computes flags only where they are used, or on the way out.
        # Only a function with a loop inside gains: in straight-line code the locals only hold
        # more values live until the exit, and cost registers (measured: statemachine's short
        # functions ran 12% slower, the loops of recursion, matmul and crc32 15-20% faster).
        self.promote = chain and lifter.knobs.opt > 0 and any(
            s in self.targets and s <= b.start for b in blocks for s in b.successors())
        self.b.sync = self.promote
        # Blocks on a cycle inside the function: their non-stack accesses get windows.
        self.looped = self._looped() if self.promote else frozenset()
        # Side entries: entry address -> the loop heads to pass on the way in (see _side_routes).
        # (Translator._put_region enters the same ones in the cache: keep the two alike.)
        self.side = (self._side_routes() if self.targets and not self.quick and len(blocks) > 1
                     and lifter.knobs.entries == "returns" else {})
        self.globals: list[str] = []   # module-level definitions of the function (windows)
        self.windows: dict[tuple, tuple] = {}   # ((base, index, segment), need) -> its names
        self.needs: dict[tuple, int] = {}       # (base, index, segment) -> permissions used
        self.rw_keys = rw_keys         # of those, the ones that both load and store
        self.site_key = None           # the registers of the memory operand being lifted
        self.site_disp = 0             # and its displacement
        self.site_addr = None          # and the address ea() made of them
        self.site_split = None         # (base, index, scale, disp) of it, indexed (see ea)
        self.entry_accesses = None     # (register, offset, size, need) checked at block entry
        self.entry_renames: dict[str, str] = {}   # block label -> the label of its entry check
        self.promoted: list[tuple[str, str, str]] = []     # (local, state pointer, type)
        self.entry: list[str] = []
        self._ptrs: dict[tuple, str] = {}
        self.insn = None
        self.index = 0                # of the current instruction in its block
        self.end = 0                  # instructions the current block retires (counting)
        self.costs = [0]              # modelled cycles of its first i instructions
        self.live = ALL_FLAGS         # flags live after the current instruction
        self.flag_writes = 0          # set_flag calls so far
        self.compared = None          # (a, c, bits, flag_writes) of the block's last cmp/sub
        # Back edges' budget exits: the flags live at their target (None: every one) ->
        # [(rip, IR block)].
        self.budget_exits: dict[frozenset | None, list[tuple[str, str]]] = {}
        # Chained exits of the optimising tier: (rip, IR block), sharing chain.out (see chain).
        self.chain_exits: list[tuple[str, str]] = []

    def _looped(self) -> frozenset:
        """Starts of the blocks from which a branch inside the function leads back to them (a
        `jmp reg` becomes a switch over all the function's blocks: see ``jump``)."""
        succ = {b.start: list(self.targets) if b.indirect_jump else
                [s for s in b.successors() if s in self.targets] for b in self.blocks}
        out = set()
        for start in succ:
            seen, todo = set(), list(succ[start])
            while todo:
                a = todo.pop()
                if a == start:
                    out.add(start)
                    break
                if a not in seen:
                    seen.add(a)
                    todo.extend(succ.get(a, ()))
        return frozenset(out)

    def _side_routes(self) -> dict[int, list[int]]:
        """For each side entry, the heads of the loops around it, outermost first: entered
        there, the function branches to each of those heads in turn (each passes the entry on,
        see _route_at) and then to it, so that every loop is still entered only at its head.
        A branch from the function's entry straight into a loop made it irreducible, and LLVM
        then optimised it as no loop (slower: README, "This round (seventh)")."""
        bodies = region_loops(self.blocks)
        sides = side_entries(self.blocks, bodies)
        return {x: sorted((h for h, body in bodies.items() if x in body and h != x),
                          key=lambda h: -len(bodies[h])) for x in sides}

    def _route_at(self, head: int) -> None:
        """Before loop head `head`'s code: pass a side entry on towards its block (the next
        head on its way, or the entry's landing), else go on into the head's code."""
        b, res = self.b, self.slot("resume", "i64")
        label = self.labels[head]
        cases = []
        for x, route in self.side.items():
            if head in route:
                after = route[route.index(head) + 1:]
                cases.append((x, self.labels[after[0]] if after else f"land_{x:x}"))
        name = f"route_{head:x}"
        b.label(name)
        r = b.emit(f"load volatile i64, ptr {res}")
        on = b.new_label("route")
        # (resume is 0 but on the way in: one compare each time the head runs)
        b.stmt(f"br i1 {b.emit(f'icmp eq i64 {r}, 0')}, label %@@{label}, label %{on}, !prof !0")
        b.label(on)
        b.stmt(f"switch i64 {r}, label %@@{label} [ "
               + " ".join(f"i64 {const(x, 64)}, label %{to}" for x, to in cases) + " ]")
        self.entry_renames[label] = name

    def _side_entry(self) -> None:
        """The function's entry: at the state's rip, its head or one of its side entries."""
        b, res = self.b, self.slot("resume", "i64")
        rip = b.emit(f"load i64, ptr {self.ptr('rip')}")
        b.stmt(f"store volatile i64 {rip}, ptr {res}")
        first = {x: self.labels[route[0]] if route else f"land_{x:x}"
                 for x, route in self.side.items()}
        b.stmt(f"switch i64 {rip}, label %land_head [ "
               + " ".join(f"i64 {const(x, 64)}, label %{to}" for x, to in first.items()) + " ]")
        # A landing ends the entry's way in: from there on, loop heads go on into their code.
        for x in ["head"] + list(self.side):
            b.label(f"land_{x if x == 'head' else format(x, 'x')}")
            b.stmt(f"store volatile i64 0, ptr {res}")
            b.stmt(f"br label %{self.labels[self.blocks[0].start if x == 'head' else x]}")

    # ---- driving ---------------------------------------------------------------------------
    def run(self) -> str:
        self.live_out, self.live_in = (
            region_flag_liveness(self.blocks, self.targets, self.stops)
            if self.targets and self.lifter.flag_liveness else ({}, {}))
        if self.entries and len(self.blocks) > 1:
            b = self.b
            rip = b.emit(f"load i64, ptr {self.ptr('rip')}")
            others = list(self.labels.items())[1:]
            first = self.labels[self.blocks[0].start]
            if self.quick:
                # Compares, not a switch: fast instruction selection cannot lower a switch,
                # and the slow one's switch lowering was 10% of the cold tier's LLVM time.
                for a, label in others:
                    nxt = b.new_label("entry")
                    b.stmt(f"br i1 {self.icmp('eq', 64, rip, const(a, 64))}, label %{label}, "
                           f"label %{nxt}")
                    b.label(nxt)
                b.stmt(f"br label %{first}")
            else:
                cases = " ".join(f"i64 {const(a, 64)}, label %{label}" for a, label in others)
                b.stmt(f"switch i64 {rip}, label %{first} [ {cases} ]")
        if self.side:
            self._side_entry()
            heads = {h for route in self.side.values() for h in route}
        for i, block in enumerate(self.blocks):
            self.block, self.stop = block, self.stops.get(i)
            if self.side and block.start in heads:
                self._route_at(block.start)
            if self.labels:
                self.b.label(self.labels[block.start])
            try:
                self._run_block()
            except _Retry as r:
                raise _Retry((i, r.where[1])) from None
        if self.budget_exits:
            # The guest goes on at the back edges' targets, so the flags written back are
            # those their code reads before writing: the exits share one write-back for each
            # such set of flags. (Every flag written back, a region's loops computed every
            # flag on every trip for this exit alone; the others may be stale in a signal
            # frame, as at a fault: knob flags=live.)
            b = self.b
            for n, (keep, exits) in enumerate(self.budget_exits.items()):
                b.stmt(f"store i64 {b.join(f'budget.out{n}', exits)}, ptr {self.ptr('rip')}")
                b.leave(keep)
                b.stmt(f"ret i32 {Exit.BUDGET}")
                b.leaving = False
        if self.chain_exits:
            self._chain_here(self.b.join("chain.out", self.chain_exits))
        text = self.b.text()
        if self.entry_renames:
            targets = re.compile(r"label %(" + "|".join(map(re.escape, self.entry_renames))
                                 + r")(?![\w.])")
            text = targets.sub(lambda m: f"label %{self.entry_renames[m.group(1)]}", text)
            text = text.replace("label %@@", "label %")
        return text

    def _run_block(self) -> None:
        b = self.b
        start = len(b.lines)
        if self.windowed and self.lifter.checked:
            # (tracked from the block's entry, where rsp is its entry value: offset 0)
            self.sp_regs, self.sp_accesses, b.track = {4: 0}, [], {}
            self.sp_ok = f"%{b.new_label('bs')}.ok"
        # Accesses at constant offsets from registers the block has not written yet are
        # checked once, at the block's entry (_block_entry_check): in a hot region's blocks
        # other than its head, outside its loops.
        entry_checked = (self.chains and self.promote and self.lifter.checked
                         and self.block.start != self.blocks[0].start
                         and self.block.start not in self.looped
                         and self.labels.get(self.block.start) not in self.entry_renames)
        self.entry_accesses = [] if entry_checked else None
        self.entry_scan, self.entry_written = start, set()
        try:
            self._lift_block()
        finally:
            if self.sp_regs is not None:
                self._block_stack_check(start)
                self.sp_regs, b.track = None, None
            if self.entry_accesses:
                self._block_entry_check(start)
            self.entry_accesses = None

    def _entry_offset(self, regs, disp: int) -> int | None:
        """The offset from its value at the block's entry of the register `regs` names as an
        access's only address part, or None when the access is not of that form or the block
        has written the register before it."""
        if self.entry_accesses is None or regs is None or regs[1] is not None or regs[2]:
            return None
        base = regs[0]
        if base is None or base == "rip" or base == 4:
            return None
        lines = self.b.lines
        for line in lines[self.entry_scan:]:
            m = STORE_GPR.search(line)
            if m:
                self.entry_written.add(int(m.group(1)))
        self.entry_scan = len(lines)
        return None if base in self.entry_written else disp

    def _entry_cover(self, base: int, offset: int, size: int, need: int) -> bool:
        """Take the access into the block's entry check when its span (the stack's accesses
        together, other registers' reads and writes apart) stays within one page's size, so
        that it touches at most two pages: @chk looks at the first and the last."""
        if self.entry_accesses is None:
            return False
        group = [(d, n) for r, d, n, k in self.entry_accesses
                 if r == base and (base == 4 or k == need)]
        lo = min([offset] + [d for d, _ in group])
        hi = max([offset + size] + [d + n for d, n in group])
        if hi - lo > 4096:                # (a page)
            return False
        self.entry_accesses.append((base, offset, size, need))
        return True

    def _block_entry_check(self, at: int) -> None:
        """One check, at the block's entry, of each register's span of accesses (reads and
        writes apart); when one fails, the block is left for its own code elsewhere (cold
        code, or a region headed there), which checks each access and faults precisely."""
        spans: dict[tuple[int, int], tuple[int, int]] = {}
        for base, disp, size, need in self.entry_accesses:
            lo, hi = spans.get((base, need), (disp, disp + size))
            spans[(base, need)] = (min(lo, disp), max(hi, disp + size))
        name = self.b.new_label("ec")
        lines, oks = [], []
        stack = [span for (base, _), span in spans.items() if base == 4]
        if stack:
            # The stack's accesses, reads and writes together: inside the stack window
            # checked on entry (one compare), else the check of their span.
            lo, hi = min(a for a, _ in stack), max(b for _, b in stack)
            v = f"%{name}.s"
            lines += self._in_stack_window(v, lo, hi - lo, f"{v}.in") + [
                f"  br i1 {v}.in, label %{name}.s1, label %{name}.s2, !prof !0",
                f"{name}.s2:",
                f"  {v}.chk = call i1 @chk(ptr %perm, i64 {v}.lo, i64 {hi - lo - 1}, "
                f"i8 {PERM_R | PERM_W})",
                f"  br label %{name}.s1", f"{name}.s1:",
                f"  {v}.ok = phi i1 [ true, %{name} ], [ {v}.chk, %{name}.s2 ]"]
            oks.append(f"{v}.ok")
        for n, ((base, need), (lo, hi)) in enumerate(sorted(spans.items())):
            if base == 4:
                continue
            v = f"%{name}.b{n}"
            lines += [f"  {v} = load i64, ptr {self.ptr('gpr', base)}",
                      f"  {v}.lo = add i64 {v}, {const(lo, 64)}",
                      f"  {v}.ok = call i1 @chk(ptr %perm, i64 {v}.lo, i64 {hi - lo - 1}, "
                      f"i8 {need})"]
            oks.append(f"{v}.ok")
        ok = oks[0]
        for n, other in enumerate(oks[1:]):
            lines.append(f"  %{name}.all{n} = and i1 {ok}, {other}")
            ok = f"%{name}.all{n}"
        # The check is a block of its own before the guest block's label, and every branch
        # to that label goes to it instead (see run): the block's own IR keeps its label,
        # which the phis of its exits name.
        label = self.labels[self.block.start]
        assert self.b.lines[at - 1] == f"{label}:"
        lines = [f"{name}:"] + lines + [
            f"  br i1 {ok}, label %@@{label}, label %{name}.out, !prof !0",
            f"{name}.out:", "  br label %chain.out"]
        self.chain_exits.append((const(self.block.start, 64), f"{name}.out"))
        self.entry_renames[label] = name
        self.b.lines[at - 1:at - 1] = lines

    def _block_stack_check(self, at: int) -> None:
        """One check of the block's stack accesses: those at offsets from its entry rsp known
        while lifting (push, pop, call, ret, [rsp+d] and through registers copied from rsp
        and moved by constants) fall in one span; when it lies inside the stack window, none of
        them can fault and each only tests this check's result (LLVM folds the repeated tests);
        else each is checked alone as before. Inserted at the start of the block (`at`)."""
        if not self.sp_accesses:
            return
        lo = min(d for d, _ in self.sp_accesses)
        span = max(d + n for d, n in self.sp_accesses) - lo
        self.b.lines[at:at] = self._in_stack_window(self.sp_ok[:-3], lo, span, self.sp_ok)

    def _in_stack_window(self, name: str, lo: int, span: int, ok: str) -> list[str]:
        """IR lines that set `ok` (i1): do `span` bytes at offset `lo` from rsp (its value at
        the block's entry, in `name`.lo) lie inside the stack window? False when the span is
        wider than the window."""
        low, limit = self._stack_window(span) if span <= WINDOW else ("0", "0")
        return [f"  {name}.sp = load i64, ptr {self.ptr('gpr', 4)}",
                f"  {name}.lo = add i64 {name}.sp, {const(lo, 64)}",
                f"  {name}.off = sub i64 {name}.lo, {low}",
                f"  {ok} = icmp ult i64 {name}.off, {limit}"]

    def _lift_block(self) -> None:
        b = self.b
        self.compared = None
        b.share_faults = self.block.start if self.block.start in self.looped else None
        insns = self.block.insns
        if self.lifter.flag_liveness:
            lives, live_in = flag_liveness(insns, self.stop,
                                           self.live_out.get(self.block.start, ALL_FLAGS))
        else:
            lives = live_in = [None] * len(insns)
        knobs = self.lifter.knobs
        if knobs.trace:
            self._trace_room(len(insns))
        if knobs.counting:
            self._retire_count()
        sems = semantics()
        for i, insn in enumerate(insns):
            self.insn, self.index = insn, i
            self.near_sp = False
            self.live = ALL_FLAGS if lives[i] is None else lives[i]
            b.keep = live_in[i]
            if knobs.trace:
                self._trace_insn(insn.address)
            rule = insn.rule
            if rule is not None:
                self._rewrite(insn, rule)
                continue
            sem = sems.get(insn.mnemonic)
            if sem is None or insn.bad_operands or i == self.stop:
                self._exit_at(insn.address, Exit.UNSUPPORTED)
                break
            try:
                sem.fn(self, insn)
            except Unsupported:
                raise _Retry((0, i)) from None
            if b.terminated:
                break
        b.keep = None
        if not b.terminated:
            if self.block.fetch_fault is not None:
                addr = self.block.fetch_fault
                b.fault(const(addr, 64), const(addr, 64), SIGSEGV)
            else:
                self.goto(self.block.end)

    # ---- counters and trace (knobs count/clock and --trace) ---------------------------------
    def _retired(self) -> int:
        """How many of the block's instructions retire when it runs to its end: all but one
        that faults (ud2, a privileged instruction) or has no semantics; a trap (int3) retires."""
        for i, insn in enumerate(self.block.insns):
            rule = insn.rule
            if rule is not None and rule.action == "fault":
                return i + 1 if rule.after else i
            if rule is None and (semantics().get(insn.mnemonic) is None or insn.bad_operands
                                 or i == self.stop):
                return i
        return len(self.block.insns)

    def _retire_count(self) -> None:
        """On entry to a block, count what it retires: every exit is then exact, and a fault
        in the middle takes back what did not retire (``_unretire``)."""
        from .costs import cost
        self.end = end = self._retired()
        self.costs = [0]
        for insn in self.block.insns[:end]:
            self.costs.append(self.costs[-1] + cost(insn))
        self._bump("icount", end)
        self._bump("cycles", self.costs[end])

    def _unretire(self, index: int) -> None:
        """A fault at instruction `index`: it and those after it did not retire."""
        if self.lifter.knobs.counting and index < self.end:
            self._bump("icount", index - self.end)
            self._bump("cycles", self.costs[index] - self.costs[self.end])

    def _bump(self, field: str, n: int) -> None:
        if n:
            b, p = self.b, self.ptr(field)
            v = b.emit(f"load i64, ptr {p}")
            b.stmt(f"store i64 {b.emit(f'add i64 {v}, {const(n, 64)}')}, ptr {p}")

    def _trace_room(self, n: int) -> None:
        """Leave for the runtime (Exit.TRACE) when the trace buffer cannot take `n` more."""
        b = self.b
        used = b.emit(f"load i64, ptr {self.ptr('trace_n')}")
        cap = b.emit(f"load i64, ptr {self.ptr('trace_cap')}")
        after = b.emit(f"add i64 {used}, {n}")
        full = b.emit(f"icmp ugt i64 {after}, {cap}")
        room, out = b.new_label("room"), b.new_label("trace_full")
        b.stmt(f"br i1 {full}, label %{out}, label %{room}, !prof !1")
        b.label(out)
        self._exit_at(self.block.start, Exit.TRACE)
        b.label(room)

    def _trace_insn(self, address: int) -> None:
        b = self.b
        used = b.emit(f"load i64, ptr {self.ptr('trace_n')}")
        buf = b.emit(f"load i64, ptr {self.ptr('trace_buf')}")
        at = b.emit(f"add i64 {buf}, {b.emit(f'shl i64 {used}, 3')}")
        b.stmt(f"store i64 {const(address, 64)}, ptr {b.emit(f'inttoptr i64 {at} to ptr')}")
        b.stmt(f"store i64 {b.emit(f'add i64 {used}, 1')}, ptr {self.ptr('trace_n')}")

    def _rewrite(self, insn, rule) -> None:
        b = self.b
        if rule.action == "exit":
            if rule.helper:
                b.stmt(f"store i64 {rule.helper}, ptr {self.ptr('exit_arg')}")
            self._exit_at(insn.next, rule.code)
        else:
            rip = insn.next if rule.after else insn.address
            b.fault(const(rip, 64), "0", rule.signal)

    def _exit_at(self, address: int, code: int) -> None:
        self.b.stmt(f"store i64 {const(address, 64)}, ptr {self.ptr('rip')}")
        self.b.stmt(f"ret i32 {code}")

    # ---- state -----------------------------------------------------------------------------
    def ptr(self, field: str, index: int | None = None) -> str:
        """Pointer to a state field, computed once in the entry block."""
        key = (field, index)
        p = self._ptrs.get(key)
        if p is None:
            # (an index may be a run-time value, "%r.o0": the interpreter's handlers)
            name = f"{field}{'' if index is None else str(index).strip('%').replace('.', '_')}"
            p = f"%p_{name}"
            idx = f", i64 {index}" if index is not None else ""
            self.entry.append(f"  {p} = getelementptr %State, ptr %st, i64 0, i32 {field_index(field)}{idx}")
            ty = PROMOTED.get(field) if self.promote else None
            if ty is not None:
                local = f"%a_{name}"
                self.entry += [f"  {local} = alloca {ty}, align 16",
                               f"  %i_{name} = load {ty}, ptr {p}, align 8",
                               f"  store {ty} %i_{name}, ptr {local}, align 16"]
                self.promoted.append((local, p, ty))
                p = local
            self._ptrs[key] = p
        return p

    def sync_exits(self, body: str) -> str:
        """Write the locals the function stores to back to the state at each exit."""
        if not self.promoted:
            return SYNC_LINE.sub("", body)
        written = set(re.findall(r"store [^,]+, ptr (%a_\w+)", body))
        todo = [(local, p, ty) for local, p, ty in self.promoted if local in written]
        # A SYNC line may name the flags a fault must keep exact ("flags cf zf"): the others
        # are dead there (overwritten before any read), and their stale values in the state
        # are never seen by code that runs on. Their write-back was what made loops compute
        # every flag on every trip.
        parts = re.split(SYNC_LINE, body)
        out = [parts[0]]
        for site, (keep, part) in enumerate(zip(parts[1::2], parts[2::2])):
            kept = set(keep.split()[1:]) if keep else None
            for local, p, ty in todo:
                name = local[3:]
                if kept is not None and name in ALL_FLAGS and name not in kept:
                    continue
                v = f"%w{site}_{name}"
                out.append(f"  {v} = load {ty}, ptr {local}, align 16\n"
                           f"  store {ty} {v}, ptr {p}, align 8\n")
            out.append(part)
        return "".join(out)

    def slot(self, name: str, ty: str) -> str:
        """A stack slot of type `ty` private to this function, allocated once in the entry block
        (an alloca elsewhere would grow the host stack on every trip round a region's loop)."""
        key = ("slot", name)
        p = self._ptrs.get(key)
        if p is None:
            p = f"%slot_{name}"
            self.entry.append(f"  {p} = alloca {ty}, align 16")
            self._ptrs[key] = p
        return p

    def _gprs(self) -> dict:
        """The guest registers' values known in the current IR basic block (loaded or stored
        in it), which would otherwise be loaded again from the state each time."""
        if self.gpr_block != self.b.blocks:
            self.gpr_block, self.gpr_values = self.b.blocks, {}
        return self.gpr_values

    def get_gpr(self, index: int, size: int = 8, high: bool = False) -> str:
        b = self.b
        v = self._gprs().get(index) if self.cache_gprs else None
        if v is None:
            v = b.emit(f"load i64, ptr {self.ptr('gpr', index)}")
            if self.cache_gprs:
                self.gpr_values[index] = v
        if self.sp_regs is not None and index in self.sp_regs:
            b.track[v] = self.sp_regs[index]
        if high:
            v = b.emit(f"lshr i64 {v}, 8")
        if size < 8:
            v = b.emit(f"trunc i64 {v} to i{size * 8}")
        return v

    def set_gpr(self, index: int, value: str, size: int = 8, high: bool = False) -> None:
        """Write a register the way x86-64 does: 32-bit writes zero-extend, 8/16-bit writes merge."""
        b = self.b
        p = self.ptr("gpr", index)
        if size == 8:
            b.stmt(f"store i64 {value}, ptr {p}")
        else:
            wide = b.emit(f"zext i{size * 8} {value} to i64")
            if size == 4:
                b.stmt(f"store i64 {wide}, ptr {p}")
                value = wide
            else:
                old = self.get_gpr(index)
                shift = 8 if high else 0
                mask = ((1 << (size * 8)) - 1) << shift
                kept = b.emit(f"and i64 {old}, {const(~mask, 64)}")
                if shift:
                    wide = b.emit(f"shl i64 {wide}, {shift}")
                value = b.emit(f"or i64 {kept}, {wide}")
                b.stmt(f"store i64 {value}, ptr {p}")
        if self.cache_gprs:
            self._gprs()[index] = value
        if self.sp_regs is not None:
            offset = self.b.track.get(value) if size == 8 else None
            if offset is None:
                self.sp_regs.pop(index, None)
            else:
                self.sp_regs[index] = offset

    def get_xmm(self, index: int) -> str:
        """An xmm register as i128 (semantics bitcast it to the vector type they need). It is
        loaded and stored as a vector: LLVM then keeps a register that lives across a loop's
        trips in an xmm register, where as an i128 it went to a pair of general registers."""
        v = self.b.emit(f"load <2 x i64>, ptr {self.ptr('xmm', index)}, align 8")
        return self.b.emit(f"bitcast <2 x i64> {v} to i128")

    def set_xmm(self, index: int, value: str) -> None:
        v = self.b.emit(f"bitcast i128 {value} to <2 x i64>")
        self.b.stmt(f"store <2 x i64> {v}, ptr {self.ptr('xmm', index)}, align 8")

    def get_mm(self, index: int) -> str:
        """An MMX register as i64: mmI is the low 64 bits of the x87 physical register RI."""
        return self.b.emit(f"load i64, ptr {self.ptr('st', index)}, align 8")

    def set_mm(self, index: int, value: str) -> None:
        """Write mmI (i64): RI's exponent and sign become all ones, and the x87 state enters
        MMX mode (enter_mmx). Semantics write last, so a faulting instruction changes nothing."""
        p = self.ptr("st", index)
        self.b.stmt(f"store i64 {value}, ptr {p}, align 8")
        hi = self.b.emit(f"getelementptr i8, ptr {p}, i64 8")
        self.b.stmt(f"store i16 -1, ptr {hi}, align 8")
        self.enter_mmx()

    def enter_mmx(self, empty: bool = False) -> None:
        """What every MMX instruction does to the x87 state: TOP = 0 and every register valid
        (abridged tag 0xFF); emms (`empty`) marks them all empty instead. Instructions that only
        read an mm register call it after their other effects."""
        self.b.stmt(f"store i8 0, ptr {self.ptr('fpu_top')}")
        self.b.stmt(f"store i8 {0 if empty else -1}, ptr {self.ptr('fpu_tag')}")

    # ---- vectors ----
    def vec(self, value: str, vty: str) -> str:
        """An i128 (an xmm value) seen as the vector type `vty`, e.g. ``<4 x float>``."""
        return self.b.emit(f"bitcast i128 {value} to {vty}")

    def unvec(self, value: str, vty: str) -> str:
        """A 128-bit vector of type `vty` back as i128 (what set_xmm stores)."""
        return self.b.emit(f"bitcast {vty} {value} to i128")

    def get_flag(self, name: str) -> str:
        """A flag as an i1."""
        v = self.b.emit(f"load i8, ptr {self.ptr(name)}")
        return self.b.emit(f"trunc i8 {v} to i1")

    def wants(self, name: str) -> bool:
        """Is the flag live after the current instruction (worth computing)?"""
        return name in self.live

    def set_flag(self, name: str, bit: str) -> None:
        """Set a flag from an i1 value (or the literal 0 / 1); a dead flag is not stored."""
        self.flag_writes += 1
        if name not in self.live:
            return
        if bit in ("0", "1", "true", "false"):
            value = "1" if bit in ("1", "true") else "0"
        else:
            value = self.b.emit(f"zext i1 {bit} to i8")
        self.b.stmt(f"store i8 {value}, ptr {self.ptr(name)}")

    # ---- memory ----------------------------------------------------------------------------
    def ea(self, op) -> str:
        """Effective address of a memory operand, as i64 (segment base included)."""
        b = self.b
        parts = []
        if op.base == "rip":
            addr = (self.insn.next + op.disp) & 0xFFFFFFFFFFFFFFFF
            parts_const = addr
        else:
            parts_const = op.disp
            if op.base is not None:
                parts.append(self.get_gpr(op.base))
                self.near_sp = op.base in (4, 5)
        self.site_key = (op.base, op.index, op.seg)
        self.site_disp = op.disp
        if op.index is not None:
            idx = self.get_gpr(op.index)
            parts.append(idx if op.scale == 1 else
                         b.emit(f"shl i64 {idx}, {op.scale.bit_length() - 1}"))
        if op.seg:
            parts.append(b.emit(f"load i64, ptr {self.ptr(op.seg + '_base')}"))
        self.site_split = None
        if not parts:
            return const(parts_const, 64)
        if len(parts) == 2 and op.base is not None and not op.seg:
            # base + (index * scale + disp), and the host pointer (_host) mem + base indexed by
            # the index at the scale: LLVM hoists mem + base out of a loop where the base does
            # not change, and the load addresses (that, index, scale) with no lea in the loop's
            # dependency chain (crc32's table lookup had one: its loop 1% slower, perf).
            disp = parts_const & 0xFFFFFFFFFFFFFFFF
            rest = b.emit(f"add i64 {parts[1]}, {const(disp, 64)}") if disp else parts[1]
            self.site_addr = b.emit(f"add i64 {parts[0]}, {rest}")
            self.site_split = (parts[0], idx, op.scale, disp)
            return self.site_addr
        v = parts[0]
        for p in parts[1:]:
            v = b.emit(f"add i64 {v}, {p}")
        if parts_const & 0xFFFFFFFFFFFFFFFF:
            v = b.emit(f"add i64 {v}, {const(parts_const, 64)}")
        self.site_addr = v
        return v

    def _host(self, addr: str) -> str:
        """The host pointer of guest address `addr` (checked already): mem + addr, or
        mem + base indexed by index and scale, plus disp, when ea() made `addr` of a base and
        an index (see there)."""
        if not self.lifter.checked:
            # memory=bounded: no check, the address taken modulo the guest address space, so
            # that every access stays inside the host region reserved for it.
            addr = self.b.emit(f"and i64 {addr}, {ADDRESS_LIMIT - 1}")
            return self.b.emit(f"getelementptr i8, ptr %mem, i64 {addr}")
        split = self.site_split if addr == self.site_addr else None
        if split is None:
            return self.b.emit(f"getelementptr i8, ptr %mem, i64 {addr}")
        base, index, scale, disp = split
        p = self.b.emit(f"getelementptr i8, ptr %mem, i64 {base}")
        p = self.b.emit(f"getelementptr i{scale * 8}, ptr {p}, i64 {index}")
        return self.b.emit(f"getelementptr i8, ptr {p}, i64 {const(disp, 64)}") if disp else p

    def host_ptr(self, addr: str, size: int, need: int) -> str:
        """Check a guest access of `size` bytes at `addr` and return the host pointer.

        A failed check leaves the block with SIGSEGV at the current instruction, before any state
        the instruction would change has changed.
        """
        b = self.b
        near_sp, self.near_sp = self.near_sp, False
        regs, self.site_key = self.site_key, None    # an access not through ea(): None
        if self.lifter.checked:
            good = None
            if near_sp and self.windowed and size <= 64:
                offset = None if b.track is None else b.track.get(addr)
                if offset is not None and self._entry_cover(4, offset, size, need):
                    return self._host(addr)
                if offset is not None:
                    # Covered by the block's one check (_block_stack_check).
                    self.sp_accesses.append((offset, size))
                    good, alone = b.new_label("ok"), b.new_label("alone")
                    b.stmt(f"br i1 {self.sp_ok}, label %{good}, label %{alone}, !prof !0")
                    b.label(alone)
                # Inside the stack window checked on entry: no table lookup (the window test
                # is exact, whatever the address: the window only saves work).
                low, limit = self._stack_window(size)
                off = b.emit(f"sub i64 {addr}, {low}")
                inside = b.emit(f"icmp ult i64 {off}, {limit}")
                good = good or b.new_label("ok")
                slow = b.new_label("slow")
                b.stmt(f"br i1 {inside}, label %{good}, label %{slow}, !prof !0")
                b.label(slow)
            if good is None and self.block.start in self.looped and size <= 64:
                self._site_window(addr, size, need, regs)
                return self._host(addr)
            offset = None if good is not None or size > 64 or addr != self.site_addr else \
                self._entry_offset(regs, self.site_disp)
            if offset is not None and self._entry_cover(regs[0], offset, size, need):
                return self._host(addr)
            if self.quick and not self.lifter.knobs.counting:
                # A failed check has written the fault exit's state: it only returns.
                ok = b.emit(f"call i1 {self._check_fn()}(ptr %st, ptr %perm, i64 {addr}, "
                            f"i64 {size - 1}, i8 {need}, i64 {const(self.insn.address, 64)})")
                good = b.new_label("ok")
                b.stmt(f"br i1 {ok}, label %{good}, label %{b.fault_return()}, !prof !0")
                b.label(good)
                return self._host(addr)
            if self.quick:
                ok = b.emit(f"call i1 {self._check_fn()}(ptr %st, ptr %perm, i64 {addr}, "
                            f"i64 {size - 1}, i8 {need}, i64 0)")
            else:
                ok = b.emit(f"call i1 @chk(ptr %perm, i64 {addr}, i64 {size - 1}, i8 {need})")
            self.branch_or_fault(ok, access_fault(size, need), addr, good)
        return self._host(addr)

    def _site_window(self, addr: str, size: int, need: int, regs) -> None:
        """The check of an access inside a loop: is it within the range of whole pages last
        found granting `need` to accesses through the same registers? Only when not does
        the runtime's window search look further (runtime_ir.WINDOW_DEF, called through the
        state's `windowfn`). The range lives in locals for this run of the
        function, and in a global of the module with the generation it was found in."""
        b = self.b
        self.needs[regs] = self.needs.get(regs, 0) | need
        # Registers that both load and store share one window of pages granting both.
        fill = PERM_R | PERM_W if regs in self.rw_keys else need
        key = (regs, fill)
        if key not in self.windows:
            n = len(self.windows)
            g = f"@ws.{self.name}.{n}"    # {lo, count of valid starts, generation, refills}
            self.globals.append(f"{g} = internal global [4 x i64] zeroinitializer, align 32")
            lo_p, cnt_p = self.slot(f"ws{n}.lo", "i64"), self.slot(f"ws{n}.cnt", "i64")
            # Start from the window the site found last, when it is of this generation.
            if not self.windows:
                self.entry += [f"  %wgen = load i64, ptr {self.ptr('wgen')}",
                               f"  %win.fn = load ptr, ptr {self.ptr('windowfn')}"]
            w = f"%ws{n}"
            self.entry += [
                f"  {w}.lo0 = load i64, ptr {g}",
                f"  {w}.cntp = getelementptr i64, ptr {g}, i64 1",
                f"  {w}.cnt0 = load i64, ptr {w}.cntp",
                f"  {w}.genp = getelementptr i64, ptr {g}, i64 2",
                f"  {w}.gen0 = load i64, ptr {w}.genp",
                f"  {w}.cur = icmp eq i64 {w}.gen0, %wgen",
                f"  {w}.cnt1 = select i1 {w}.cur, i64 {w}.cnt0, i64 0",
                f"  store i64 {w}.lo0, ptr {lo_p}", f"  store i64 {w}.cnt1, ptr {cnt_p}"]
            self.windows[key] = (g, lo_p, cnt_p)
        g, lo_p, cnt_p = self.windows[key]
        good, slow = b.new_label("ok"), b.new_label("outside")
        off = b.emit(f"sub i64 {addr}, {b.emit(f'load i64, ptr {lo_p}')}")
        inside = b.emit(f"icmp ult i64 {off}, {b.emit(f'load i64, ptr {cnt_p}')}")
        b.stmt(f"br i1 {inside}, label %{good}, label %{slow}, !prof !0")
        b.label(slow)
        r = b.emit(f"call preserve_mostcc {{i64, i64}} %win.fn(ptr %st, ptr %perm, ptr {g}, i64 {addr}, "
                   f"i64 {size - 1}, i8 {fill})")
        cnt = b.emit(f"extractvalue {{i64, i64}} {r}, 1")
        b.stmt(f"store i64 {b.emit(f'extractvalue {{i64, i64}} {r}, 0')}, ptr {lo_p}")
        b.stmt(f"store i64 {cnt}, ptr {cnt_p}")
        found = b.emit(f"icmp ne i64 {cnt}, 0")
        if fill != need:        # a load from a page that is not writable: the check alone
            alone = b.emit(f"call i1 @chk(ptr %perm, i64 {addr}, i64 {size - 1}, i8 {need})")
            found = b.emit(f"or i1 {found}, {alone}")
        self.branch_or_fault(found, access_fault(size, need), addr, good)

    def _check_fn(self) -> str:
        """The cold tier's memory check (RUNTIME_CHECK_DEF), loaded from the state on entry."""
        if not self.check_loaded:
            self.entry.append(f"  %chk.fn = load ptr, ptr {self.ptr('check')}")
            self.check_loaded = True
        return "%chk.fn"

    def _stack_window(self, size: int) -> tuple[str, str]:
        """The stack window: WINDOW bytes centred on rsp as the function was entered, checked
        once in the entry block, that all of it may be read and written. Most stack accesses of
        a function fall inside it. Returns its low end and the bound an access of `size` bytes
        at offset `off` into it must be under: WINDOW - size + 1 when the window may be
        accessed, else 0 (no offset is), so that each access costs one compare, not two."""
        if self.window is None:
            p = self.ptr("gpr", 4)
            self.entry += [f"  %w.sp = load i64, ptr {p}",
                           f"  %w.low = sub i64 %w.sp, {WINDOW // 2}",
                           f"  %w.ok = call i1 @chk(ptr %perm, i64 %w.low, i64 {WINDOW - 1}, "
                           f"i8 {PERM_R | PERM_W})"]
            self.window = {}
        if size not in self.window:
            self.entry.append(f"  %w.lim{size} = select i1 %w.ok, i64 {WINDOW - size + 1}, "
                              f"i64 0")
            self.window[size] = f"%w.lim{size}"
        return "%w.low", self.window[size]

    def branch_or_fault(self, ok: str, signal: int, addr: str, good: str | None = None) -> None:
        """Continue when `ok` (i1) holds, else fault with `signal` at the current instruction
        (continue at label `good` when given)."""
        b = self.b
        good, bad = good or b.new_label("ok"), b.new_label("fault")
        b.stmt(f"br i1 {ok}, label %{good}, label %{bad}, !prof !0")
        b.label(bad)
        self._unretire(self.index)
        b.fault(const(self.insn.address, 64), addr, signal)
        b.label(good)

    def load(self, addr: str, size: int, need: int = PERM_R) -> str:
        p = self.host_ptr(addr, size, need)
        return self.b.emit(f"load i{size * 8}, ptr {p}, align 1")

    def store(self, addr: str, value: str, size: int) -> None:
        p = self.host_ptr(addr, size, PERM_W)
        self.b.stmt(f"store i{size * 8} {value}, ptr {p}, align 1")

    # ---- operands --------------------------------------------------------------------------
    def read(self, op, bits: int | None = None) -> str:
        """Value of an operand. An immediate is given the width `bits` (default: its own)."""
        if op.kind == "reg":
            return self.get_gpr(op.reg, op.size, op.high)
        if op.kind == "xmm":
            return self.get_xmm(op.reg)
        if op.kind == "imm":
            return const(op.imm, bits or op.size * 8)
        need = PERM_R
        if op is self.insn.ops[0] and self.insn.mnemonic in READ_MODIFY_WRITE:
            need |= PERM_W       # fault before any state (flags) changes if it cannot be written
        return self.load(self.ea(op), op.size, need)

    def write(self, op, value: str) -> None:
        if op.kind == "reg":
            self.set_gpr(op.reg, value, op.size, op.high)
        elif op.kind == "xmm":
            self.set_xmm(op.reg, value)
        elif op.kind == "mem":
            self.store(self.ea(op), value, op.size)
        else:
            raise Unsupported("write to an immediate")

    # ---- arithmetic helpers ----------------------------------------------------------------
    def op(self, opcode: str, bits: int, a: str, c: str) -> str:
        return self.b.emit(f"{opcode} i{bits} {a}, {c}")

    def cast(self, kind: str, value: str, from_bits: int, to_bits: int) -> str:
        """zext / sext / trunc, or the value itself when the widths agree."""
        if from_bits == to_bits:
            return value
        return self.b.emit(f"{kind} i{from_bits} {value} to i{to_bits}")

    def bit(self, value: str, bits: int, n: int) -> str:
        """Bit n of value, as i1."""
        s = self.b.emit(f"lshr i{bits} {value}, {n}") if n else value
        return self.b.emit(f"trunc i{bits} {s} to i1")

    def icmp(self, pred: str, bits: int, a: str, c: str) -> str:
        return self.b.emit(f"icmp {pred} i{bits} {a}, {c}")

    def select(self, cond: str, bits: int, a: str, c: str) -> str:
        return self.b.emit(f"select i1 {cond}, i{bits} {a}, i{bits} {c}")

    # ---- flags -----------------------------------------------------------------------------
    def flags_szp(self, res: str, bits: int) -> None:
        if self.wants("zf"):
            self.set_flag("zf", self.icmp("eq", bits, res, "0"))
        if self.wants("sf"):
            self.set_flag("sf", self.icmp("slt", bits, res, "0"))
        if self.wants("pf"):
            self.set_flag("pf", self.parity(res, bits))

    def parity(self, res: str, bits: int) -> str:
        """PF: set when the low byte of the result has an even number of one bits."""
        b = self.b
        low = self.cast("trunc", res, bits, 8)
        if self.quick:
            # Without the ctpop intrinsic, which fast instruction selection does not lower:
            # fold the byte to a nibble, and look its parity up in the 16-bit constant 0x6996.
            high = b.emit(f"lshr i8 {low}, 4")
            nib = b.emit(f"and i8 {b.emit(f'xor i8 {low}, {high}')}, 15")
            wide = b.emit(f"zext i8 {nib} to i16")
            odd = self.bit(b.emit(f"lshr i16 27030, {wide}"), 16, 0)
        else:
            b.use("ctpop8")
            odd = b.emit(f"trunc i8 {b.emit(f'call i8 @llvm.ctpop.i8(i8 {low})')} to i1")
        return b.emit(f"xor i1 {odd}, true")

    def flag_af(self, a: str, c: str, res: str, bits: int) -> None:
        if not self.wants("af"):
            return
        x = self.op("xor", bits, a, c)
        x = self.op("xor", bits, x, res)
        self.set_flag("af", self.bit(x, bits, 4))

    def flags_call(self, op: int, a: str, c: str, res: str, bits: int) -> bool:
        """Cold tier: when CF OF ZF SF and PF are all live (a block's last flag-setting
        instruction), set the flags of `res = a op c` with one call to @jitbt_flags instead of
        the two dozen instructions written out (at -O0 each costs selection and allocation, in
        code that runs until it turns hot). Storing a flag that is not live is harmless: it is
        written again before it is read. Returns whether it did."""
        if not self.quick or not all(f in self.live for f in ("cf", "of", "zf", "sf", "pf")):
            return False
        args = []
        for v in (a, c, res):
            if v.lstrip("-").isdigit():
                args.append(str(int(v) & ((1 << bits) - 1)))
            else:
                args.append(self.cast("zext", v, bits, 64))
        if not self.flags_loaded:
            self.entry.append(f"  %flg.fn = load ptr, ptr {self.ptr('flagfn')}")
            self.flags_loaded = True
        self.b.stmt(f"call void %flg.fn(ptr %st, i64 {args[0]}, i64 {args[1]}, i64 {args[2]}, "
                    f"i32 {bits | op << 8})")
        self.flag_writes += 1
        return True

    def flags_logic(self, res: str, bits: int) -> None:
        """CF OF SF ZF PF as and/or/xor/test set them; AF (undefined) is cleared by the host."""
        if self.flags_call(FLAGS_LOGIC_AF0 if self.lifter.exact_flags else FLAGS_LOGIC,
                           "0", "0", res, bits):
            return
        self.set_flag("cf", "0")
        self.set_flag("of", "0")
        self.flags_szp(res, bits)
        self.set_undefined("af", "0")

    def set_undefined(self, names: str, value) -> None:
        """Flags the manual leaves undefined, set as the reference CPU does -- only at the exact
        flag model (datapath); at the other levels nothing is emitted and they keep their value.
        `names` is one flag or several ("cf of sf af"); `value` an i1, "0" / "1", or a function
        making the i1 (called once per flag, only when one is stored)."""
        if not self.lifter.exact_flags:
            return
        for name in names.split():
            if self.wants(name):
                self.set_flag(name, value() if callable(value) else value)

    def add_with_flags(self, a: str, c: str, bits: int, carry: str | None = None) -> str:
        """a + c (+ carry as i1); sets CF OF SF ZF AF PF as add/adc do."""
        res = self.op("add", bits, a, c)
        if carry is not None:
            res = self.op("add", bits, res, self.cast("zext", carry, 1, bits))
        elif self.flags_call(FLAGS_ADD, a, c, res, bits):
            return res
        if self.wants("cf"):
            # Carry out: the sum wrapped below a (or, with a carry in, reached exactly a).
            cf = self.icmp("ult", bits, res, a)
            if carry is not None:
                same = self.icmp("eq", bits, res, a)
                cf = self.b.emit(f"or i1 {cf}, {self.b.emit(f'and i1 {carry}, {same}')}")
            self.set_flag("cf", cf)
        if self.wants("of"):
            ov = self.op("and", bits, self.op("xor", bits, a, res), self.op("xor", bits, c, res))
            self.set_flag("of", self.bit(ov, bits, bits - 1))
        self.flag_af(a, c, res, bits)
        self.flags_szp(res, bits)
        return res

    def sub_with_flags(self, a: str, c: str, bits: int, borrow: str | None = None) -> str:
        """a - c (- borrow as i1); sets CF OF SF ZF AF PF as sub/sbb/cmp do."""
        res = self.op("sub", bits, a, c)
        if borrow is not None:
            res = self.op("sub", bits, res, self.cast("zext", borrow, 1, bits))
        elif self.flags_call(FLAGS_SUB, a, c, res, bits):
            if self.insn.mnemonic in ("cmp", "sub"):
                self.compared = (a, c, bits, self.flag_writes)
            return res
        if self.wants("cf"):
            # Borrow: a < c (or, with a borrow in, a == c too).
            cf = self.icmp("ult", bits, a, c)
            if borrow is not None:
                same = self.icmp("eq", bits, a, c)
                cf = self.b.emit(f"or i1 {cf}, {self.b.emit(f'and i1 {borrow}, {same}')}")
            self.set_flag("cf", cf)
        if self.wants("of"):
            ov = self.op("and", bits, self.op("xor", bits, a, c), self.op("xor", bits, a, res))
            self.set_flag("of", self.bit(ov, bits, bits - 1))
        self.flag_af(a, c, res, bits)
        self.flags_szp(res, bits)
        if borrow is None and self.insn.mnemonic in ("cmp", "sub"):
            self.compared = (a, c, bits, self.flag_writes)
        return res

    def cond(self, cc: str) -> str:
        """An x86 condition code (o, b, e, be, s, p, l, le and their negations) as i1. Right
        after a cmp or sub in the same block (no flag written since), a comparison of its
        operands: LLVM does not see `sf != of` of a subtraction as a signed less-than."""
        if self.compared is not None and cc in COMPARED and self.compared[3] == self.flag_writes:
            a, c, bits, _ = self.compared
            return self.icmp(COMPARED[cc], bits, a, c)
        expr = CONDITIONS[cc]
        neg = expr.startswith("!")
        if neg:
            expr = expr[1:].strip("()")
        b = self.b

        def term(t: str) -> str:
            if "^" in t:
                x, y = t.strip("()").split("^")
                return b.emit(f"xor i1 {self.get_flag(x)}, {self.get_flag(y)}")
            return self.get_flag(t)

        if "|" in expr:
            x, y = expr.split("|", 1)
            v = b.emit(f"or i1 {term(x)}, {term(y)}")
        else:
            v = term(expr)
        return b.emit(f"xor i1 {v}, true") if neg else v

    # ---- stack and control -----------------------------------------------------------------
    def push(self, value: str, size: int = 8) -> None:
        rsp = self.get_gpr(4)
        new = self.b.emit(f"sub i64 {rsp}, {size}")
        self.near_sp = True
        self.store(new, value, size)
        self.set_gpr(4, new)

    def pop(self, size: int = 8) -> str:
        rsp = self.get_gpr(4)
        self.near_sp = True
        v = self.load(rsp, size)
        self.set_gpr(4, self.b.emit(f"add i64 {rsp}, {size}"))
        return v

    def jump(self, target: str, within: str | None = None, ret: bool = False) -> None:
        """End the block: continue at the guest address `target` (i64 value or constant).
        `within`: an indirect jmp, which may branch inside the region: "reg" (a switch) to any
        of its blocks, "slot" (a PLT stub) to those no other block of it branches to directly
        (the entries of functions it took in). `ret`: a return, which branches inside when it
        pops one of the region's return sites (a switch over all the region's blocks at every
        ret made recursion and strings 10-15% slower)."""
        if target.lstrip("-").isdigit():
            self.goto(int(target) & 0xFFFFFFFFFFFFFFFF)
            return
        sites = (self.slot_sites if within == "slot" else list(self.targets) if within
                 else self.returns if ret else [])
        if sites and self.targets and not self.quick:
            # An indirect jmp (or a ret) in a region: to one of its blocks (return sites) it
            # is a branch inside the function; anywhere else it chains.
            b = self.b
            out = b.new_label("indirect")
            cases = [(a, b.new_label("to")) for a in sites]
            b.stmt(f"switch i64 {target}, label %{out} [ "
                   + " ".join(f"i64 {const(a, 64)}, label %{lab}" for a, lab in cases) + " ]")
            for a, lab in cases:
                b.label(lab)
                self.goto(a)
            b.label(out)
        self.chain(target)

    def chain(self, target: str) -> None:
        """Leave the function for the guest address `target` (i64 value or constant): look it
        up in the native lookup table and tail-call its translation (counting the run towards
        hotness as the dispatcher does), or return to the dispatcher when it is not there, when
        it turns hot now, or when the state's ticks are spent (then Exit.BUDGET, so the runtime
        gets a look now and then however long the guest runs without a miss)."""
        b = self.b
        if self.chains and self.promote and not b.leaving:
            # The optimising tier's chained exits share one (emitted by run): each wrote the
            # locals back and looked its target up on its own, a third of a region's IR (a
            # strings region: 39 exits, 3,500 of 10,900 lines), which -O2 and instruction
            # selection then worked through.
            self.chain_exits.append((target, b.current))
            b.stmt("br label %chain.out")
            return
        self._chain_here(target)

    def _chain_here(self, target: str) -> None:
        b = self.b
        b.stmt(f"store i64 {target}, ptr {self.ptr('rip')}")
        if not self.chains:
            b.stmt(f"ret i32 {Exit.CONTINUE}")
            return
        ticks_p, hot_p, table_p = self.ptr("ticks"), self.ptr("hot"), self.ptr("table")
        t = b.emit(f"sub i64 {b.emit(f'load i64, ptr {ticks_p}')}, 1")
        b.stmt(f"store i64 {t}, ptr {ticks_p}")
        # All three ways on (budget spent, not in the table, chained) leave the function:
        # write the state back once, before they part (at each, it tripled the write-backs).
        b.leave()
        spent, look = b.new_label("spent"), b.new_label("look")
        b.stmt(f"br i1 {b.emit(f'icmp sle i64 {t}, 0')}, label %{spent}, label %{look}, !prof !1")
        b.label(spent)
        b.stmt(f"ret i32 {Exit.BUDGET}")
        b.label(look)
        table = b.emit(f"load ptr, ptr {table_p}")
        if target.lstrip("-").isdigit():
            index = str(table_index(int(target) & 0xFFFFFFFFFFFFFFFF))
        else:
            index = table_index_ir(b.emit, target)
        entry = b.emit(f"getelementptr {TABLE_ENTRY}, ptr {table}, i64 {index}")
        key = b.emit(f"load i64, ptr {entry}")
        found, back, counted = b.new_label("found"), b.new_label("back"), b.new_label("chain")
        b.stmt(f"br i1 {b.emit(f'icmp eq i64 {key}, {target}')}, label %{found}, label %{back}")
        b.label(back)
        b.stmt(f"ret i32 {Exit.CONTINUE}")
        b.label(found)
        runs_p = b.emit(f"getelementptr {TABLE_ENTRY}, ptr {table}, i64 {index}, i32 2")
        runs = b.emit(f"add i64 {b.emit(f'load i64, ptr {runs_p}')}, 1")
        hot = b.emit(f"icmp eq i64 {runs}, {b.emit(f'load i64, ptr {hot_p}')}")
        b.stmt(f"br i1 {hot}, label %{back}, label %{counted}, !prof !1")
        b.label(counted)
        b.stmt(f"store i64 {runs}, ptr {runs_p}")
        fn_p = b.emit(f"getelementptr {TABLE_ENTRY}, ptr {table}, i64 {index}, i32 1")
        fn = b.emit(f"load ptr, ptr {fn_p}")
        data_p = b.emit(f"getelementptr {TABLE_ENTRY}, ptr {table}, i64 {index}, i32 3")
        data = b.emit(f"load ptr, ptr {data_p}")
        r = b.emit(f"musttail call {BLOCK_CC} i32 {fn}(ptr %st, ptr %mem, ptr %perm, "
                   f"ptr {data})")
        b.stmt(f"ret i32 {r}")
        b.leaving = False

    def goto(self, address: int) -> None:
        """End the block with a direct transfer to `address`: a branch inside the function when
        the region holds that block, else a chained exit."""
        label = self.targets.get(address)
        if label is None:
            self.chain(const(address, 64))
            return
        if address <= self.block.start:
            # A back edge: count it, so a guest looping inside the region still returns to the
            # runtime now and then (signals, stop requests). A back edge to the region's head
            # leaves DRAIN ticks early, the others at 0, so a loop that comes back to the
            # head leaves there, where the region is entered again: leaving at an inner back
            # edge put the guest in that block's cold code (sort ran its partition loop cold
            # after such exits until the block there turned hot and formed a second region
            # of the same loop). The compare with 0 costs nothing at the inner, hotter ones.
            b = self.b
            t = b.emit(f"load i64, ptr {self.ptr('ticks')}")
            t1 = b.emit(f"sub i64 {t}, 1")
            b.stmt(f"store i64 {t1}, ptr {self.ptr('ticks')}")
            bound = DRAIN if address == self.blocks[0].start else 0
            spent = b.emit(f"icmp sle i64 {t1}, {bound}")
            # The back edges whose budget is spent share an exit (and its write-back) with the
            # others whose target reads the same flags first (see run).
            keep = self.live_in.get(address) if self.live_in else None
            exits = self.budget_exits.setdefault(keep, [])
            exits.append((const(address, 64), b.current))
            b.stmt(f"br i1 {spent}, label %budget.out{list(self.budget_exits).index(keep)}, "
                   f"label %{label}, !prof !1")
            return
        self.b.stmt(f"br label %{label}")

    def branch(self, cond: str, taken: int, not_taken: int) -> None:
        """End the block with a conditional direct transfer (jcc and friends)."""
        if not self.targets or (taken not in self.targets and not_taken not in self.targets):
            self.jump(self.select(cond, 64, const(taken, 64), const(not_taken, 64)))
            return
        b = self.b
        yes, no = b.new_label("taken"), b.new_label("not_taken")
        b.stmt(f"br i1 {cond}, label %{yes}, label %{no}")
        b.label(yes)
        self.goto(taken)
        b.label(no)
        self.goto(not_taken)

    def reg_name(self, index: int) -> str:
        return GPR_NAMES[index]


def module_text(functions: list[str], intrinsics: set[str]) -> str:
    """Assemble function texts into one module."""
    from .irbuilder import INTRINSICS
    decls = "\n".join(INTRINSICS[i] for i in sorted(intrinsics))
    body = "\n".join(functions)
    check = CHECK_DEF if "@chk(" in body else ""
    # The cold tier writes its fault exits out: an unused @fault would still be compiled.
    header = MODULE_HEADER if "@fault(" in body else STATE_TYPE
    return (header + check + decls + "\n\n" + body
            + '\n!0 = !{!"branch_weights", i32 1000, i32 1}\n'
            + '!1 = !{!"branch_weights", i32 1, i32 1000}\n')
