import sys

from ticktape.cli.main import main

sys.exit(main())
