"""The spine: every hook labledger calls (:mod:`labledger.hooks.specs`), the plugin manager that
loads built-in and third-party plugins and calls them (:mod:`labledger.hooks.manager`).

Plugin authors import from :mod:`labledger.plugins`:

>>> from labledger.plugins import hookimpl
"""
