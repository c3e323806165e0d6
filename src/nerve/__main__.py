"""``python -m nerve``: the `nerve` command line."""

import sys

from nerve.cli import main

if __name__ == "__main__":
    sys.exit(main())
