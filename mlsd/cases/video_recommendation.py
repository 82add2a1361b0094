"""Chapter 9's plumbing: the video world's log as arrays, the ranker's rows, judging, serving.

The chapter (``chapters/09_video_recommendation.ipynb``) writes what it teaches: WALS, the
candidate generators, the re-ranking rules, the choice of the ranker's negatives and the
feedback-loop experiment. This module holds what those lessons stand on:

- :class:`Catalogue`, :class:`History` -- static metadata and the log before a cut-off, as
  arrays indexed by id (:func:`make_catalogue`, :func:`make_history`); :func:`allowed_at`,
  :func:`genre_share`, :func:`content_score`, :func:`trending_score` and :class:`ItemIndex`
  (cosine neighbours of the WALS video vectors), shared by the candidates and the features;
- :class:`FeatureContext` and :func:`pair_features` -- the ranker's row per (user, video);
  :func:`label_pairs` -- its labels, from impressions or with sampled negatives;
  :func:`make_ranker`, :func:`rank_funnel`;
- :class:`Judge` -- the evaluation protocol at a cut-off: lists cut from scores, logged
  metrics, expected relevance against the hidden truth, panels of users; :func:`list_stats`;
- :class:`FeedServer` -- one feed request through the funnel, precomputed or on the fly, timed;
- :func:`trend_numbers`, :func:`genre_monitor`, :func:`serve_days`, :func:`cadence_gain` -- the
  drift scenario, its monitor and the retraining cadences;
- :func:`gini`, :func:`simulate_feed` -- the popularity feedback loop's simulation.

Everything computed "at a cut-off" reads the log strictly before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import faiss
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from mlsd._checks import check_int
from mlsd.book.plotting import OKABE_ITO, ROLE_COLORS
from mlsd.datasets import video_recommendation as vr
from mlsd.evaluation import metrics
from mlsd.evaluation.drift import psi_categorical
from mlsd.evaluation.experiments import welch_test
from mlsd.evaluation.headline import lift_share
from mlsd.evaluation.ranking import top_k, top_k_mask
from mlsd.systems.serving import faiss_threads

__all__ = [
    "Catalogue", "History", "make_catalogue", "make_history", "allowed_at", "genre_counts",
    "genre_share", "content_score", "trending_score", "ItemIndex", "baseline_scores",
    "recall_at_n", "union", "FeatureContext", "make_context", "context_at",
    "pair_features", "label_pairs", "make_ranker", "rank_funnel", "Judge", "list_stats",
    "thinned", "FeedServer", "latency_table", "latency_numbers", "scan_timings",
    "trend_numbers", "genre_monitor", "alarm_numbers", "first_watch_days", "serve_days",
    "cadence_scores", "cadence_table", "cadence_gain", "days_text", "gini", "simulate_feed",
    "loop_summary", "loop_numbers",
    "plot_log", "plot_offline", "plot_learning_curve", "plot_serving", "plot_monitor",
    "plot_cadences", "plot_loops",
]

LABEL_DAYS = 7          #: labels are the watches of the week after a cut-off
RECENT_DAYS = 3         #: "trending" and "fresh" look this many days back
SUBSCRIPTION_DAYS = 14  #: a followed creator's uploads stay candidates this long


# --------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Catalogue:
    """Static metadata as arrays indexed by id (ids are 0..n-1)."""

    genres: tuple
    genre: np.ndarray          #: per video: genre code
    language: np.ndarray       #: per video: language code
    creator: np.ndarray        #: per video: creator id
    upload_day: np.ndarray     #: per video
    log_length: np.ndarray     #: per video: log seconds
    user_language: np.ndarray  #: per user: language code
    user_device: np.ndarray    #: per user: device code
    signup_genre: np.ndarray   #: per user: genre code picked at sign-up
    subscribed: np.ndarray     #: users x creators, bool

    @property
    def n_users(self) -> int:
        return len(self.user_language)

    @property
    def n_videos(self) -> int:
        return len(self.genre)


def make_catalogue(users, videos, subscriptions, n_creators: int, genres=vr.GENRES) -> Catalogue:
    """The world's tables as a :class:`Catalogue` (categories coded in the order given)."""
    for name, frame, ids in (("users", users, "user_id"), ("videos", videos, "video_id")):
        if not np.array_equal(frame[ids].to_numpy(), np.arange(len(frame))):
            raise ValueError(f"{name} must be sorted by {ids} = 0..{len(frame) - 1}")
    subscribed = np.zeros((len(users), check_int("n_creators", n_creators, minimum=1)), bool)
    subscribed[subscriptions["user_id"], subscriptions["creator_id"]] = True

    def codes(values, names):
        return pd.Categorical(values, categories=names).codes

    return Catalogue(
        genres=tuple(genres), genre=codes(videos["genre"], genres),
        language=codes(videos["language"], vr.LANGUAGES),
        creator=videos["creator_id"].to_numpy(), upload_day=videos["upload_day"].to_numpy(),
        log_length=np.log(videos["length_seconds"].to_numpy()),
        user_language=codes(users["language"], vr.LANGUAGES),
        user_device=codes(users["device"], vr.DEVICES),
        signup_genre=codes(users["signup_genre"], genres), subscribed=subscribed)


@dataclass
class History:
    """What the platform knows at the cut-off: the log strictly before it."""

    cut: int
    watched: sparse.csr_matrix  #: users x videos: watches (counts)
    impressions: np.ndarray     #: per video: impressions before the cut
    watches: np.ndarray         #: per video: watches before the cut
    recent: np.ndarray          #: per video: watches in the last RECENT_DAYS days (trending)
    user_impressions: np.ndarray
    last_watched: np.ndarray    #: users x 5: the last videos each user watched (-1: none)


def _last_videos(watches, n_users: int, n: int = 5) -> np.ndarray:
    """users x n: each user's most recent watches, newest first, padded with -1."""
    recent = watches.sort_values(["day", "second"], ascending=False).groupby("user_id").head(n)
    rank = recent.groupby("user_id").cumcount().to_numpy()
    out = np.full((n_users, n), -1)
    out[recent["user_id"].to_numpy(), rank] = recent["video_id"].to_numpy()
    return out


