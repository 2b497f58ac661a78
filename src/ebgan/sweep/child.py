"""``python -m ebgan.sweep.child TASK.json``: one sweep run in its own process (the local backend's unit)."""

import sys

from .worker import main

if __name__ == "__main__":
    sys.exit(main())
