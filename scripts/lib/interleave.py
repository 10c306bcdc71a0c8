#!/usr/bin/env python3
"""Times commands interleaved: one run of each per round, in a new random
order every round, for the floor scenario of scripts/bench.sh.

    interleave.py --rounds N --warmup W --json OUT NAME=COMMAND ...

COMMAND is split like a shell word list (no shell runs it) and every
"{i}" in it becomes the round number, so that each run gets its own
container id and bundle. The last NAME is the reference (the floor).

Why not hyperfine: it runs all of one command's runs, then all of the
next one's. On a virtual machine whose speed drifts by 25% within minutes
that compares two moments as much as two commands. Here every round sees
the same moment, the order changes every round (a command pays for the
asynchronous clean-up of the one before it, a network namespace's above
all), and the ratio to the reference is taken within each round. Medians,
not means: a run that a busy host delays by 10 ms says nothing about the
runtime.

Prints, per command, the median and p90 in ms and the median of its
per-round ratio to the reference; writes the same as JSON to OUT. Exits
non-zero if any run fails.
"""

import argparse
import json
import os
import random
import shlex
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--json", required=True)
    ap.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    a = ap.parse_args()
    cmds = []
    for c in a.commands:
        name, _, cmd = c.partition("=")
        if not cmd:
            ap.error(f"{c!r} is not NAME=COMMAND")
        cmds.append((name, shlex.split(cmd)))
    ref = cmds[-1][0]
    times = {n: [] for n, _ in cmds}
    failed = 0
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)]
    for i in range(1, a.warmup + a.rounds + 1):
        order = cmds[:]
        random.shuffle(order)
        for name, argv in order:
            argv = [w.replace("{i}", str(i)) for w in argv]
            t0 = time.perf_counter()
            pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
            _, st = os.waitpid(pid, 0)
            ms = (time.perf_counter() - t0) * 1000
            if st != 0:
                failed += 1
                print(f"{name}: run {i} failed (wait status {st})", file=sys.stderr)
            if i > a.warmup:
                times[name].append(ms)
    out = {"rounds": a.rounds, "warmup": a.warmup, "reference": ref, "results": []}
    for name, _ in cmds:
        v = sorted(times[name])
        ratios = [x / y for x, y in zip(times[name], times[ref])]
        out["results"].append({
            "command": name,
            "median_ms": statistics.median(v),
            "p90_ms": v[(9 * len(v)) // 10],
            "mean_ms": statistics.mean(v),
            "median_ratio_to_reference": statistics.median(ratios),
        })
        r = out["results"][-1]
        print(f"{name:24s} median {r['median_ms']:7.3f} ms  p90 {r['p90_ms']:7.3f} ms  "
              f"ratio to {ref} {r['median_ratio_to_reference']:.2f}", file=sys.stderr)
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
