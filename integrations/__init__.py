"""Framework integrations, importable as ``labledger.integrations.<framework>``.

Each integration is a small module that translates one framework's events
into calls on :class:`labledger.Run`, and registers through the same hooks a
third-party plugin would use. The framework itself is an extra:
``pip install "labledger[lightning]"`` (or ``keras``, ``xgboost``, ``sklearn``, ``all``).

All four are built on :mod:`labledger.integrations.base`, the public toolkit for
writing an integration: which run to record into, tracking errors that never
break training, and framework objects as plain param values.
"""