def make_history(log, cut: int, catalogue: Catalogue) -> History:
    """The :class:`History` at ``cut``, from the rows of ``log`` with ``day < cut`` only."""
    cut = check_int("cut", cut)
    n_users, n_videos = catalogue.n_users, catalogue.n_videos
    past = log[log["day"] < cut]  # the one line that keeps the future out
    seen = past[past["watched"] == 1]
    watched = sparse.csr_matrix((np.ones(len(seen)), (seen["user_id"], seen["video_id"])),
                                shape=(n_users, n_videos))
    recent = seen[seen["day"] >= cut - RECENT_DAYS]

    def count(ids, n):
        return np.bincount(ids, minlength=n).astype(float)

    return History(
        cut=cut, watched=watched, impressions=count(past["video_id"], n_videos),
        watches=count(seen["video_id"], n_videos), recent=count(recent["video_id"], n_videos),
        user_impressions=count(past["user_id"], n_users),
        last_watched=_last_videos(seen, n_users))


def allowed_at(history: History, catalogue: Catalogue, rows=None) -> np.ndarray:
    """users x videos: uploaded before the cut and not watched yet (only ``rows``, if given)."""
    allowed = ((catalogue.upload_day < history.cut)[None, :]
               & (history.watched.toarray() == 0))
    if rows is not None:
        allowed &= np.isin(np.arange(catalogue.n_users), rows)[:, None]
    return allowed


def genre_counts(history: History, catalogue: Catalogue) -> np.ndarray:
    """users x genres: how many videos of each genre the user watched before the cut."""
    n_v = catalogue.n_videos
    one_hot = sparse.csr_matrix((np.ones(n_v), (np.arange(n_v), catalogue.genre)),
                                shape=(n_v, len(catalogue.genres)))
    return (history.watched @ one_hot).toarray()


def genre_share(history: History, catalogue: Catalogue, prior: float = 1.0) -> np.ndarray:
    """users x genres: smoothed share of the user's watches per genre (sign-up genre as prior)."""
    counts = genre_counts(history, catalogue) + 0.1 * prior
    counts[np.arange(len(counts)), catalogue.signup_genre] += prior
    return counts / counts.sum(axis=1, keepdims=True)


def content_score(share, user_language, catalogue: Catalogue, history: History) -> np.ndarray:
    """rows x videos: the content generator's score, for users with these genre shares and
    languages: log genre share + 3 if the language matches + 0.1 log(1 + watches)."""
    return (np.log(share[:, catalogue.genre])
            + 3.0 * (np.asarray(user_language)[:, None] == catalogue.language[None, :])
            + 0.1 * np.log1p(history.watches)[None, :])


def trending_score(history: History) -> np.ndarray:
    """Per video: watches in the last days, ties broken by all-time watches."""
    return history.recent + 1e-3 * history.watches


def _unit(vectors) -> np.ndarray:
    norm = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return (vectors / norm).astype("float32")


class ItemIndex:
    """Cosine neighbours of video vectors: an exact ``faiss`` inner-product index."""

    def __init__(self, item_vectors):
        self.unit = _unit(np.asarray(item_vectors))
        self.index = faiss.IndexFlatIP(self.unit.shape[1])
        self.index.add(self.unit)

    def similarity(self) -> np.ndarray:
        """videos x videos: the cosine of every pair."""
        return self.unit @ self.unit.T

    def neighbours(self, seeds, n: int) -> np.ndarray:
        """rows x videos bool: the ``n`` nearest videos of each row's seed videos (-1: none)."""
        seeds = np.atleast_2d(seeds)
        has = seeds >= 0
        mask = np.zeros((len(seeds), len(self.unit)), bool)
        if has.any():
            _, found = self.index.search(self.unit[seeds[has]], n)
            mask[np.repeat(np.nonzero(has)[0], found.shape[1]), found.ravel()] = True
        return mask


def baseline_scores(history: History, catalogue: Catalogue) -> dict:
    """The three day-one baselines: a score per video, or per user and video.

    "most popular" (all-time watches), "trending (3 days)" (recent watches, ties broken by
    popularity) and "popular in favourite genre" (the genre the user watched most, else the
    sign-up genre, ranked by popularity).
    """
    counts = genre_counts(history, catalogue)
    favourite = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), catalogue.signup_genre)
    popular, in_genre = history.watches, favourite[:, None] == catalogue.genre[None, :]
    return {
        "most popular": popular,
        "trending (3 days)": history.recent + popular / (popular.max() + 1),
        "popular in favourite genre": in_genre * (popular.max() + 1) + popular,
    }


def recall_at_n(candidates, task) -> float:
    """Share of the task's relevant (user, video) pairs in a users x videos boolean matrix."""
    rows, cols = np.array([(u, v) for u, vs in task.relevant.items() for v in vs]).T
    return float(candidates[rows, cols].mean())


def union(candidates: dict) -> np.ndarray:
    """The funnel: the union of the generators' users x videos matrices."""
    return np.logical_or.reduce(list(candidates.values()))


# --------------------------------------------------------------------------- features


@dataclass
class FeatureContext:
    """Everything the ranker's features need at one cut-off."""

    history: History
    user_vectors: np.ndarray
    item_vectors: np.ndarray
    genre_share: np.ndarray
    creator_watches: np.ndarray   #: users x creators
    user_log_length: np.ndarray   #: mean log length of what each user watched
    item_similarity: np.ndarray   #: videos x videos: cosine of the WALS video vectors


def make_context(history, catalogue, user_vectors, item_vectors) -> FeatureContext:
    """The :class:`FeatureContext` of a history and its WALS vectors."""
    n_v = catalogue.n_videos
    by_creator = sparse.csr_matrix((np.ones(n_v), (np.arange(n_v), catalogue.creator)),
                                   shape=(n_v, catalogue.subscribed.shape[1]))
    watches = np.asarray(history.watched.sum(axis=1)).ravel()
    lengths = history.watched @ catalogue.log_length
    return FeatureContext(
        history, user_vectors, item_vectors, genre_share(history, catalogue),
        (history.watched @ by_creator).toarray(),
        np.where(watches > 0, lengths / np.maximum(watches, 1), np.log(420.0)),
        ItemIndex(item_vectors).similarity())


def context_at(log, cut, catalogue, factorize) -> FeatureContext:
    """Refit at ``cut``: the history, ``factorize(watched) -> (user, item vectors)``, features."""
    history = make_history(log, cut, catalogue)
    return make_context(history, catalogue, *factorize(history.watched))


