"""Per-example predictions of a run, stored as a typed Parquet table, and read back for analysis.

``run.log_predictions(y_true, y_pred, proba=..., ids=..., features=...)`` stores them;
:func:`labledger.predictions.read.predictions` reads them back.
"""
