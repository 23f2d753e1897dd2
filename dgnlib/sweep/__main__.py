"""``python -m dgnlib.sweep``: run or aggregate a sweep (:func:`dgnlib.sweep.cli.main`)."""
import sys

from dgnlib.sweep.cli import main

sys.exit(main())
