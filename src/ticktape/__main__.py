import sys

from ticktape.cli import main

sys.exit(main())
