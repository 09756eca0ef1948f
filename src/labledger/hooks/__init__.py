"""The spine: every hook labledger calls (:mod:`labledger.hooks.specs`), the plugin manager that
loads built-in and third-party plugins (:mod:`labledger.hooks.manager`; installed ones found by
:mod:`labledger.hooks.entry_points`), how each hook call is
made, one plugin at a time through pluggy (:mod:`labledger.hooks.calling`), and how plugin
failures are reported (:mod:`labledger.hooks.reporting`).

Plugin authors import from :mod:`labledger.plugins`:

>>> from labledger.plugins import hookimpl
"""
