"""`python -m jitgrad`: the jitgrad command."""
import sys

from .cli import main

sys.exit(main())