def pair_features(ctx: FeatureContext, catalogue: Catalogue, u, v) -> pd.DataFrame:
    """Feature table for the (user, video) pairs ``u[i], v[i]``."""
    h = ctx.history
    seeds = h.last_watched[u]
    # cosine similarity to each of the user's last watches; -1 where there is no watch
    similarity = np.where(seeds >= 0, ctx.item_similarity[np.maximum(seeds, 0), v[:, None]], -1)
    watches_u = np.asarray(h.watched.sum(axis=1)).ravel()
    return pd.DataFrame({
        "wals score": np.einsum("pf,pf->p", ctx.user_vectors[u], ctx.item_vectors[v]),
        "neighbour similarity": similarity.max(axis=1),
        "genre share": ctx.genre_share[u, catalogue.genre[v]],
        "language match": (catalogue.user_language[u] == catalogue.language[v]).astype(float),
        "subscribed": catalogue.subscribed[u, catalogue.creator[v]].astype(float),
        "creator watches": np.log1p(ctx.creator_watches[u, catalogue.creator[v]]),
        "length gap": np.abs(ctx.user_log_length[u] - catalogue.log_length[v]),
        "video watches": np.log1p(h.watches[v]),
        "video trending": np.log1p(h.recent[v]),
        "video watch rate": (h.watches[v] + 1.0) / (h.impressions[v] + 15.0),
        "video age": np.log1p(h.cut - catalogue.upload_day[v]),
        "user watches": np.log1p(watches_u[u]),
        "user watch rate": (watches_u[u] + 1.0) / (h.user_impressions[u] + 15.0),
        "device": catalogue.user_device[u],
    })


# --------------------------------------------------------------------------- the ranker


def label_pairs(log, context, catalogue, funnel, negatives, seed,
                negatives_per_user=50):
    """(users, videos, labels) from the week after the context's cut-off.

    ``negatives="impressions"``: every candidate shown in the week, labelled watched or
    not.
    ``negatives="candidates"``: the week's watches, plus ``negatives_per_user`` of each
    watcher's unwatched ``funnel`` candidates drawn at random (most were never shown).
    """
    if negatives not in ("impressions", "candidates"):
        raise ValueError(f"negatives must be 'impressions' or 'candidates', "
                         f"got {negatives!r}")
    start = context.history.cut
    window = log[(log["day"] >= start) & (log["day"] < start + LABEL_DAYS)]
    window = window[catalogue.upload_day[window["video_id"]] < start]  # uploaded before
    not_seen = context.history.watched[window["user_id"], window["video_id"]].A1 == 0
    window = window[not_seen]
    if negatives == "impressions":
        shown = window.groupby(["user_id", "video_id"], as_index=False)["watched"].max()
        return tuple(shown[c].to_numpy() for c in ("user_id", "video_id", "watched"))
    watched = window.loc[window["watched"] == 1, ["user_id", "video_id"]]
    positives = watched.drop_duplicates()
    pos_u, pos_v = positives["user_id"].to_numpy(), positives["video_id"].to_numpy()
    is_positive = sparse.csr_matrix((np.ones(len(pos_u)), (pos_u, pos_v)),
                                    shape=funnel.shape).toarray() > 0
    neg_u, neg_v = [], []
    for user in np.unique(pos_u):
        pool = np.flatnonzero(funnel[user] & ~is_positive[user])
        # a generator per user: a change in one user's pool leaves the others' draws
        pick = np.random.default_rng([seed, user]).choice(
            pool, min(negatives_per_user, len(pool)), replace=False)
        neg_u.append(np.full(len(pick), user))
        neg_v.append(np.sort(pick))
    return (np.concatenate([pos_u, *neg_u]), np.concatenate([pos_v, *neg_v]),
            np.r_[np.ones(len(pos_u), int), np.zeros(sum(map(len, neg_u)), int)])


def make_ranker(seed) -> HistGradientBoostingClassifier:
    """The chapter's ranker: gradient-boosted trees with fixed, untuned settings."""
    return HistGradientBoostingClassifier(learning_rate=0.1, max_iter=100, max_leaf_nodes=15,
                                          categorical_features=["device"], random_state=seed)


def rank_funnel(model, context, catalogue, funnel) -> np.ndarray:
    """Score every candidate in the funnel (users x videos bool); ``-inf`` elsewhere."""
    u, v = np.nonzero(funnel)
    scores = np.full(funnel.shape, -np.inf)
    scores[u, v] = model.predict_proba(pair_features(context, catalogue, u, v))[:, 1]
    return scores


# --------------------------------------------------------------------------- judging lists


class Judge:
    """The evaluation protocol at a cut-off: lists cut from scores, and their metrics.

    ``task`` is a :class:`~mlsd.datasets.video_recommendation.RankingTask`, ``truth`` the true
    ``p`` of its users (rows, in the task's order) for every video, ``genre`` the genre code of
    every video (for diversity), ``k`` the length of a list.
    """

    def __init__(self, task, truth, genre, k=10):
        if truth.shape[0] != len(task.users):
            raise ValueError(f"truth has {truth.shape[0]} rows for {len(task.users)} users")
        self.task, self.truth, self.k = task, truth, check_int("k", k, minimum=1)
        self.genre = dict(enumerate(np.asarray(genre).tolist()))

    def lists(self, scores) -> dict:
        """Each user's top-k list from scores over all videos: (videos,) or (all users, videos)."""
        scores = scores[None, :] if np.ndim(scores) == 1 else scores[self.task.users]
        return self.task.top_k(scores[:, self.task.candidates], self.k)

    def expected_relevance(self, lists) -> np.ndarray:
        """Per user: the total true p of the list's videos / k (an empty slot adds 0)."""
        return np.array([self.truth[i, lists[u]].sum() / self.k
                         for i, u in enumerate(self.task.users.tolist())])

    def score(self, scores) -> float:
        """Mean expected relevance of the lists that ``scores`` give the task's users."""
        return float(self.expected_relevance(self.lists(scores)).mean())

    def evaluate(self, lists) -> dict:
        """Logged metrics @k, expected relevance against the truth, coverage and diversity."""
        k, args = self.k, ({u: lists[u] for u in self.task.users.tolist()}, self.task.relevant)
        over = metrics.mean_over_users
        return {
            f"P@{k}": over(metrics.precision_at_k, *args, k=k),
            f"R@{k}": over(metrics.recall_at_k, *args, k=k),
            f"MAP@{k}": over(metrics.average_precision_at_k, *args, k=k),
            f"nDCG@{k}": over(metrics.ndcg_at_k, *args, k=k),
            f"expected relevance@{k}": float(self.expected_relevance(args[0]).mean()),
            "coverage": metrics.catalogue_coverage(args[0], self.task.candidates.tolist(), k=k),
            "diversity (genres)": float(np.mean([
                metrics.intra_list_diversity(lst, self.genre, k=k) for lst in args[0].values()])),
        }

    def panel(self, members) -> Judge:
        """The same protocol restricted to the task's users in ``members``."""
        keep = np.isin(self.task.users, members)
        users = self.task.users[keep]
        sub = vr.RankingTask(self.task.cutoff, users, self.task.candidates,
                             {u: self.task.seen[u] for u in users.tolist()},
                             {u: self.task.relevant[u] for u in users.tolist()})
        judge = Judge.__new__(Judge)
        judge.task, judge.truth, judge.k, judge.genre = sub, self.truth[keep], self.k, self.genre
        return judge

    def table(self, lists_by_name: dict, columns=None) -> pd.DataFrame:
        """:meth:`evaluate` of each system's lists, one row per name (``columns`` only)."""
        table = pd.DataFrame({name: self.evaluate(lists)
                              for name, lists in lists_by_name.items()}).T
        return table if columns is None else table[list(columns)]

    def lift_shares(self, lists, baseline, oracle, metric_names) -> dict:
        """Share of the achievable lift, baseline -> oracle lists, of each metric of ``lists``."""
        row, low, high = (self.evaluate(x) for x in (lists, baseline, oracle))
        return {f"{m} lift share": lift_share(low[m], row[m], high[m]) for m in metric_names}

    def simulate_ab(self, control, treatment, seed):
        """An online test on the task's users: half (at random) see ``treatment``'s list, half
        ``control``'s; each of their videos is watched with its true p. Watches per user are
        compared with Welch's test (:func:`mlsd.evaluation.experiments.welch_test`)."""
        rng = np.random.default_rng(seed)
        users = self.task.users.tolist()
        treated = rng.permutation(len(users)) < len(users) // 2
        watches = np.array([rng.binomial(1, self.truth[i, (treatment if t else control)[u]]).sum()
                            for i, (u, t) in enumerate(zip(users, treated))])
        return welch_test(watches[~treated], watches[treated])


