"""``python -m ebgan.sweep.child --serve N``: a local worker process running sweep tasks from its standard input."""

import sys

from .worker import main

if __name__ == "__main__":
    sys.exit(main())
