"""``python -m gateway``: the same command as the ``gateway`` console script."""

import sys

from gateway.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
