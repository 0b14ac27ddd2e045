"""``python -m gentorch`` runs the command line."""

from gentorch.cli.main import main

raise SystemExit(main())
