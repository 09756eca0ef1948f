"""``python -m labledger.cli``: the ``labledger`` command."""

from labledger.cli.app import main

main()
