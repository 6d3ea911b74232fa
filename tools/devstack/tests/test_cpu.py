"""The benchmarks' CPU accounting: a process's figure includes its live descendants."""

from __future__ import annotations

import subprocess
import sys

from picture.devstack.cpu import ms_per_item, tree_cpu_seconds

# The grandchild burns 0.4 s of CPU, says so, and stays alive a while; the child only waits.
GRANDCHILD = (
    "import time\n"
    "end = time.process_time() + 0.4\n"
    "while time.process_time() < end: pass\n"
    "print('done', flush=True)\n"
    "time.sleep(5)"
)
CHILD = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {GRANDCHILD!r}])"


def test_descendants_count_towards_their_root() -> None:
    busy = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert busy.stdout is not None
        assert busy.stdout.readline().strip() == "done"
        used = tree_cpu_seconds({"busy": busy.pid, "idle": idle.pid})
    finally:
        for proc in (busy, idle):
            proc.kill()
            proc.wait()
        if busy.stdout is not None:
            busy.stdout.close()
    assert used["busy"] >= 0.4  # the grandchild's burn, plus two interpreter start-ups
    assert used["idle"] < used["busy"] - 0.25


def test_ms_per_item_divides_the_difference() -> None:
    used = ms_per_item({"a": 1.0, "b": 2.0}, {"a": 1.5, "b": 2.0, "c": 0.2}, items=10)
    assert used == {"a": 50.0, "b": 0.0, "c": 20.0}
