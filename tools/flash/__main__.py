"""`python -m loyalty.tools.flash COMMAND ...`, the same as `loyalty-flash COMMAND ...`."""
import sys

from loyalty.tools.flash.cli import main

sys.exit(main())
