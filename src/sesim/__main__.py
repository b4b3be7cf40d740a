"""``python -m sesim`` runs the command line (also under ``torchrun``)."""

from sesim.cli.main import main

raise SystemExit(main())
