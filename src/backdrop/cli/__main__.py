"""`python -m backdrop.cli`."""

import sys

from backdrop.cli import main

sys.exit(main())
