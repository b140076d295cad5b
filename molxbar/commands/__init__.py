"""The commands of the ``molxbar`` command line, a module each: its ``add_*_command``
adds its parser, its ``cmd_*`` runs it. What they share is in :mod:`.common`; the board
commands are in :mod:`molxbar.boards.commands`, ``sweep`` in :mod:`molxbar.sweep`."""
