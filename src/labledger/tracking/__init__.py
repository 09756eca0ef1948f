"""The write path: :class:`Run`, :func:`start_run`, the active-run context, the outbox that
delivers a run's records, the lifecycle (writer thread, exit, signals), validation, ids and names.

>>> from labledger.tracking.start import start_run
>>> with start_run("digits-svm") as run:  # doctest: +SKIP
...     run.log_metric("loss", 0.3, step=0)
"""
