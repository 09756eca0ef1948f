"""What a run needs to be re-run and audited: code and environment capture, data fingerprints,
pipeline versions, seeds, completeness, and reproduce/verify/diff.

>>> from labledger.lineage.fingerprint import fingerprint
>>> fingerprint([1, 2, 3]).digest[:12]  # doctest: +SKIP
"""
