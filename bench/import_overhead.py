"""
DAG-parse overhead: the CPU time that importing our DAG-facing modules costs, against the Amazon
provider's SageMaker sensor and operator modules, both after ``import airflow.sdk``.

Paired runs, each side in a fresh Python process, alternating (ours, theirs, theirs, ours, ... the
order flips every pair so that neither side always runs second). Each child times its imports with
``time.process_time()`` (its own user + system CPU, so other load on the machine does not count, as
it does for wall time), after a ``gc.collect()``; the parent reads the child's peak RSS from ``wait4``. Printed: each side's
median (min-max), the ratio ours / theirs of each pair as median (min-max), and the peak memory.
Targets: median ratio <= 0.10 and every pair <= 0.15. Also the cost of importing the package and
its provider info (what Airflow loads when it discovers providers); target <= 5 ms CPU.

Both sides are measured as installed by pip, which compiles modules to bytecode: a first run of
each side with bytecode writing on (it is also the file-system cache warm-up) makes sure neither
side pays for compiling source (an editable install, an installer that does not compile, or
PYTHONDONTWRITEBYTECODE would otherwise leave one side or both uncompiled).

    python bench/import_overhead.py [--pairs 11] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from _common import fmt_spread, machine, run_child, verdict

OURS = [
    "airflow_autopilot",
    "airflow_autopilot.operators",
    "airflow_autopilot.sensors",
    "airflow_autopilot.links",
    "airflow_autopilot.operators.promotion",
]
#: What Airflow itself imports from us when it discovers providers (target: at most 5 ms).
PROVIDER = ["airflow_autopilot", "airflow_autopilot.get_provider_info"]
THEIRS = [
    "airflow.providers.amazon.aws.sensors.sagemaker",
    "airflow.providers.amazon.aws.operators.sagemaker",
]
SIDES = {"ours": OURS, "theirs": THEIRS, "provider": PROVIDER}

PROBE = """
import gc, json, sys, time
import airflow.sdk  # both sides pay this; it is not counted
# Airflow's provider discovery may already have loaded a module we time: unload it, so that its
# real cost is measured (its dependencies outside the timed set stay loaded, as in a DAG parse).
for name in [m for m in sys.modules if m.split(".")[0] in {roots!r}]:
    del sys.modules[name]
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
gc.collect()  # a clean heap, so a collection in the window is due to the window's own allocations
rss0, wall0, cpu0 = rss(), time.perf_counter(), time.process_time()
{imports}
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
print(json.dumps({{"cpu": cpu, "wall": wall, "rss_growth_kib": rss() - rss0}}))
"""

TARGET_MEDIAN, TARGET_EACH, TARGET_PROVIDER = 0.10, 0.15, 0.005


def measure(modules: list[str], write_bytecode: bool = False) -> dict[str, float]:
    """Import ``modules`` in a fresh process after ``import airflow.sdk``; CPU, wall and memory."""
    roots = sorted({m.split(".")[0] for m in modules if m.startswith("airflow_autopilot")})
    code = PROBE.format(imports="\n".join(f"import {m}" for m in modules), roots=roots)
    env = dict(os.environ)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    out, usage = run_child([sys.executable, "-c", code], timeout=120, env=env)
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_kib"] = usage.ru_maxrss  # the child's own peak, from the kernel
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=11, help="paired runs (default 11)")
    parser.add_argument("--quick", action="store_true", help="5 pairs")
    args = parser.parse_args()
    pairs = 5 if args.quick else args.pairs
    before = machine()

    for modules in SIDES.values():  # bytecode for every module both sides import; warm caches
        measure(modules, write_bytecode=True)
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for i in range(pairs):
        order = ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours")
        for side in (*order, "provider"):
            runs[side].append(measure(SIDES[side]))

    def column(side: str, key: str) -> list[float]:
        return [run[key] for run in runs[side]]

    ratios = [o / t for o, t in zip(column("ours", "cpu"), column("theirs", "cpu"), strict=True)]
    wall_ratios = [o / t for o, t in zip(column("ours", "wall"), column("theirs", "wall"), strict=True)]
    median = statistics.median(ratios)
    provider = column("provider", "cpu")
    print(f"DAG-parse import cost after `import airflow.sdk`: {pairs} alternating pairs of fresh processes")
    print(f"  machine: at start {before}; at end {machine()}")
    print("  median (min-max) over runs; CPU = the child's user+sys during the imports")
    for side, label in (("ours", "airflow_autopilot"), ("theirs", "Amazon provider")):
        print(f"  {label:<18} {', '.join(SIDES[side])}")
        print(f"    CPU  {fmt_spread(column(side, 'cpu'), '.1f', 1000)} ms")
        print(f"    wall {fmt_spread(column(side, 'wall'), '.1f', 1000)} ms")
        print(
            f"    RSS growth during the imports {fmt_spread(column(side, 'rss_growth_kib'), '.1f', 1 / 1024)} MiB"
        )
        print(f"    child peak RSS {fmt_spread(column(side, 'peak_rss_kib'), '.1f', 1 / 1024)} MiB")
    ok = median <= TARGET_MEDIAN and max(ratios) <= TARGET_EACH
    print(f"  CPU ratio ours/theirs per pair: {fmt_spread(ratios)}")
    print(f"    target: median <= {TARGET_MEDIAN:.2f} and every pair <= {TARGET_EACH:.2f}: {verdict(ok)}")
    # Other load only ever adds time, so the fastest run of each side is its least disturbed.
    least = min(column("ours", "cpu")) / min(column("theirs", "cpu"))
    print(f"  (for reference: ratio of the two sides' fastest runs {least:.3f};", end="")
    print(f" wall-time ratio per pair {fmt_spread(wall_ratios)})")
    provider_ok = statistics.median(provider) <= TARGET_PROVIDER
    print(
        f"  package + provider info ({', '.join(PROVIDER)}): CPU {fmt_spread(provider, '.2f', 1000)} ms"
        f"  (target: median <= {TARGET_PROVIDER * 1000:g} ms: {verdict(provider_ok)})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
