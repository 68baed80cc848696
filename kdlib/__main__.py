import os
import sys

from kdlib.tooling.cli import main

try:
    code = main()
    sys.stdout.flush()  # inside the try: a pipe's reader may have left before the last write
except BrokenPipeError:  # the reader of the output left early (`kdlib jobs cpu --dry-run | head`)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    code = 141  # as a shell reports a command ended by SIGPIPE
sys.exit(code)
