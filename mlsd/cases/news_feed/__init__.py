"""Chapter 13 (news feed): what the chapter uses but does not teach, in four parts.

The notebook writes its lesson (one head per reaction, their calibration and the value they
are summed into); everything here is reached as ``case.<name>`` after
``from mlsd.cases import news_feed as case``:

- :mod:`~mlsd.cases.news_feed.core` -- the log joined to its posts, point-in-time counters and
  every feature, the realized value of a logged impression, nDCG@k with signed gains for every
  request at once;
- :mod:`~mlsd.cases.news_feed.serving` -- the serving path;
- :mod:`~mlsd.cases.news_feed.monitoring` -- the live world with a clickbait wave, its
  monitors and the retraining;
- :mod:`~mlsd.cases.news_feed.exercises` -- what the exercises' solutions share.
"""

from mlsd.cases.news_feed import core, exercises, monitoring, serving
from mlsd.cases.news_feed.core import *  # noqa: F401,F403
from mlsd.cases.news_feed.exercises import *  # noqa: F401,F403
from mlsd.cases.news_feed.monitoring import *  # noqa: F401,F403
from mlsd.cases.news_feed.serving import *  # noqa: F401,F403

__all__ = [*core.__all__, *serving.__all__, *monitoring.__all__, *exercises.__all__]
if len(set(__all__)) != len(__all__):  # a name in two parts would hide one of them
    raise ImportError("two parts of mlsd.cases.news_feed export the same name")
