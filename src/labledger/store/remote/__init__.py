"""A labledger server as a store: the client side of the HTTP API (``LABLEDGER_STORE=https://...``).

:mod:`labledger.store.remote.wire` is the wire format both sides speak.
"""
