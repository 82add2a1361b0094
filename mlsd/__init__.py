"""mlsd: the shared, tested machinery of the executable ML System Design book.

What a chapter *teaches* by writing it (its model, its index, its trick) stays in the chapter.
Everything else lives here, with docstrings, argument checks and unit tests, in five groups:

- :mod:`mlsd.evaluation` -- measuring a system: offline metrics, ranked lists, A/B tests
  and bootstraps, drift statistics, the headline.
- :mod:`mlsd.systems`    -- running a system: the prediction service and load generator, the
  queue simulation.
- :mod:`mlsd.models`     -- models and training loops more than one chapter uses.
- :mod:`mlsd.datasets`   -- the synthetic worlds: generate, write, checksum and load ``data/``.
- :mod:`mlsd.book`       -- the book's own machinery: seeding, plot style, diagrams, glue,
  exercises.

and :mod:`mlsd.numeric`, the one numeric configuration every chapter runs under.
"""

__version__ = "0.1.0"
