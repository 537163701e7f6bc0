"""``python -m deltatune`` runs the CLI."""

import sys

from deltatune.cli import main

sys.exit(main())
