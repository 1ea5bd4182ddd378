"""``python -m rnaernie.cli`` (e.g. under ``torchrun -m rnaernie.cli``): the ``rnaernie`` command."""

import sys

from . import main

sys.exit(main())
