"""Chapter 12 (similar listings): what the chapter uses but does not teach, in four parts.

The notebook writes its lesson (the skip-gram trainer, its negatives, the scoring and the cold
start); everything here is reached as ``case.<name>`` after
``from mlsd.cases import similar_listings as case``:

- :mod:`~mlsd.cases.similar_listings.core` -- the booked listing's rank for every query at
  once (the model's, the oracle's, the clairvoyant's), rank summaries, popularity, carousels and
  their replay against the sessions;
- :mod:`~mlsd.cases.similar_listings.serving` -- the nightly vectors in SQLite, one exact faiss
  index per region, the live calendar, the request's filters, over-fetching, the skew check,
  the ``POST /similar`` app and the arithmetic at full scale;
- :mod:`~mlsd.cases.similar_listings.monitoring` -- the live world with a season, label-free
  signals in the model's space and over room types, bands measured on reference days, alarms,
  the ranks by day and week, paired gains and the monitoring figure;
- :mod:`~mlsd.cases.similar_listings.exercises` -- what the exercises' solutions share.
"""

from mlsd.cases.similar_listings import core, exercises, monitoring, serving
from mlsd.cases.similar_listings.core import *  # noqa: F401,F403
from mlsd.cases.similar_listings.exercises import *  # noqa: F401,F403
from mlsd.cases.similar_listings.monitoring import *  # noqa: F401,F403
from mlsd.cases.similar_listings.serving import *  # noqa: F401,F403

__all__ = [*core.__all__, *serving.__all__, *monitoring.__all__, *exercises.__all__]
if len(set(__all__)) != len(__all__):  # a name in two parts would hide one of them
    raise ImportError("two parts of mlsd.cases.similar_listings export the same name")