def list_stats(lists, catalogue, cut, fresh_days=RECENT_DAYS) -> dict:
    """Creators per list, and fresh videos (uploaded in the last ``fresh_days``) per list."""
    fresh = catalogue.upload_day >= cut - fresh_days
    return {"creators per list": np.mean([len(set(catalogue.creator[v])) for v in lists.values()]),
            "fresh videos per list": np.mean([fresh[v].sum() for v in lists.values()])}


def thinned(log, share, cut, seed) -> pd.DataFrame:
    """Keep each impression before ``cut`` with probability ``share`` (the rest untouched)."""
    keep = np.random.default_rng(seed).random(len(log)) < share
    return log[keep | (log["day"].to_numpy() >= cut)]


# --------------------------------------------------------------------------- serving



class FeedServer:
    """One replica's request handler: the funnel for one user at the context's cut-off.

    ``rerank(scores, catalogue, history, users=..., videos=..., **rules)`` is the chapter's
    re-ranker; ``store`` a :class:`~mlsd.systems.feature_store.FeatureStore` holding the nightly
    candidates in table ``candidates`` (key user_id, video_id); ``funnel`` the candidates each
    generator hands over. The request-time state is shared: trending scores, the fresh
    uploads of each creator.
    """

    STAGES = ("user history", "personal candidates", "trending + subscriptions", "features",
              "ranker", "re-rank")

    def __init__(self, context, catalogue, ranker, rerank, rules, store, funnel, k=10):
        self.ctx, self.catalogue, self.ranker, self.store = context, catalogue, ranker, store
        self.rerank, self.rules, self.funnel, self.k = rerank, rules, funnel, k
        h = context.history
        self.uploaded = catalogue.upload_day < h.cut
        self.trending = trending_score(h)                       # refreshed every 10 minutes
        fresh = np.flatnonzero(self.uploaded
                               & (catalogue.upload_day >= h.cut - SUBSCRIPTION_DAYS))
        self.fresh_uploads = [fresh[catalogue.creator[fresh] == c]
                              for c in range(catalogue.subscribed.shape[1])]
        self.index = ItemIndex(context.item_vectors)

    def nightly(self, user_id, allowed):
        """The nightly candidates of one user: one range scan of the primary key."""
        rows = self.store.lookup("candidates", ["video_id"], user_id=int(user_id))
        videos = np.array([v for (v,) in rows], dtype=np.int64)
        return videos[allowed[videos]], len(videos)

    def on_the_fly(self, user_id, allowed):
        """The chapter's three personal generators, for one user, at request time."""
        ctx, cat, n = self.ctx, self.catalogue, self.funnel
        one = allowed[None]
        scores = (ctx.item_vectors @ ctx.user_vectors[user_id])[None]
        wals = top_k_mask(scores, n["WALS"], one)
        near = self.index.neighbours(ctx.history.last_watched[user_id],
                                     n["item neighbours"] + 1)
        content = content_score(ctx.genre_share[[user_id]],
                                cat.user_language[[user_id]], cat, ctx.history)
        found = wals | near & one | top_k_mask(content, n["content"], one)
        return np.flatnonzero(found[0]), int(allowed.sum())

    def serve(self, user_id, retrieve):
        """One feed request: the top-k list, ms per stage, the funnel's sizes."""
        ctx, cat = self.ctx, self.catalogue
        ms, sizes, clock = {}, {}, [time.perf_counter()]

        def lap(stage):
            clock.append(time.perf_counter())
            ms[stage] = (clock[-1] - clock[-2]) * 1000

        allowed = self.uploaded.copy()
        allowed[ctx.history.watched[user_id].indices] = False
        lap("user history")
        personal, examined = retrieve(user_id, allowed)
        sizes["videos examined for personal candidates"] = examined
        sizes["personal candidates"] = len(personal)
        lap("personal candidates")
        trending = np.flatnonzero(top_k_mask(
            self.trending[None], self.funnel["trending"], allowed[None])[0])
        followed = np.concatenate([np.empty(0, int), *(
            self.fresh_uploads[c] for c in np.flatnonzero(cat.subscribed[user_id]))])
        shared = np.union1d(trending, followed[allowed[followed]])
        sizes["trending + subscriptions"] = len(shared)
        lap("trending + subscriptions")
        videos = np.union1d(personal, shared)
        sizes["ranked (the union)"] = len(videos)
        features = pair_features(ctx, cat, np.full(len(videos), user_id), videos)
        lap("features")
        scores = self.ranker.predict_proba(features)[:, 1][None]
        lap("ranker")
        scores = self.rerank(scores, cat, ctx.history, users=[user_id], videos=videos,
                             **self.rules)[0]
        sizes["after the language filter"] = int(np.isfinite(scores).sum())
        best = top_k(scores, self.k)  # ties: the lower video id, as offline
        top = [int(v) for v in videos[best][np.isfinite(scores[best])]]
        sizes["served"] = len(top)
        lap("re-rank")
        return top, ms, sizes

    def replay(self, users, paths: dict):
        """Serve every user through every path (interleaved), one thread, as one worker.

        ``paths`` maps a name to a retrieval method (``self.nightly``, ``self.on_the_fly``).
        Returns per path: the lists served (user -> list), a frame of milliseconds per stage
        (one row per request) and the mean funnel sizes.
        """
        runs = {path: [] for path in paths}
        with threadpool_limits(limits=1), faiss_threads(1):
            for user in np.asarray(users).tolist():
                for path, retrieve in paths.items():  # interleaved: both see the same machine
                    runs[path].append((user, *self.serve(user, retrieve)))
        lists = {path: {u: top for u, top, _, _ in r} for path, r in runs.items()}
        stage_ms = {path: pd.DataFrame([ms for _, _, ms, _ in r]) for path, r in runs.items()}
        sizes = pd.DataFrame({path: pd.DataFrame([s for *_, s in r]).mean()
                              for path, r in runs.items()})
        return lists, stage_ms, sizes


