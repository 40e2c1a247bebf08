"""Compare this checkout with an earlier revision on the benchmark workloads, run interleaved.

    .venv/bin/python bench/compare.py REV [--runs N] [--only sort,crc32]
    .venv/bin/python bench/compare.py HEAD --base-set entries=head    (two knob settings)

On a machine whose speed drifts (a shared VM: native runs here vary by 20% within minutes),
two benchmark runs minutes apart cannot show a change of 10%. This runs the same workload
natively, cold (--no-cache) and warm under REV and under this checkout, round after round
(native, REV cold, this cold, REV warm, this warm; REV and this swap places every other
round, since the place alone made a difference here), so that drift hits all of them alike, and
prints each one's median and the geometric means of the ratios to native. REV is checked out
in a temporary git worktree and run with this checkout's virtual environment; both use one
cache folder (their keys differ), with the handler library prepared for this checkout (and
for REV when it has `jitbt prepare`). Outputs must be identical to native. It measures; it
never fails on speed.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "bench" / "build"
CONFIGS = ("native", "base cold", "this cold", "base warm", "this warm")


def _prepare(tree: Path, env: dict) -> None:
    """The interpreter's handler library for `tree`'s jitbt, as `make prepare` builds it."""
    help_text = subprocess.run([sys.executable, "-m", "runtime.cli", "--help"], cwd=tree,
                               capture_output=True, text=True).stdout
    if "prepare" in help_text:
        programs = subprocess.run(["make", "-s", "-C", str(ROOT), "prepare-list"],
                                  capture_output=True, text=True, check=True).stdout.split()
        subprocess.run([sys.executable, "-m", "runtime.cli", "prepare",
                        *(str(ROOT / p) for p in programs)], cwd=tree, env=env, check=True,
                       capture_output=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rev", help="the git revision to compare with (e.g. HEAD~3, a commit)")
    ap.add_argument("--runs", type=int, default=3, help="rounds (median of them)")
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--base-set", action="append", default=[], metavar="KNOB=VALUE",
                    help="run REV with this knob changed (repeatable): `HEAD --base-set "
                         "entries=head` compares two settings of one checkout's knobs")
    ap.add_argument("--this-set", action="append", default=[], metavar="KNOB=VALUE",
                    help="run this checkout with this knob changed (repeatable)")
    a = ap.parse_args(argv)
    names = a.only.split(",") if a.only else subprocess.run(
        ["make", "-s", "-C", str(ROOT / "bench"), "list"], capture_output=True, text=True,
        check=True).stdout.split()
    subprocess.run(["make", "-s", "-C", str(ROOT / "bench")], check=True)
    with tempfile.TemporaryDirectory(prefix="jitbt-compare-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base),
                        a.rev], check=True)
        try:
            sets = {"base": [x for kv in a.base_set for x in ("--set", kv)],
                    "this": [x for kv in a.this_set for x in ("--set", kv)]}
            return _compare(base, names, a.runs, Path(tmp) / "cache", sets)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           check=False)


def _compare(base: Path, names: list[str], runs: int, cache: Path,
             sets: dict[str, list[str]]) -> int:
    import compileall
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    for tree in (base, ROOT):
        for package in ("translator", "runtime"):
            compileall.compile_dir(str(tree / package), quiet=2)
        _prepare(tree, env)
    trees = {"base": base, "this": ROOT}
    times: dict[str, dict[str, list[float]]] = {}

    def run(config: str, name: str) -> bytes:
        path = str(BUILD / name)
        if config == "native":
            cmd, cwd = [path], ROOT
        else:
            which, mode = config.split()
            cmd = [sys.executable, "-m", "runtime.cli", "run"]
            cmd += (["--no-cache"] if mode == "cold" else []) + sets[which] + [path]
            cwd = trees[which]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, check=True).stdout
        times.setdefault(name, {}).setdefault(config, []).append(time.perf_counter() - t0)
        return out

    for name in names:
        run("base warm", name), run("this warm", name)        # fill the cache (not counted)
        times[name] = {}
        reference = None
        for i in range(runs):
            # Which tree runs first alternates round by round: in the same order every round,
            # the second of two cold runs doing the same work (a change that only acts with
            # the persistent cache) came out slower in 8 of 9 workloads, by up to 22%.
            order = CONFIGS if i % 2 == 0 else ("native", "this cold", "base cold",
                                                "this warm", "base warm")
            for config in order:
                out = run(config, name)
                reference = out if reference is None else reference
                if out != reference:
                    print(f"{name}: {config} prints something else than native")
                    return 1
        med = {c: statistics.median(times[name][c]) for c in CONFIGS}
        print(f"{name:13}" + "".join(
            f"  {c} {med[c]:.2f}" + ("" if c == "native" else f" ({med[c] / med['native']:.2f}x)")
            for c in CONFIGS), flush=True)
    means = {c: math.exp(statistics.mean(
        math.log(statistics.median(times[n][c]) / statistics.median(times[n]["native"]))
        for n in names)) for c in CONFIGS[1:]}
    print("geometric mean of ratios to native: "
          + ", ".join(f"{c} {v:.2f}x" for c, v in means.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
