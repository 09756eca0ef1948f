"""The read path: runs as views and DataFrames, the filter language, metric histories and aggregation.

>>> from labledger.query.runs import get_run, runs
>>> runs("digits-svm", where="params.C > 1")  # doctest: +SKIP
"""