def latency_table(stage_ms: dict) -> tuple[pd.DataFrame, dict]:
    """Median and 95th-percentile ms per stage and path, and each request's total per path."""
    totals = {path: frame.sum(axis=1) for path, frame in stage_ms.items()}
    table = pd.concat({path: pd.concat([frame, totals[path].rename("whole request")], axis=1)
                       .quantile([0.5, 0.95]).T.set_axis(["p50 ms", "p95 ms"], axis=1)
                       for path, frame in stage_ms.items()}, axis=1)
    return table, totals


def latency_numbers(latency, stage_ms: dict) -> dict:
    """The numbers the serving paragraph quotes from :func:`latency_table`'s table, for glue:
    ``serve_{path}_{p50_ms, p95_ms, retrieval_ms}`` for the two paths (``precomputed``,
    ``on_the_fly``, in the order of ``stage_ms``) and ``serve_ranker_share`` (the median
    share of a precomputed request spent in the ranker)."""
    numbers = {f"serve_{key}_{what}": latency.loc[stage, (path, q)]
               for key, path in zip(("precomputed", "on_the_fly"), stage_ms)
               for what, q, stage in (("p50_ms", "p50 ms", "whole request"),
                                      ("p95_ms", "p95 ms", "whole request"),
                                      ("retrieval_ms", "p50 ms", "personal candidates"))}
    first = next(iter(stage_ms.values()))
    return {**numbers, "serve_ranker_share": (first["ranker"] / first.sum(axis=1)).median()}


def scan_timings(user_vector, seeds, catalogues: dict, n_wals, n_neighbours, repeats=10):
    """Median ms of the two brute-force retrievals, on one thread, per catalogue.

    ``catalogues`` maps a name to (item vectors, :class:`ItemIndex` over them): the WALS
    dot products with a top ``n_wals``, and the flat search of the unit ``seeds`` vectors.
    """
    out = {}
    with threadpool_limits(limits=1), faiss_threads(1):
        for name, (vectors, index) in catalogues.items():
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                np.argpartition(-(vectors @ user_vector), n_wals)
                index.index.search(seeds, n_neighbours)
                times.append((time.perf_counter() - start) * 1000)
            out[name] = {"videos": len(vectors), "median ms": float(np.median(times))}
    return pd.DataFrame(out).T


# --------------------------------------------------------------------------- monitoring


def trend_numbers(trend: dict, live, is_short, seed) -> tuple[dict, pd.DataFrame]:
    """The drift scenario in numbers: what the monitoring section quotes, and the stream's size.

    ``trend`` is the ``new_genre`` trend given to :func:`mlsd.datasets.video_recommendation.stream`
    (``day``, ``uploads_per_day``, ``fan_share``, ``fan_taste``), ``live`` the stream it returned
    and ``is_short`` a boolean per video id of the live catalogue. A user's favourite genre sits,
    on average, at the largest of their genre tastes; that expected maximum is estimated from
    100,000 users' tastes drawn with ``seed``. Returns the numbers, named ``monitor_...`` for
    glue, and a one-column table (days, impressions, watches, uploads, shorts).
    """
    shorts, uploads = int(np.sum(is_short)), len(live.videos)
    other, new = (uploads - shorts) / live.n_days, trend["uploads_per_day"]
    taste_sd = vr.KNOBS["genre_taste_sd"]
    tastes = np.random.default_rng(seed).normal(0, taste_sd, (100_000, len(vr.GENRES)))
    numbers = {
        "monitor_live_days": live.n_days, "monitor_drift_day": trend["day"],
        "monitor_other_uploads": other, "monitor_shorts_upload_share": new / (new + other),
        "monitor_taste_sd": taste_sd, "monitor_n_genres": len(vr.GENRES),
        "monitor_favourite_taste": tastes.max(axis=1).mean(),
        **{f"monitor_{key}": trend[key] for key in ("uploads_per_day", "fan_share", "fan_taste")},
    }
    stream = pd.Series({"live days": live.n_days, "impressions": len(live.impressions),
                        "watches": live.impressions["watched"].sum(), "videos uploaded": uploads,
                        "of which shorts": shorts}, name="stream").to_frame()
    return numbers, stream


def genre_monitor(watch_genre: pd.Series, days, known, window=7) -> pd.DataFrame:
    """Per day: PSI of the genre mix of the day's watches against the ``window`` days before
    it, and the share of the day's watches on a genre not in ``known``.

    ``watch_genre`` holds one genre name per watch, indexed by the day of the watch.
    """
    day_of = watch_genre.index.to_numpy()
    psi = {day: psi_categorical(watch_genre[(day_of >= day - window) & (day_of < day)].tolist(),
                                watch_genre[day_of == day].tolist()) for day in days}
    unseen = (~watch_genre.isin(set(known))).groupby(level=0).mean()
    return pd.DataFrame({"genre PSI": psi}).assign(**{"unseen-genre share": unseen})


