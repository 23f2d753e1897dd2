"""``python -m dgnlib.sweep``: run or aggregate a sweep (:func:`dgnlib.sweep.runner.main`)."""
import sys

from dgnlib.sweep.runner import main

sys.exit(main())
