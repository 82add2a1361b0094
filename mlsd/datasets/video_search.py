"""The video search world (Chapter 7): which videos answer this text query?

A video platform holds a few thousand videos. Each has a hidden **topic** (cooking, guitar,
football...), a hidden **visual concept** (filmed outdoors, at night, animated...), a hidden
**quality** and a hidden **style** (how it is shot: a nuisance for search). Uploaders describe
their videos with a title, tags and a description: bags of words drawn from the topic's and the
concept's vocabulary, with filler, some fields empty, **clickbait** titles that borrow popular
words and **tag spam**. A visual embedding (what a video encoder would output) is a noisy
projection of topic, concept and style.

Searchers describe the same topics with partly **different words**: for a share of the
vocabulary uploaders write one synonym ("cuisine", "automobile") and searchers type another
("cooking", "auto") — the vocabulary mismatch that makes a word-matching search miss relevant
videos. A few words belong to two topics ("python", "bass"). A query comes from a hidden
**intent** (a topic, and a concept or none) as 1-4 words.

Observed: the videos' text, embeddings and view counts; the log of an old search engine (what
people searched, what it showed at which position and what they clicked: position-biased);
a set of queries for rating, split into train, validation and test. Hidden: every video's
topic, concept, quality, style and flags; every query's intent. From them, the **grade** (0-3)
of any video for any intent, and the posterior of the intent given a query's words (the query
generator is known, so it is computed exactly by enumeration).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import sparse

from mlsd._checks import check_int
from mlsd.book.seeding import make_rng
from mlsd.datasets.world import World, all_tables

DEFAULT_SEED = 0
NAME = "video_search"
NEW_UPLOAD_VIEWS = 0.02   # a new upload's views so far, as a share of an older video's

#: each topic's four terms as (the uploaders' word, the searchers' word); a pair with two
#: different words is a vocabulary mismatch. Some words belong to two topics (ambiguity).
TOPICS: dict[str, tuple[tuple[str, str], ...]] = {
    "cooking": (("recipe", "recipe"), ("cuisine", "cooking"), ("kitchen", "kitchen"), ("entree", "dinner")),
    "guitar": (("guitar", "guitar"), ("chords", "songs"), ("tutorial", "lesson"), ("bass", "bass")),
    "football": (("football", "soccer"), ("goals", "goals"), ("highlights", "highlights"), ("fixture", "match")),
    "fitness": (("workout", "workout"), ("hiit", "cardio"), ("strength", "gym"), ("regimen", "exercise")),
    "travel": (("travel", "travel"), ("itinerary", "trip"), ("destinations", "places"), ("vlog", "vlog")),
    "gaming": (("gameplay", "gameplay"), ("walkthrough", "guide"), ("speedrun", "speedrun"), ("console", "games")),
    "cars": (("car", "car"), ("automobile", "auto"), ("review", "review"), ("motor", "engine")),
    "space": (("astronomy", "space"), ("planets", "planets"), ("telescope", "telescope"), ("cosmos", "universe")),
    "makeup": (("makeup", "makeup"), ("cosmetics", "beauty"), ("tutorial", "tutorial"), ("glam", "makeover")),
    "coding": (("python", "python"), ("programming", "coding"), ("tutorial", "tutorial"), ("developer", "programmer")),
    "phones": (("smartphone", "phone"), ("review", "review"), ("unboxing", "unboxing"), ("handset", "mobile")),
    "pets": (("dog", "dog"), ("canine", "puppy"), ("python", "snake"), ("pet", "pet")),
    "fishing": (("fishing", "fishing"), ("angling", "fish"), ("bass", "bass"), ("tackle", "gear")),
    "gardening": (("garden", "garden"), ("horticulture", "plants"), ("soil", "soil"), ("cultivation", "growing")),
    "history": (("history", "history"), ("antiquity", "ancient"), ("documentary", "documentary"), ("dynasty", "empire")),
    "diy": (("diy", "diy"), ("carpentry", "woodworking"), ("tools", "tools"), ("renovation", "repair")),
}
#: visual concepts, each as (the uploaders' word, the searchers' word)
CONCEPTS: dict[str, tuple[str, str]] = {
    "outdoor": ("outdoors", "outside"), "night": ("nighttime", "night"), "animated": ("animated", "cartoon"),
    "kids": ("children", "kids"), "vintage": ("vintage", "retro"), "live": ("live", "live"),
    "aerial": ("aerial", "drone"), "closeup": ("closeup", "closeup"), "funny": ("funny", "funny"),
    "slowmotion": ("slowmo", "slowmotion"),
}
FILLER_TITLE = ("best", "new", "part", "my", "first", "2026", "full", "easy", "top", "ultimate")
FILLER_TEXT = ("the", "and", "this", "video", "we", "today", "subscribe", "channel", "watch", "like",
               "how", "what", "about", "more", "time", "day", "good", "make", "check", "out")
FILLER_QUERY = ("best", "how", "video", "easy", "new")
BAIT = ("amazing", "shocking", "insane", "unbelievable", "viral", "secret")

KNOBS = {
    "n_videos": 6_000,
    "embedding_dim": 24,
    "n_styles": 8,
    "topic_popularity_zipf": 0.8,         # topic k's share of searches is proportional to 1 / (k + 1) ** 0.8
    "no_concept_share": 0.3,              # intents with a topic only
    "low_quality_below": 0.35,            # a video below this quality is one grade less relevant
    "clickbait_share": 0.10,
    "tag_spam_share": 0.08,
    "empty_tags_share": 0.20,
    "empty_description_share": 0.25,
    "searcher_word_in_description": 0.35,  # a description word uses the searchers' synonym
    "searcher_word_in_tags": 0.15,
    "topic_words_in_title": (0.2, 0.5, 0.3),   # P(0, 1, 2 of the topic's words in the title)
    "concept_in_title": 0.15,             # the uploader names the visual concept in the title
    "concept_in_tags": 0.25,
    "concept_in_description": 0.25,
    "embedding_noise": 0.9,               # per dimension, against unit-scale topic and concept vectors
    "style_weight": 1.0,
    "query_concept_word": 0.7,            # a concept intent names its concept in the query
    "query_uploader_word": 0.2,           # a searcher sometimes types the uploaders' synonym
    "days": 28,
    "n_searches": 20_000,                 # logged searches of the old engine
    "shown": 10,
    "n_rated_queries": {"train": 400, "valid": 200, "test": 400},
    "rater_error": 0.15,                  # a rater's grade is one off with this probability
}

WHY = {
    "n_videos": "a corpus in which each topic has a few hundred videos and each topic-and-concept pair "
                "a few dozen, so ten good answers exist for most queries, while scoring every video for "
                "a query is one sparse matrix product",
    "searcher_word_in_description": "descriptions are longer and looser than titles and sometimes use "
                                    "the searchers' word: a text search that weighs fields can find "
                                    "part of the mismatched vocabulary, not all of it",
    "no_concept_share": "many real queries name only a topic; among the topic's videos the concept "
                        "then does not matter",
    "query_concept_word": "a query from an intent with a concept sometimes leaves it out: that part "
                          "of the room above any system is out of reach (ambiguity)",
    "embedding_noise": "the visual embedding separates topics well and concepts less well, and a "
                       "shooting style moves it: visual search alone is not enough",
    "clickbait_share": "clickbait titles borrow popular words and attract clicks, so a view prior and "
                       "click labels both reward them, while their quality is low",
    "low_quality_below": "relevance is lowered for low-quality videos, which word matching cannot see",
    "rater_error": "a rater is one grade off for about one pair in seven: labels for the re-ranker are "
                   "noisy, the evaluation uses the true grades",
}

COLUMNS = {
    "videos.video_id": "video id, 0..n-1 (its row)",
    "videos.upload_day": "day the video was uploaded (negative: before the log starts)",
    "videos.views": "views so far",
    "videos.title": "title words, space-separated (may be empty)",
    "videos.tags": "tags, space-separated (may be empty)",
    "videos.description": "description words, space-separated (may be empty)",
    "embeddings.video_id": "the video",
    "embeddings.e0": "the visual embedding, columns e0..e23 (a video encoder's output)",
    "searches.search_id": "a search on the old engine",
    "searches.day": "day of the search",
    "searches.query": "the query's words, space-separated",
    "shown.search_id": "the search",
    "shown.position": "position on the results page, 1 = top",
    "shown.video_id": "the video shown there",
    "shown.clicked": "whether the searcher clicked it",
    "queries.query_id": "a query sampled for rating",
    "queries.split": "train, valid or test",
    "queries.query": "the query's words",
    "video_truth.video_id": "hidden: the video",
    "video_truth.topic": "hidden: its topic",
    "video_truth.concept": "hidden: its visual concept",
    "video_truth.quality": "hidden: quality in [0, 1]",
    "video_truth.style": "hidden: its shooting style (a nuisance in the embedding)",
    "video_truth.clickbait": "hidden: a clickbait title",
    "video_truth.tag_spam": "hidden: spammed tags",
    "query_intents.query_id": "hidden: the rated query",
    "query_intents.topic": "hidden: its intent's topic",
    "query_intents.concept": "hidden: its intent's concept ('any' for a topic only)",
    "search_intents.search_id": "hidden: the logged search",
    "search_intents.topic": "hidden: its intent's topic",
    "search_intents.concept": "hidden: its intent's concept ('any' for a topic only)",
    "salt.salt": "hidden: the key of the raters' draws",
}

TOPIC_NAMES = tuple(TOPICS)
CONCEPT_NAMES = tuple(CONCEPTS)
#: every intent: (topic, concept), concept "any" for a topic only
INTENTS: tuple[tuple[str, str], ...] = tuple((t, c) for t in TOPIC_NAMES for c in ("any",) + CONCEPT_NAMES)


def _topic_shares() -> np.ndarray:
    w = 1.0 / (np.arange(len(TOPICS)) + 1.0) ** KNOBS["topic_popularity_zipf"]
    return w / w.sum()


def intent_prior() -> np.ndarray:
    """P(intent), in the order of :data:`INTENTS`."""
    concept = np.r_[KNOBS["no_concept_share"], np.full(len(CONCEPTS), (1 - KNOBS["no_concept_share"]) / len(CONCEPTS))]
    return np.outer(_topic_shares(), concept).ravel()


# --------------------------------------------------------------------------- queries


@lru_cache(maxsize=None)
def _query_distribution(topic: str, concept: str) -> dict[tuple[str, ...], float]:
    """Every query an intent can produce (its sorted words) with its probability.

    The generator: one or two of the topic's four terms (probability 0.6 / 0.4, chosen
    uniformly), each in the searchers' word (or the uploaders' with probability
    ``query_uploader_word``); the concept's word with probability ``query_concept_word``
    if the intent has a concept (same synonym rule); a filler word with probability 0.3.
    """
    k = KNOBS
    p_up = k["query_uploader_word"]

    def forms(pair):
        up, search = pair
        return [(search, 1.0)] if up == search else [(search, 1 - p_up), (up, p_up)]

    terms = TOPICS[topic]
    out: dict[tuple[str, ...], float] = {}
    for n_terms, p_n in ((1, 0.6), (2, 0.4)):
        subsets = list(itertools.combinations(range(4), n_terms))
        for subset in subsets:
            for words in itertools.product(*(forms(terms[i]) for i in subset)):
                p_words = p_n / len(subsets) * float(np.prod([p for _, p in words]))
                concept_options = [((), 1.0)]
                if concept != "any":
                    c = k["query_concept_word"]
                    concept_options = [((), 1 - c)] + [((w,), c * p) for w, p in forms(CONCEPTS[concept])]
                for cw, pc in concept_options:
                    for fw, pf in [((), 0.7)] + [((f,), 0.3 / len(FILLER_QUERY)) for f in FILLER_QUERY]:
                        key = tuple(sorted([w for w, _ in words] + list(cw) + list(fw)))
                        out[key] = out.get(key, 0.0) + p_words * pc * pf
    return out


@lru_cache(maxsize=1)
def _query_table() -> tuple[dict[tuple[str, ...], int], np.ndarray]:
    """Every possible query (sorted words) -> row, and P(query | intent) as (n_queries, n_intents)."""
    index: dict[tuple[str, ...], int] = {}
    rows, cols, vals = [], [], []
    for j, (topic, concept) in enumerate(INTENTS):
        for key, p in _query_distribution(topic, concept).items():
            rows.append(index.setdefault(key, len(index)))
            cols.append(j)
            vals.append(p)
    likelihood = sparse.csr_matrix((vals, (rows, cols)), shape=(len(index), len(INTENTS))).toarray()
    return index, likelihood


def _sample_queries(rng, intents: np.ndarray) -> list[str]:
    """One query (space-separated words, in a random order) for each intent index."""
    out = []
    for j in intents:
        keys, p = _query_choices(j)
        words = list(keys[rng.choice(len(keys), p=p)])
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


@lru_cache(maxsize=None)
def _query_choices(intent: int) -> tuple[list[tuple[str, ...]], np.ndarray]:
    dist = _query_distribution(*INTENTS[intent])
    p = np.array(list(dist.values()))
    return list(dist), p / p.sum()


def intent_posterior(queries) -> np.ndarray:
    """Hidden knowledge: P(intent | the query's words) for each query, (n, len(INTENTS)).

    Exact: the query generator is known, so P(words | intent) is enumerated. Raises
    ``ValueError`` for a query no intent can produce.
    """
    index, likelihood = _query_table()
    prior = intent_prior()
    out = np.empty((len(queries), len(INTENTS)))
    for i, q in enumerate(queries):
        key = tuple(sorted(str(q).split()))
        if key not in index:
            raise ValueError(f"query {q!r} cannot come from any intent of this world")
        joint = likelihood[index[key]] * prior
        out[i] = joint / joint.sum()
    return out


# --------------------------------------------------------------------------- videos


def _words(rng, pairs, n: int, p_searcher: float) -> list[str]:
    """n words from (uploader, searcher) pairs: the searchers' word with probability p_searcher."""
    picks = rng.integers(0, len(pairs), int(n))
    use_searcher = rng.random(int(n)) < p_searcher
    return [pairs[i][1] if s else pairs[i][0] for i, s in zip(picks, use_searcher)]


def _videos(rng, n: int, first_id: int, upload_days: tuple[int, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    k = KNOBS
    topic_p = 0.5 * _topic_shares() + 0.5 / len(TOPICS)      # uploads are flatter than searches
    topic = rng.choice(len(TOPICS), n, p=topic_p)
    concept = rng.integers(0, len(CONCEPTS), n)
    clickbait = rng.random(n) < k["clickbait_share"]
    tag_spam = rng.random(n) < k["tag_spam_share"]
    quality = np.where(clickbait, rng.beta(2, 4, n), rng.beta(4, 2, n))
    style = rng.integers(0, k["n_styles"], n)
    popular = [w for t in TOPIC_NAMES[:4] for w, _ in TOPICS[t]]            # what bait borrows
    everything = sorted({w for t in TOPICS.values() for pair in t for w in pair})
    titles, tags, descriptions = [], [], []
    for i in range(n):
        terms, cpair = TOPICS[TOPIC_NAMES[topic[i]]], CONCEPTS[CONCEPT_NAMES[concept[i]]]
        title = _words(rng, terms, rng.choice(3, p=k["topic_words_in_title"]), 0.0)
        if rng.random() < k["concept_in_title"]:   # what a video shows is seldom written
            title += [cpair[0]]
        title += list(rng.choice(FILLER_TITLE, rng.integers(0, 3), replace=False))
        if clickbait[i]:
            title += list(rng.choice(BAIT, 2, replace=False)) + list(rng.choice(popular, 2, replace=False))
        tag = []
        if rng.random() >= k["empty_tags_share"]:
            tag = _words(rng, terms, rng.integers(1, 4), k["searcher_word_in_tags"])
            tag += _words(rng, (cpair,), rng.random() < k["concept_in_tags"], k["searcher_word_in_tags"])
        if tag_spam[i]:
            tag += list(rng.choice(everything, 10, replace=False))
        text = []
        if rng.random() >= k["empty_description_share"]:
            text = _words(rng, terms, rng.integers(2, 6), k["searcher_word_in_description"])
            text += _words(rng, (cpair,), rng.random() < k["concept_in_description"],
                           k["searcher_word_in_description"])
            text += list(rng.choice(FILLER_TEXT, rng.integers(5, 20)))
        for words, out in ((title, titles), (tag, tags), (text, descriptions)):
            rng.shuffle(words)
            out.append(" ".join(words))
    log_views = (6.0 + 2.0 * np.log(topic_p[topic] * len(TOPICS)) + 2.5 * quality + 1.5 * clickbait
                 + rng.normal(0, 1.0, n))
    ids = np.arange(first_id, first_id + n)
    videos = pd.DataFrame({"video_id": ids, "upload_day": rng.integers(*upload_days, n),
                           "views": np.round(np.exp(log_views)).astype(np.int64),
                           "title": titles, "tags": tags, "description": descriptions})
    truth = pd.DataFrame({"video_id": ids, "topic": np.array(TOPIC_NAMES)[topic],
                          "concept": np.array(CONCEPT_NAMES)[concept], "quality": quality.round(4),
                          "style": style, "clickbait": clickbait, "tag_spam": tag_spam})
    return videos, truth


def _embeddings(rng, truth: pd.DataFrame) -> pd.DataFrame:
    k = KNOBS
    d = k["embedding_dim"]
    # the world's fixed directions for topics, concepts and styles
    basis = make_rng(0, "video search basis")
    topic_vec = basis.normal(0, 1, (len(TOPICS), d)) / np.sqrt(d) * 2.0
    concept_vec = basis.normal(0, 1, (len(CONCEPTS), d)) / np.sqrt(d) * 1.2
    style_vec = basis.normal(0, 1, (k["n_styles"], d)) / np.sqrt(d) * k["style_weight"]
    t = pd.Categorical(truth["topic"], categories=TOPIC_NAMES).codes
    c = pd.Categorical(truth["concept"], categories=CONCEPT_NAMES).codes
    e = (topic_vec[t] + concept_vec[c] + style_vec[truth["style"].to_numpy()]
         + rng.normal(0, k["embedding_noise"] / np.sqrt(d), (len(truth), d)))
    frame = pd.DataFrame(e.round(4), columns=[f"e{j}" for j in range(d)])
    frame.insert(0, "video_id", truth["video_id"].to_numpy())
    return frame


# --------------------------------------------------------------------------- grades


def grade_matrix(video_truth: pd.DataFrame) -> np.ndarray:
    """Hidden: the grade (0-3) of every video for every intent, (len(INTENTS), n_videos) int8.

    3: the intent's topic and (if it has one) its concept; 1: the topic with another concept;
    0: another topic. A video of low quality (below ``low_quality_below``) is one grade lower.
    """
    t = pd.Categorical(video_truth["topic"], categories=TOPIC_NAMES).codes
    c = np.asarray(video_truth["concept"])
    low = video_truth["quality"].to_numpy() < KNOBS["low_quality_below"]
    out = np.zeros((len(INTENTS), len(video_truth)), dtype=np.int8)
    for j, (topic, concept) in enumerate(INTENTS):
        on_topic = t == TOPIC_NAMES.index(topic)
        grade = np.where(on_topic, np.where((c == concept) | (concept == "any"), 3, 1), 0)
        out[j] = np.maximum(grade - low * on_topic, 0)
    return out


def _intent_index(topics, concepts) -> np.ndarray:
    lookup = {intent: j for j, intent in enumerate(INTENTS)}
    try:
        return np.array([lookup[(t, c)] for t, c in zip(topics, concepts)], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"not an intent of this world: {error.args[0]!r}") from None


def intent_grades(world, intents: pd.DataFrame) -> np.ndarray:
    """Hidden: the grade of every video for each row's intent, (len(intents), n_videos) int8.

    ``intents`` has columns ``topic`` and ``concept`` (the hidden ``search_intents`` table, or
    what :func:`new_slang` returns); ``world`` may be a world or its tables (:func:`new_uploads`).
    """
    missing = {"topic", "concept"} - set(intents.columns)
    if missing:
        raise ValueError(f"intents lacks the columns {sorted(missing)}")
    return grade_matrix(all_tables(world)["video_truth"])[_intent_index(intents["topic"], intents["concept"])]


def true_grades(world, query_ids) -> np.ndarray:
    """Hidden: the grade of every video for each rated query, (len(query_ids), n_videos) int8."""
    t = all_tables(world)
    table = t["query_intents"].set_index("query_id")
    ids = np.asarray(query_ids)
    unknown = np.setdiff1d(ids, table.index.to_numpy())
    if len(unknown):
        raise ValueError(f"unknown query ids: {unknown[:5].tolist()}")
    intents = table.loc[ids]
    return grade_matrix(t["video_truth"])[_intent_index(intents["topic"], intents["concept"])]


def expected_grades(world, queries) -> np.ndarray:
    """What the best system could know: E[grade | the query's words], (n, n_videos).

    The intent's exact posterior given the words, times every video's true grade for each
    intent: ranking by it is the ceiling reachable from the query (the video's topic, concept
    and quality known, the searcher's intent not).
    """
    t = all_tables(world)
    return intent_posterior(queries) @ grade_matrix(t["video_truth"]).astype(float)


def rate(world, query_ids, video_ids) -> np.ndarray:
    """Human raters' grades (0-3) for pairs (query_ids[i], video_ids[i]): the truth, one grade
    off with probability ``rater_error`` (up or down; from 0 only up, from 3 only down). The same
    pair always gets the same grade."""
    t = all_tables(world)
    q = np.asarray(query_ids, dtype=np.int64)
    v = np.asarray(video_ids, dtype=np.int64)
    if q.shape != v.shape or q.ndim != 1:
        raise ValueError(f"query_ids and video_ids must be 1-d and of one length, got {q.shape} and {v.shape}")
    n_videos = len(t["video_truth"])
    if len(v) and (v.min() < 0 or v.max() >= n_videos):
        raise ValueError(f"video_ids must be in 0..{n_videos - 1}")
    intents = t["query_intents"].set_index("query_id")
    unknown = np.setdiff1d(q, intents.index.to_numpy())
    if len(unknown):
        raise ValueError(f"unknown query ids: {unknown[:5].tolist()}")
    rows = intents.loc[q]
    truth = grade_matrix(t["video_truth"])[_intent_index(rows["topic"], rows["concept"]), v]
    salt = int(t["salt"]["salt"].iloc[0])
    # a draw per pair, a pure function of the pair: the same question gets the same answer
    u = _uniform_of_pair(q, v, salt)
    wrong = u < KNOBS["rater_error"]
    down = np.where(truth == 0, False, np.where(truth == 3, True, u < KNOBS["rater_error"] / 2))
    return (truth + wrong * np.where(down, -1, 1)).astype(np.int8)


def _uniform_of_pair(q: np.ndarray, v: np.ndarray, salt: int) -> np.ndarray:
    """A uniform number in [0, 1) for each (query, video) pair: a hash (splitmix64), no state."""
    with np.errstate(over="ignore"):
        x = q.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + v.astype(np.uint64) + np.uint64(salt)
        for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            x = (x ^ (x >> np.uint64(shift))) * np.uint64(mult)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / 2.0**53


# --------------------------------------------------------------------------- the old engine's log


def _old_engine(videos: pd.DataFrame, queries: list[str], shown: int) -> np.ndarray:
    """The logged engine: titles that share the most words with the query, ties by views."""
    vocab = {}
    def bag(texts):
        rows, cols = [], []
        for i, text in enumerate(texts):
            for w in set(text.split()):
                rows.append(i)
                cols.append(vocab.setdefault(w, len(vocab)))
        return rows, cols
    r, c = bag(videos["title"])
    rq, cq = bag(queries)
    n = len(vocab)
    titles = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(videos), n))
    asked = sparse.csr_matrix((np.ones(len(rq)), (rq, cq)), shape=(len(queries), n))
    prior = 1e-3 * np.log1p(videos["views"].to_numpy())[None, :]   # ties broken by views
    out = []
    for start in range(0, len(queries), 2_000):
        score = (asked[start:start + 2_000] @ titles.T).toarray() + prior
        top = np.argpartition(-score, shown, axis=1)[:, :shown]
        order = np.lexsort((top, -np.take_along_axis(score, top, axis=1)), axis=1)
        out.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(out)


def _clicks(rng, grades: np.ndarray, clickbait: np.ndarray) -> np.ndarray:
    """Position-biased clicks on result lists (rows: searches, columns: positions 1, 2, ...).

    A searcher examines position i with probability 1 / i^0.8 and clicks what they examine with
    a probability that grows with its grade; clickbait titles add clicks whatever the grade.
    """
    examined = 1.0 / np.arange(1, grades.shape[1] + 1) ** 0.8
    attractive = 0.03 + 0.5 * (grades / 3) ** 1.5 + 0.25 * clickbait
    return rng.random(grades.shape) < examined * attractive


def clicks(world, search_intents: pd.DataFrame, shown, *, key: str = "clicks") -> np.ndarray:
    """Simulated clicks of searchers with hidden intents on the result lists a system showed.

    ``search_intents`` has one row per search (columns ``topic``, ``concept``, as in the hidden
    ``search_intents`` table); ``shown`` is (n_searches, k) video ids, best first, -1 for an empty
    slot. The old engine's log was drawn with the same model. Returns a boolean (n_searches, k).
    The draws depend on ``key`` and the number of searches only, so two systems shown to the same
    searchers get the same luck; give each new batch of searches (a day, an arm) its own ``key``.
    """
    t = all_tables(world)
    shown = np.asarray(shown, dtype=np.int64)
    if shown.ndim != 2 or len(shown) != len(search_intents):
        raise ValueError(f"shown must be (n_searches, k) with one row per search, got {shown.shape}")
    n_videos = len(t["video_truth"])
    if shown.max(initial=-1) >= n_videos or shown.min(initial=0) < -1:
        raise ValueError(f"shown must hold video ids 0..{n_videos - 1} or -1 for an empty slot")
    empty = shown < 0
    safe = np.where(empty, 0, shown)
    grades = np.take_along_axis(intent_grades(t, search_intents), safe, axis=1)
    bait = t["video_truth"]["clickbait"].to_numpy()[safe]
    rng = make_rng(int(t["salt"]["salt"].iloc[0]) % 2**32, key, str(len(shown)))
    return _clicks(rng, grades, bait) & ~empty


def new_uploads(world, n_videos: int, first_day: int, n_days: int) -> dict[str, pd.DataFrame]:
    """The world's tables with ``n_videos`` new uploads on days ``first_day`` .. ``first_day + n_days - 1``.

    New videos are drawn like the stored ones (text, embedding, hidden truth; views so far only
    ``NEW_UPLOAD_VIEWS`` of what an older video of the same kind has, for they are days old) and
    appended to ``videos``, ``embeddings`` and ``video_truth`` with the next ids; the functions of
    this module accept the result in place of the world (the grades cover the new videos).
    """
    n_videos = check_int("n_videos", n_videos, minimum=1)
    first_day = check_int("first_day", first_day, minimum=0)
    n_days = check_int("n_days", n_days, minimum=1)
    t = dict(all_tables(world))
    if first_day <= int(t["videos"]["upload_day"].max()):
        raise ValueError(f"first_day must come after the last upload ({int(t['videos']['upload_day'].max())})")
    first = len(t["videos"])
    rng = make_rng(int(t["salt"]["salt"].iloc[0]) % 2**32, "uploads", str(first_day), str(first))
    videos, truth = _videos(rng, n_videos, first, (first_day, first_day + n_days))
    videos["views"] = np.round(videos["views"] * NEW_UPLOAD_VIEWS).astype(np.int64)   # days old
    embeddings = _embeddings(rng, truth)
    for name, new in (("videos", videos), ("embeddings", embeddings), ("video_truth", truth)):
        t[name] = pd.concat([t[name], new], ignore_index=True)
    return t


def new_slang(world, n_searches: int, first_day: int, n_days: int, *, slang_share, topic: str = "football",
              word: str = "soccer", slang: str = "footy") -> tuple[pd.DataFrame, pd.DataFrame]:
    """More searches after the log, while searchers of ``topic`` adopt a new word.

    On day ``first_day + d`` a searcher of ``topic`` adopts the slang with probability
    ``slang_share`` (a number, or one per day) and types ``slang`` in place of ``word`` (or, if the
    query lacks it, of its first topic word). No video's text contains the slang,
    and no logged query did. Each search also carries ``retry``: the query the searcher would
    type next if the results disappoint (a new draw from the same intent, without the slang), to
    be observed only if the system's results get no click. Returns (searches with columns
    search_id, day, query, retry; their hidden intents with columns search_id, topic, concept).
    """
    n_searches = check_int("n_searches", n_searches, minimum=1)
    first_day = check_int("first_day", first_day, minimum=0)
    n_days = check_int("n_days", n_days, minimum=1)
    if topic not in TOPICS or word not in {s for _, s in TOPICS[topic]}:
        raise ValueError(f"word must be one of the searchers' words of topic {topic!r}")
    vocabulary = ({w for pairs in TOPICS.values() for pair in pairs for w in pair}
                  | {w for pair in CONCEPTS.values() for w in pair}
                  | set(FILLER_TITLE) | set(FILLER_TEXT) | set(FILLER_QUERY) | set(BAIT))
    if slang in vocabulary or not slang.isalpha():
        raise ValueError(f"slang must be a new word, got {slang!r}")
    share = np.broadcast_to(np.asarray(slang_share, dtype=float), (n_days,))
    if not np.all((share >= 0) & (share <= 1)):
        raise ValueError(f"slang_share must be in [0, 1], got {slang_share!r}")
    t = all_tables(world)
    if first_day <= int(t["searches"]["day"].max()):
        raise ValueError(f"first_day must come after the log's last day ({int(t['searches']['day'].max())})")
    rng = make_rng(int(t["salt"]["salt"].iloc[0]) % 2**32, "slang", str(first_day))
    day = first_day + np.sort(rng.integers(0, n_days, n_searches))
    intents = rng.choice(len(INTENTS), n_searches, p=intent_prior())
    queries, retries = _sample_queries(rng, intents), _sample_queries(rng, intents)
    adopted = rng.random(n_searches) < share[day - first_day]
    on_topic = np.array([INTENTS[j][0] == topic for j in intents])
    topic_words = {w for pair in TOPICS[topic] for w in pair}
    for i in np.flatnonzero(adopted & on_topic):   # the slang takes the place of a topic word
        words = queries[i].split()
        at = [j for j, w in enumerate(words) if w == word] or [j for j, w in enumerate(words) if w in topic_words]
        words[at[0]] = slang
        queries[i] = " ".join(words)
    ids = np.arange(n_searches)
    searches = pd.DataFrame({"search_id": ids, "day": day, "query": queries, "retry": retries})
    hidden = pd.DataFrame({"search_id": ids, "topic": [INTENTS[j][0] for j in intents],
                           "concept": [INTENTS[j][1] for j in intents]})
    return searches, hidden


def _log(rng, videos, truth, n_searches: int, days: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    k = KNOBS
    intents = rng.choice(len(INTENTS), n_searches, p=intent_prior())
    queries = _sample_queries(rng, intents)
    grades = grade_matrix(truth)
    shown = _old_engine(videos, queries, k["shown"])
    position = np.arange(1, k["shown"] + 1)
    clicked = _clicks(rng, grades[intents[:, None], shown], truth["clickbait"].to_numpy()[shown])
    ids = np.arange(n_searches)
    searches = pd.DataFrame({"search_id": ids, "day": np.sort(rng.integers(0, days, n_searches)),
                             "query": queries})
    log = pd.DataFrame({"search_id": np.repeat(ids, k["shown"]), "position": np.tile(position, n_searches),
                        "video_id": shown.ravel(), "clicked": clicked.ravel()})
    intent_table = pd.DataFrame({"search_id": ids, "topic": [INTENTS[j][0] for j in intents],
                                 "concept": [INTENTS[j][1] for j in intents]})
    return searches, log, intent_table


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the video search world at ``seed``."""
    seed = check_int("seed", seed, minimum=0)
    k = KNOBS
    rng = make_rng(seed)
    salt = int(rng.integers(0, 2**62))
    videos, truth = _videos(make_rng(seed, "videos"), k["n_videos"], 0, (-700, k["days"]))
    embeddings = _embeddings(make_rng(seed, "embeddings"), truth)
    searches, shown, search_intents = _log(make_rng(seed, "log"), videos, truth, k["n_searches"], k["days"])
    q_rng = make_rng(seed, "rated queries")
    splits = np.concatenate([[s] * n for s, n in k["n_rated_queries"].items()])
    intents = q_rng.choice(len(INTENTS), len(splits), p=intent_prior())
    queries = pd.DataFrame({"query_id": np.arange(len(splits)), "split": splits,
                            "query": _sample_queries(q_rng, intents)})
    query_intents = pd.DataFrame({"query_id": queries["query_id"], "topic": [INTENTS[j][0] for j in intents],
                                  "concept": [INTENTS[j][1] for j in intents]})
    world = World(
        name=NAME,
        seed=seed,
        observed={"videos": videos, "embeddings": embeddings, "searches": searches, "shown": shown,
                  "queries": queries},
        hidden={"video_truth": truth, "query_intents": query_intents, "search_intents": search_intents,
                "salt": pd.DataFrame({"salt": [salt]})},
        summary="",
        knobs=dict(KNOBS),
        columns=COLUMNS,
    )
    world.summary = _summary(world)
    return world


def _summary(world: World) -> str:
    t, k = world.observed, KNOBS
    mismatched = sum(up != search for pairs in TOPICS.values() for up, search in pairs)
    n_terms = sum(len(pairs) for pairs in TOPICS.values())
    why = "\n".join(f"- `{name}` = {KNOBS[name]}: {reason}." for name, reason in WHY.items())
    splits = t["queries"]["split"].value_counts().reindex(list(k["n_rated_queries"]))
    concepts_mismatched = sum(up != search for up, search in CONCEPTS.values())
    return f"""
A video platform's corpus and the log of its old search engine. {len(t['videos']):,} videos, each
with a title, tags and a description (space-separated words; a field may be empty), a view count
and a {k['embedding_dim']}-dimensional visual embedding (table `embeddings`). Every video has a
hidden **topic** (one of {len(TOPICS)}), **visual concept** (one of {len(CONCEPTS)}: outdoor, night,
animated...), **quality** and shooting **style**; {k['clickbait_share']:.0%} have clickbait titles
(bait words and popular words of other topics) and {k['tag_spam_share']:.0%} spammed tags.

- **Vocabulary mismatch.** Each topic has four terms and each concept one; for {mismatched} of the
  {n_terms} topic terms (and {concepts_mismatched} of the {len(CONCEPTS)} concepts) uploaders write one
  word and searchers type another ("cuisine" / "cooking"). Titles use the uploaders' words; tags
  and descriptions sometimes the searchers'. A few words belong to two or three topics ("python",
  "bass", "review", "tutorial").
- **What a video shows is seldom written**: the concept is in the title of
  {k['concept_in_title']:.0%} of videos; the embedding shows it, less clearly than the topic.
- **Queries** come from a hidden intent (a topic, and a concept or `any`) as 1-4 words. The
  `searches` log holds {len(t['searches']):,} searches over {k['days']} days; `shown` holds the
  {k['shown']} videos the old engine (title word overlap, ties by views) showed for each, and
  whether each was clicked (the click model: position bias and clickbait, `clicks`).
- **Rated queries**: {', '.join(f"{n:,} {s}" for s, n in splits.items())} queries (table `queries`).
  `rate` plays the human raters (grades 0-3, one off with probability {k['rater_error']}); the
  evaluation uses the true grades.
- **Hidden**: every video's topic, concept, quality, style and flags; every query's and search's
  intent. The **grade** of a video for an intent is 3 for its topic and concept (or any concept
  if the intent has none), 1 for its topic with another concept, 0 otherwise, one less for
  quality below {k['low_quality_below']}. `true_grades`, `expected_grades` (the grade expected from
  a query's words, through the intent's exact posterior) and `intent_posterior` compute them.

**Why these values.**

{why}

**Known biases and limits.** Texts are bags of words from a small vocabulary, with no spelling
errors, no word order and one language; every video has exactly one topic and one concept; an
intent's grades depend on nothing but topic, concept and quality (no freshness, no length, no
personal taste). The old engine's log covers only what it showed. `new_slang` continues the log
with searchers adopting a word no video uses, for drift experiments.
"""
