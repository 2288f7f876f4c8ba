"""`python -m infra.plan`: the offline plan of a stack (infra/offline/plan.py), under the name the README, the
Makefile and the workflows use.

The cyclic garbage collector is off for the whole command and what is left is frozen before exit: a plan makes a
great many short-lived objects and almost no cycles, and the collector's passes (during the imports, the run and
the interpreter's exit) were a third of its time (docs/benchmarks.md). The output is the same byte for byte (a test
compares it with a run under the collector)."""

import gc
import sys

if __name__ == "__main__":
    gc.disable()
    from infra.offline.plan import main  # after the collector is off: the imports are most of the time

    code = main()
    gc.freeze()  # nothing left for the collector to walk at exit
    sys.exit(code)
