"""`python -m infra.plan`: the offline plan of a stack (infra/offline/plan.py), under the name the README, the
Makefile and the workflows use."""

import sys

from infra.offline.plan import main

if __name__ == "__main__":
    sys.exit(main())
