import sys

from kdlib.tooling.cli import main

sys.exit(main())
