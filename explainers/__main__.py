"""``python -m explainers ...``: see ``explainers/cli.py``."""

from explainers.cli import main

raise SystemExit(main())