def alarm_numbers(monitor, alarm, watch_genre, short_days, live_start, drift_day,
                  psi_eps) -> dict:
    """The numbers the drift section quotes, named ``monitor_...`` for glue.

    ``monitor`` is :func:`genre_monitor`'s table from day 7, ``alarm`` the result of
    :func:`mlsd.evaluation.drift.evaluate_alarms` on the live days (starting ``live_start``),
    ``short_days`` the day of every watch of a short, ``psi_eps`` the PSI's floor.
    """
    from IPython.display import Markdown

    alarm_day = drift_day + alarm["delay"]
    psi = monitor.loc[alarm_day, "genre PSI"]
    share = (watch_genre[watch_genre.index == alarm_day] == "shorts").mean()
    n_false, last = alarm["false_alarms"], monitor.index[-1]
    return {
        "monitor_null_days": live_start - monitor.index[0],
        "monitor_psi_threshold": monitor.loc[:live_start - 1, "genre PSI"].max(),
        "monitor_false_alarms": Markdown(["no false alarm", "one false alarm"][n_false]
                                         if n_false < 2 else f"{n_false} false alarms"),
        "monitor_days_before_drift": drift_day - live_start, "monitor_alarm_day": alarm_day,
        "monitor_alarm_delay": Markdown(days_text(alarm["delay"])),
        "monitor_alarm_delay_days": alarm["delay"], "monitor_alarm_psi": psi,
        "monitor_first_short_watch": int(short_days.min()),
        "monitor_alarm_new_term": share * np.log(share / psi_eps) / psi,  # its share of PSI
        "monitor_watches_per_day":
            watch_genre[watch_genre.index < live_start].groupby(level=0).size().mean(),
        "monitor_last_psi": monitor.loc[last, "genre PSI"],
        "monitor_last_unseen": monitor.loc[last, "unseen-genre share"],
    }


def first_watch_days(watches, users, n_videos) -> np.ndarray:
    """len(users) x videos: the day each of ``users`` (sorted) first watched each video; inf."""
    mine = watches[np.isin(watches["user_id"], users)]
    first = np.full((len(users), n_videos), np.inf)
    np.minimum.at(first, (np.searchsorted(users, mine["user_id"]), mine["video_id"]),
                  mine["day"].to_numpy(float))
    return first


def serve_days(scores_from, days, first_watched, upload_day, p, k=10, **slices):
    """Serve precomputed scores day by day; judge each day's lists against the truth ``p``.

    ``scores_from`` maps the first day a set of scores is served to the scores (users x
    videos). Each day the lists never hold a video the user watched before it, nor one not yet
    uploaded. ``slices`` maps a name to (a users mask, a videos mask): the share of those
    videos in those users' lists is reported per day under that name. Returns the per-day
    table (``expected relevance@k`` and the slices) and, per user, the expected relevance of
    every served day (days x users).
    """
    rows, relevance = {}, []
    for day in days:
        scores = scores_from[max(start for start in scores_from if start <= day)]
        scores = np.where((first_watched < day) | (upload_day >= day)[None, :], -np.inf, scores)
        top = top_k(scores, k)
        shown = np.isfinite(np.take_along_axis(scores, top, axis=1))  # an empty slot adds 0
        relevance.append((np.take_along_axis(p, top, axis=1) * shown).sum(axis=1) / k)
        rows[day] = {f"expected relevance@{k}": float(relevance[-1].mean()),
                     **{name: float((videos[top] & shown)[users].mean())
                        for name, (users, videos) in slices.items()}}
    return pd.DataFrame(rows).T, np.array(relevance)


def cadence_scores(serve, rankers: dict, refits) -> dict:
    """The scores three retraining cadences serve: {cadence: {first day served: scores}}.

    ``serve(ranker, cut)`` gives the final scores at the cut-off ``cut`` with ``ranker``;
    ``rankers[cut]`` is the ranker trained for the refit at ``cut``. "frozen" serves the
    first refit's scores throughout; "weekly refresh, ranker kept" rebuilds them at every
    refit with the first ranker; "weekly retrain" with each refit's own ranker.
    """
    start, later = refits[0], refits[1:]
    first = {start: serve(rankers[start], start)}
    return {"frozen": first,
            "weekly refresh, ranker kept": {**first, **{c: serve(rankers[start], c)
                                                          for c in later}},
            "weekly retrain": {**first, **{c: serve(rankers[c], c) for c in later}}}


def cadence_table(daily: dict, refits, trainings: dict, k=10) -> pd.DataFrame:
    """One row per cadence of :func:`serve_days` tables: the expected relevance of the week
    after each refit, the share of shorts in fans' lists in the last week, ranker trainings."""
    weeks = {f"days {cut}-{cut + 6}": slice(cut, cut + 6) for cut in refits}  # .loc: both ends
    last = slice(refits[-1], refits[-1] + 6)
    return pd.DataFrame({name: {
        **{f"expected relevance, {week}": d.loc[days, f"expected relevance@{k}"].mean()
           for week, days in weeks.items()},
        "shorts in fans' lists, last week": d.loc[last, "shorts in fans' lists"].mean(),
        "ranker trainings": trainings.get(name, 0),
    } for name, d in daily.items()}).T.astype({"ranker trainings": int})


def cadence_gain(last_week: dict, seed) -> tuple[dict, pd.Series]:
    """The retraining cadences compared over their last week, paired over the sample's users.

    ``last_week`` maps ``"frozen"``, ``"weekly refresh, ranker kept"`` and ``"weekly retrain"``
    (in that order) to one value per user: the mean expected relevance of the lists they were
    served. A user who likes any list moves every cadence, so each comparison resamples users
    together: the retrain's gain over the frozen model
    (:func:`mlsd.evaluation.experiments.paired_bootstrap`), and the share of that gain the
    cheap refresh gets (:func:`mlsd.evaluation.headline.headline_intervals`, with the frozen
    model as the baseline and the retrain as the ceiling). Returns the numbers the section
    quotes, named ``monitor_...`` for glue, and the two 95 % intervals as a Series to show.
    """
    from IPython.display import Markdown

    from mlsd.evaluation.experiments import paired_bootstrap
    from mlsd.evaluation.headline import headline_intervals

    if len(last_week) != 3:
        raise ValueError(f"last_week must hold the three cadences, got {list(last_week)}")
    frozen, refresh, retrain = (np.asarray(v, float) for v in last_week.values())
    low, high = paired_bootstrap(np.mean, retrain - frozen, seed=seed)
    share_low, share_high = headline_intervals(frozen, refresh, retrain, seed=seed)["lift_share"]
    verdict = {True: "a detectable difference", False: "no detectable difference"}
    numbers = {f"monitor_{name}": value for name, value in {
        "retrain_gain": (retrain - frozen).mean(), "retrain_low": low, "retrain_high": high,
        "refresh_share": lift_share(frozen.mean(), refresh.mean(), retrain.mean()),
        "share_low": share_low, "share_high": share_high,
        "retrain_verdict": Markdown(verdict[low > 0]),
        "refresh_verdict": Markdown(verdict[share_low > 0]),
        "gap_verdict": Markdown(verdict[share_high < 1])}.items()}
    intervals = pd.Series({"retrain - frozen, 95% interval": (round(low, 4), round(high, 4)),
                           "refresh's share, 95% interval": (round(share_low, 3),
                                                             round(share_high, 3))})
    return numbers, intervals


