"""The ``gateway`` command: serve | sandbox | check-config | calls export.

One module per command, each with ``add_arguments(parser)`` and ``run(args) -> int``;
:mod:`gateway.cli.main` wires them into one parser. The CLI sits on top of everything:
it reads the settings and starts the server (gateway/wire/server.py) or the sandbox.
"""
