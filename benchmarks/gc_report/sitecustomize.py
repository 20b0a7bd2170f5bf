"""What the cyclic garbage collector would free in a kopf process once it goes quiet, written to a file.

Not part of the operator. Put this folder on ``PYTHONPATH`` and name an output folder, and every Python process
started with them that imports kopf (the operator, kopf alone) reports on itself each time it has used no CPU
for 1.5 s:

    GC_REPORT_DIR=/tmp/gc PYTHONPATH=benchmarks/gc_report python -m benchmarks.lifecycle --real --sizes 1000 \\
        --modes batch --unrelated-pods 0 --one-at-a-time 0

Each report (``GC_REPORT_DIR/PID-N.txt``) gives the RSS, pymalloc's arenas and the bytes it has in use, then
runs a full collection that keeps what it finds (``gc.DEBUG_SAVEALL``) and lists it by type, frees it, and
gives the same figures again. The collection changes the process it reports on (it frees that garbage), so the
benchmark's figures from such a run are not comparable with others.
"""

import collections
import gc
import os
import sys
import threading
import time

QUIET_POLLS = 3  # polls of 0.5 s with under 20 ms of CPU in each


def _rss_kb() -> str:
    with open("/proc/self/status") as status:
        return status.read().split("VmRSS:")[1].split()[0]


def _pymalloc(out) -> None:
    out.flush()
    saved = os.dup(2)  # sys._debugmallocstats writes to the C-level stderr
    os.dup2(out.fileno(), 2)
    try:
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    out.write("\n")


def _summary(out, label: str) -> None:
    out.write(f"== {label}: RSS {_rss_kb()} kB, {len(gc.get_objects())} objects tracked\n")
    _pymalloc(out)


def _report(path: str) -> None:
    with open(path, "w") as out:
        out.write(f"argv {sys.argv}\n")
        _summary(out, "before a full collection")
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            found = gc.collect()
            kinds = collections.Counter(type(o).__name__ for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        gc.collect()  # what DEBUG_SAVEALL kept, freed now
        out.write(f"== garbage: {found} objects\n")
        out.writelines(f"{count:10d} {name}\n" for name, count in kinds.most_common(30))
        _summary(out, "after it")


def _watch(folder: str) -> None:
    last, quiet, reports = None, 0, 0
    while True:
        time.sleep(0.5)
        if "kopf" not in sys.modules:
            continue
        cpu = time.process_time()
        quiet = quiet + 1 if last is not None and cpu - last < 0.02 else 0
        if quiet == QUIET_POLLS:
            reports += 1
            _report(os.path.join(folder, f"{os.getpid()}-{reports}.txt"))
        last = time.process_time()


if os.environ.get("GC_REPORT_DIR"):
    threading.Thread(target=_watch, args=(os.environ["GC_REPORT_DIR"],), daemon=True, name="gc-report").start()
