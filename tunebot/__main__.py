"""`python -m tunebot` = the `tunebot` command (also the entry for `accelerate launch -m tunebot`)."""

import sys

from tunebot.cli import main

sys.exit(main())
