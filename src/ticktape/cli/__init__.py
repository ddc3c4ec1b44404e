"""The ``ticktape`` command line (typer): each command parses its arguments,
calls one function of the rooms below and renders the result. Nothing imports
this package; the entry point is :func:`ticktape.cli.main.main`."""
