"""`python -m tracker.cli ...` runs the command line, as the `tracker` script does."""

import sys

from tracker.cli import main

sys.exit(main())
