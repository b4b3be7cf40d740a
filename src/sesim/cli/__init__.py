"""The ``sesim`` command line (entry point :func:`sesim.cli.main.main`).

One module per command: it adds the command's parser and maps the parsed flags onto one typed
call of the library. This package is the top layer: nothing in ``sesim`` imports it.
"""
