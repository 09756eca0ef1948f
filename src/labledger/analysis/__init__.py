"""Choosing between runs: paired tests and their design, the Bayesian view, multiple comparisons,
comparison, the leaderboard, plots and export.

>>> from labledger.analysis.compare import compare
>>> compare(["digits/rbf", "digits/linear"], metric="accuracy").pairs[0].verdict  # doctest: +SKIP
"""
