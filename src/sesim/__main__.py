"""``python -m sesim`` runs the command line (also under ``torchrun``)."""

from sesim.cli import main

raise SystemExit(main())
