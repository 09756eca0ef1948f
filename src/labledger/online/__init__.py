"""Online experiments — A/B tests, interleaving and bandits — analysed with the same care as
offline runs: sample ratio mismatch first, lifts with intervals, variance reduction (CUPED),
peeking-safe sequential tests, power, interleaving preference tests and bandit regret.

The statistics work on aggregates (counts, or n / sum / sum of squares per variant), so
production traffic is summarised, never stored per event. SciPy and statsmodels
(``pip install "labledger[online]"``) are imported when a function needs them.
"""
