"""``python -m blumycelium``: the same as the ``blumycelium`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
