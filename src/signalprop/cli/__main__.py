import sys

from signalprop.cli import main

sys.exit(main())
