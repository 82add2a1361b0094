"""Chapter 14 (people you may know): what the chapter uses but does not teach.

The notebook writes its lesson (the features family by family, the model and its
evaluation); everything here is reached as ``case.<name>`` after
``from mlsd.cases import people_you_may_know as case``:

- :mod:`~mlsd.cases.people_you_may_know.core` -- a week's snapshot, friends-of-friends
  candidates, graph embeddings and pair features, ROC-AUC weighted by person, mAP per person;
- :mod:`~mlsd.cases.people_you_may_know.serving` -- the weekly batch into SQLite, the lookup
  path, the cold-start user and the HTTP service;
- :mod:`~mlsd.cases.people_you_may_know.monitoring` -- live weeks, weekly signals, retraining.
"""

from mlsd.cases.people_you_may_know import core, monitoring, serving
from mlsd.cases.people_you_may_know.core import *  # noqa: F401,F403
from mlsd.cases.people_you_may_know.monitoring import *  # noqa: F401,F403
from mlsd.cases.people_you_may_know.serving import *  # noqa: F401,F403

__all__ = [*core.__all__, *serving.__all__, *monitoring.__all__]
if len(set(__all__)) != len(__all__):  # a name in two parts would hide one of them
    raise ImportError("two parts of mlsd.cases.people_you_may_know export the same name")
