"""``python -m pipeline.devtools.depgraph``: see :mod:`pipeline.devtools.depgraph.cli`."""

import sys

from pipeline.devtools.depgraph.cli import main

sys.exit(main())
