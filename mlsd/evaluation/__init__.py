"""Measuring a system.

- :mod:`~mlsd.evaluation.metrics`     -- every offline metric the book uses, each defined in its docstring
  (the log loss day by day too, for a dashboard).
- :mod:`~mlsd.evaluation.ranking`     -- ranked lists cut from scores (ties broken the same way on
  every CPU), the k best allowed cells of a score matrix, and graded nDCG@k over many lists.
- :mod:`~mlsd.evaluation.experiments` -- A/B test sizing and analysis (rates, ratios per user,
  Welch's test of a mean per unit), the p-value and verdict as prose writes them, the A/B table,
  bootstraps, A/A and peeking simulations.
- :mod:`~mlsd.evaluation.interleaving` -- team-draft interleaving, per-user win probabilities,
  the users it needs against an A/B test, by simulation.
- :mod:`~mlsd.evaluation.bandits`     -- Thompson sampling against a fixed split: regret, when each
  run settles; P(best) checked with scipy.
- :mod:`~mlsd.evaluation.drift`       -- population stability index, the KS test, drift alarms.
- :mod:`~mlsd.evaluation.headline`    -- a chapter's headline: intervals, the contract, glue.
"""
