"""Built-in CLI command plugins.

Every module in this package is registered as a plugin when the ``labledger``
command line loads (never on the logging path) and adds its commands through
the ``labledger_register_commands(cli)`` hook, exactly as a third-party plugin
would. Keep heavy imports inside the command functions.
"""
