"""python -m pvshadow: the command line, as the pvshadow script."""
import sys

from pvshadow.tools.cli import main

sys.exit(main())