def days_text(n: int) -> str:
    """A number of days as prose: "the same day", "one day", "3 days"."""
    n = check_int("n", n, minimum=0)
    return "the same day" if n == 0 else "one day" if n == 1 else f"{n} days"


# --------------------------------------------------------------------------- the feedback loop


def gini(counts) -> np.ndarray:
    """Gini coefficient of each row of non-negative counts: 0 = even, near 1 = all on one."""
    c = np.sort(counts, axis=1)
    n = c.shape[1]
    return (n + 1 - 2 * (np.cumsum(c, axis=1) / c.sum(axis=1, keepdims=True)).sum(axis=1)) / n


def simulate_feed(score, epsilon=0.0, *, runs, days, n_start, new_per_day, slots, views,
                  history, quality_beta=(2, 18), seed=0) -> pd.DataFrame:
    """A non-personalised feed that shows its top videos and learns from what it showed.

    Each of ``runs`` independent catalogues starts with ``n_start`` videos of hidden quality
    ``q ~ Beta(quality_beta)`` (the chance a shown video is watched), each with ``history``
    impressions; ``new_per_day`` videos arrive daily with none. Every day the feed ranks the
    live videos by ``score(shown, watched)`` (runs x videos arrays), shows its ``slots`` best
    ``views`` times in all, and with probability ``epsilon`` shows a random live video instead.
    Returns per-day means over the runs: the quality shown, the best possible (the top
    ``slots`` qualities), the share of new videos ever shown and the Gini of impressions. The
    qualities are drawn from ``seed`` first, so every policy meets the same videos.
    """
    rng = np.random.default_rng(seed)
    n = n_start + new_per_day * days                    # videos in order of arrival
    quality = rng.beta(*quality_beta, (runs, n))
    arrival = np.r_[np.zeros(n_start, int), np.repeat(np.arange(1, days + 1), new_per_day)]
    shown, watched = np.zeros((runs, n)), np.zeros((runs, n))
    shown[:, :n_start] = history
    watched[:, :n_start] = rng.binomial(history, quality[:, :n_start])
    run = np.arange(runs)[:, None]
    out = []
    for day in range(1, days + 1):
        live_n = int((arrival <= day).sum())
        ranked = score(shown[:, :live_n], watched[:, :live_n])
        top = np.argsort(-ranked, axis=1, kind="stable")[:, :slots]
        item = np.take_along_axis(top, rng.integers(0, slots, (runs, views)), axis=1)
        if epsilon:
            explore = rng.random((runs, views)) < epsilon
            item = np.where(explore, rng.integers(0, live_n, (runs, views)), item)
        q = quality[run, item]
        flat = (run * n + item).ravel()
        shown += np.bincount(flat, minlength=runs * n).reshape(runs, n)
        hits = (rng.random((runs, views)) < q).ravel()
        watched += np.bincount(flat, weights=hits, minlength=runs * n).reshape(runs, n)
        new_shown = (shown[:, n_start:live_n] > 0).mean() if live_n > n_start else 0.0
        out.append({"quality shown": q.mean(),
                    "best possible": np.sort(quality[:, :live_n], axis=1)[:, -slots:].mean(),
                    "new videos ever shown": new_shown,
                    "Gini of impressions": gini(shown[:, :live_n]).mean()})
    return pd.DataFrame(out, index=pd.RangeIndex(1, days + 1, name="day"))


def loop_summary(loops: dict, last_days: int) -> pd.DataFrame:
    """One row per policy of :func:`simulate_feed` runs: quality shown early, late and overall,
    the share of new videos ever shown and the concentration of impressions."""
    return pd.DataFrame({policy: {
        "quality shown, first week": d["quality shown"].iloc[:7].mean(),
        f"quality shown, last {last_days} days": d["quality shown"].iloc[-last_days:].mean(),
        "quality shown, whole quarter": d["quality shown"].mean(),
        "new videos ever shown": d["new videos ever shown"].iloc[-1],
        "Gini of impressions, last day": d["Gini of impressions"].iloc[-1],
    } for policy, d in loops.items()}).T


def loop_numbers(loop_table, loops, keys, sim: dict, epsilon, last_days) -> dict:
    """The numbers the feedback-loop paragraphs quote, named ``monitor_...`` for glue: the
    settings (``sim`` as given to :func:`simulate_feed`, ``epsilon``, ``last_days``), each
    policy's row of :func:`loop_summary` as ``monitor_{key}_{figure}`` (``keys`` name the
    policies in the table's order) and the best possible quality on the last day."""
    figures = ("first_week", "last", "quarter", "new_shown", "gini")
    numbers = {f"monitor_{key}_{figure}": loop_table.loc[policy, column]
               for policy, key in zip(loop_table.index, keys)
               for figure, column in zip(figures, loop_table.columns)}
    a, b = sim.get("quality_beta", (2, 18))
    settings = {f"monitor_sim_{key}": value for key, value in sim.items()
                if key != "quality_beta"}
    return {**numbers, **settings, "monitor_sim_epsilon": epsilon,
            "monitor_sim_last_days": last_days, "monitor_sim_quality_mean": a / (a + b),
            "monitor_sim_new": sim["new_per_day"] * sim["days"],
            "monitor_best_last": next(iter(loops.values()))["best possible"].iloc[-1]}


# --------------------------------------------------------------------------- figures


def plot_log(log):
    """Three panels: impressions per user, watches per video (log-log), watch rate by source."""
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(11, 3.3))
    left.hist(log.groupby("user_id").size(), bins=40, color=ROLE_COLORS["model"])
    left.set(xlabel="impressions per user", ylabel="users", title="Uneven activity")
    watches = log.loc[log["watched"] == 1, "video_id"].value_counts().to_numpy()
    per_video = np.sort(watches)[::-1]
    middle.loglog(np.arange(1, len(per_video) + 1), per_video, color=ROLE_COLORS["model"])
    middle.set(xlabel="video rank", ylabel="watches", title="A long tail of attention")
    by_source = log.groupby("source")["watched"].mean().sort_values()
    right.barh(by_source.index, by_source.to_numpy(), color=ROLE_COLORS["baseline"])
    right.set(xlabel="watch rate", title="Exposure decides the labels")
    return fig


