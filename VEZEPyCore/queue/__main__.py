"""`python -m VEZEPyCore.queue ...`: see VEZEPyCore/queue/cli.py."""

from VEZEPyCore.queue.cli import main

raise SystemExit(main())