def plot_offline(offline, roles: dict):
    """Logged MAP@10 and expected relevance@10 per system (rows of ``offline``), side by side."""
    colors = [ROLE_COLORS[roles.get(name, "model")] for name in offline.index]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    left.barh(offline.index, offline["MAP@10"], color=colors)
    left.set(xlabel="MAP@10, logged test watches", title="What the log says")
    right.barh(offline.index, offline["expected relevance@10"], color=colors)
    right.set(xlabel="expected relevance@10 (mean true p)", title="What users would get")
    left.invert_yaxis()
    return fig


def plot_learning_curve(learning):
    """Lift shares (logged and against the truth) against impressions per user."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    x = learning["impressions per user before the cut-off"]
    ax.plot(x, learning["MAP@10 lift share"], marker="o", color=ROLE_COLORS["model"],
            label="MAP@10, logged")
    ax.plot(x, learning["expected relevance@10 lift share"], marker="s",
            color=ROLE_COLORS["oracle"], label="expected relevance, truth")
    ax.set(xlabel="impressions per user before the cut-off", ylim=(0, None),
           ylabel="share of achievable lift", title="More history, more of the lift")
    ax.legend()
    return fig


def plot_serving(stage_ms: dict, totals: dict, n_videos, catalogue_size, per_video_ns,
                 budget_ms):
    """Left: median ms per stage and path. Right: a request's median ms as the catalogue
    grows (the on-the-fly path extrapolated at ``per_video_ns``), against the budget."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    colors = [OKABE_ITO[c] for c in ("sky", "vermillion", "orange", "green", "blue", "purple")]
    paths = list(stage_ms)
    for row, path in enumerate(paths):
        medians = stage_ms[path].median()
        starts = np.r_[0, np.cumsum(medians.to_numpy())[:-1]]
        for stage, start, color in zip(medians.index, starts, colors):
            left.barh(row, medians[stage], left=start, height=0.6, color=color,
                      label=stage if row == 0 else None)
    left.set(yticks=range(len(paths)), yticklabels=paths, xlabel="median ms per request",
             title="Per stage, this catalogue")
    left.invert_yaxis()
    left.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    sizes = np.logspace(np.log10(n_videos), np.log10(catalogue_size), 30)
    precomputed, on_the_fly = (totals[path].median() for path in paths)
    right.plot(sizes, np.full(len(sizes), precomputed), color=ROLE_COLORS["model"],
               label=paths[0].split(" (")[0])
    right.plot(sizes, on_the_fly + per_video_ns * (sizes - n_videos) / 1e6,
               color=ROLE_COLORS["alert"], label=paths[1])
    right.axhline(budget_ms, color="#555555", linestyle="--", linewidth=1,
                  label=f"{budget_ms} ms budget")
    right.set(xscale="log", yscale="log", xlabel="videos in the catalogue",
              ylabel="ms per request", title="As the catalogue grows")
    right.minorticks_off()
    right.legend(fontsize=8)
    return fig


def plot_monitor(monitor, threshold, alarm_day, live_start, drift_day):
    """The genre PSI against its threshold (top) and the unseen-genre share (bottom)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.2), sharex=True)
    top.semilogy(monitor.index, monitor["genre PSI"], color=ROLE_COLORS["model"], marker=".")
    top.axhline(threshold, color=ROLE_COLORS["alert"], linestyle="--", linewidth=1.2,
                label="threshold")
    top.plot([alarm_day], [monitor.loc[alarm_day, "genre PSI"]], "o", markersize=9,
             color=ROLE_COLORS["alert"], fillstyle="none", label=f"alarm (day {alarm_day})")
    bottom.plot(monitor.index, monitor["unseen-genre share"], color=ROLE_COLORS["model"],
                marker=".")
    for ax in (top, bottom):
        ax.axvspan(monitor.index[0], live_start - 0.5, color=ROLE_COLORS["baseline"],
                   alpha=0.15, linewidth=0)
        ax.axvline(drift_day, color="#666666", linestyle=":", linewidth=1.2)
    top.set(ylabel="genre PSI vs previous week",
            title="Drift-free history (shaded), then the live days")
    bottom.set(xlabel="day", ylabel="watches on an\nunseen genre")
    top.legend(loc="upper left")
    return fig


def plot_cadences(daily: dict, drift_day, refits, last_day, reference="oracle (true p)"):
    """Expected relevance per day (top) and shorts in fans' lists (bottom), per cadence."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.6), sharex=True)
    colors = [ROLE_COLORS["baseline"], OKABE_ITO["orange"], ROLE_COLORS["model"]]
    for (name, d), color in zip(((n, d) for n, d in daily.items() if n != reference), colors):
        top.plot(d.index, d["expected relevance@10"], color=color, label=name,
                 drawstyle="steps-post")
        bottom.plot(d.index, d["shorts in fans' lists"], color=color, drawstyle="steps-post")
    bottom.plot(daily[reference].index, daily[reference]["shorts in fans' lists"],
                color=ROLE_COLORS["oracle"], linestyle="--", label=reference)
    for ax in (top, bottom):
        ax.axvline(drift_day, color="#666666", linestyle=":", linewidth=1.2)
        for cut in refits[1:]:
            ax.axvline(cut, color=ROLE_COLORS["baseline"], alpha=0.35, linewidth=3)
    top.set(ylabel="expected relevance@10", title="Who recovers, and when")
    bottom.set(xlabel="day", ylabel="shorts in fans' top 10", xticks=[*refits, last_day])
    top.legend(loc="upper left")
    bottom.legend(loc="upper left")
    return fig


def plot_loops(loops: dict):
    """Quality shown (7-day mean), new videos ever shown and the Gini of impressions."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    colors = [ROLE_COLORS["baseline"], OKABE_ITO["orange"], ROLE_COLORS["model"]]
    for (policy, d), color in zip(loops.items(), colors):
        axes[0].plot(d.index, d["quality shown"].rolling(7, min_periods=1).mean(),
                     color=color, label=policy)
        axes[1].plot(d.index, d["new videos ever shown"], color=color)
        axes[2].plot(d.index, d["Gini of impressions"], color=color)
    axes[0].plot(d.index, d["best possible"], color=ROLE_COLORS["oracle"], linestyle="--",
                 label="best possible")
    axes[0].set(xlabel="day", ylabel="mean true quality shown\n(7-day mean)",
                title="What users get")
    axes[1].set(xlabel="day", ylabel="share of new videos", ylim=(-0.03, 1.03),
                title="New videos ever shown")
    axes[2].set(xlabel="day", ylabel="Gini of impressions", ylim=(0, 1), title="Concentration")
    fig.legend(loc="outside lower center", ncol=4)
    return fig
