"""The harmful content world (Chapter 8): is this post violent, nude, hateful, spam or self-harm?

A platform receives posts: a few words of text, often an image, an author with a history, and
the first hour of views and user reports. Each post is drawn from one generative story
(every post has its own author: a sample of a large platform's stream rarely holds two posts by
one author, and this keeps the exact posterior per post a true ceiling):

- the author's hidden **type** T (normal, spammer, troll, edgy, at_risk); the account's age in
  whole days ~ Geometric (the floor of an exponential with the type's mean); past violations
  ~ Poisson(type's rate), of which only half were caught and are shown;
- a hidden **scenario** S ~ P(S | T) among 15: benign; benign **look-alikes** (news with violent
  words and a violent-looking image, art with a nudity-like image, support posts with self-harm
  words); benign memes; the five harms; two multi-label ones (a threat is violence and hate,
  porn spam is nudity and spam); and hateful **memes**. The labels are a function of S;
- a hidden **severity** V in 1..3 that scales every signal (words, image, reports);
- **text**: every word of the vocabulary is present or not (independent Bernoulli draws whose
  rates depend on T, S and V); each harm word has a canonical spelling ("kill") and an
  obfuscated twin ("k1ll"), and bad actors use the twin more;
- **image**: a 16-d embedding ~ N(mean(S, V), I), missing completely at random for 15 % of posts;
- a hidden **audience** A (quiet, typical, brigade): first-hour views ~ Poisson(mean_A), reports
  ~ Poisson(views x r(S, V) + brigade_A): a brigade reports a post whatever it is;
- **memes**: a caption kind c (in the text) and an image template m (in the embedding); a meme is
  hateful exactly when c == m, benign when c != m, so neither modality alone says which;
- **crowd raters** label every post; they miss a true positive with a probability that falls
  with severity (30 % at severity 1, 5 % at 3).

Observed: ``posts`` (text, author history, first-hour reactions), ``images`` (embeddings of the
posts that have one) and ``labels`` (the crowd raters'). Hidden: ``truth`` (type, scenario,
severity, audience, true past violations and the true labels).

Every latent is discrete, so :func:`posterior` enumerates (T, S, V, A) exactly: P(label | all
that is observable) per post, the oracle of the chapter's headline. The embeddings are stored
rounded to 3 decimals, far below their unit noise, and the posterior reads the rounded values:
it is exact up to that rounding. :func:`review` (the expert team's verdict),
:func:`later_reactions`, :func:`appeals` and :func:`new_posts` (later days, with drift) serve
the chapter's later sections.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln, logsumexp

from mlsd._checks import check_finite, check_int
from mlsd.book.seeding import make_rng
from mlsd.datasets._hashing import splitmix64
from mlsd.datasets.world import World

DEFAULT_SEED = 0
NAME = "harmful_content"

LABELS = ("violence", "nudity", "hate", "spam", "self_harm")
TYPES = ("normal", "spammer", "troll", "edgy", "at_risk")
AUDIENCES = ("quiet", "typical", "brigade")
EMB_DIM = 16

#: scenario -> its labels (violence, nudity, hate, spam, self_harm)
SCENARIOS: dict[str, tuple[int, ...]] = {
    "benign": (0, 0, 0, 0, 0),
    "news": (0, 0, 0, 0, 0),           # benign look-alike: violent words, violent-looking image
    "art": (0, 0, 0, 0, 0),            # benign look-alike: nudity-like image
    "support": (0, 0, 0, 0, 0),        # benign look-alike: self-harm words (recovery, help)
    "meme_ok_01": (0, 0, 0, 0, 0),     # benign meme: caption 0, image 1
    "meme_ok_10": (0, 0, 0, 0, 0),     # benign meme: caption 1, image 0
    "violence": (1, 0, 0, 0, 0),
    "nudity": (0, 1, 0, 0, 0),
    "hate": (0, 0, 1, 0, 0),
    "spam": (0, 0, 0, 1, 0),
    "self_harm": (0, 0, 0, 0, 1),
    "threat": (1, 0, 1, 0, 0),         # violent hate
    "porn_spam": (0, 1, 0, 1, 0),
    "meme_hate_00": (0, 0, 1, 0, 0),   # hateful meme: caption 0 with image 0
    "meme_hate_11": (0, 0, 1, 0, 0),   # hateful meme: caption 1 with image 1
}

# --------------------------------------------------------------------------- vocabulary

#: the canonical spelling of each class's harm words ("slur1".."slur8" stand in for slurs and
#: dehumanising words, which the book does not print)
HARM_WORDS: dict[str, tuple[str, ...]] = {
    "violence": ("kill", "shoot", "stab", "attack", "beat", "bomb", "burn", "strangle"),
    "nudity": ("nude", "naked", "nsfw", "explicit", "xxx", "topless", "lewd", "strip"),
    "hate": tuple(f"slur{i}" for i in range(1, 9)),
    "spam": ("free", "winner", "click", "crypto", "giveaway", "promo", "dm", "cash"),
    "self_harm": ("hopeless", "worthless", "goodbye", "cutting", "pills", "endit", "numb", "burden"),
}
#: the obfuscated twin of each harm word, in the same order
OBFUSCATED: dict[str, tuple[str, ...]] = {
    "violence": ("k1ll", "sh00t", "st4b", "att4ck", "b3at", "b0mb", "burnn", "str4ngle"),
    "nudity": ("nud3", "n4ked", "n5fw", "expl1cit", "x_x_x", "t0pless", "l3wd", "str1p"),
    "hate": tuple(f"s1ur{i}" for i in range(1, 9)),
    "spam": ("fr33", "w1nner", "cl1ck", "crypt0", "g1veaway", "pr0mo", "d_m", "ca5h"),
    "self_harm": ("h0peless", "w0rthless", "g00dbye", "cutt1ng", "p1lls", "end1t", "numbb", "burd3n"),
}
#: a third spelling of each harm word that no stored post uses (``new_posts(drift="obfuscation")``)
NEW_SPELLINGS: dict[str, tuple[str, ...]] = {
    "violence": ("kiill", "sho0t", "staab", "attaack", "beeat", "boomb", "buurn", "straangle"),
    "nudity": ("nuude", "naaked", "nsfww", "explicitt", "xxxx", "toppless", "leewd", "stripp"),
    "hate": tuple(f"sluur{i}" for i in range(1, 9)),
    "spam": ("freee", "winnner", "cliick", "cryptoo", "giveawaay", "promoo", "dmm", "caash"),
    "self_harm": ("hopelesss", "worthlesss", "goodbyee", "cuttiing", "pillls", "enditt", "nuumb", "burdenn"),
}
#: the look-alikes' topic words
TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "news": ("police", "breaking", "court", "war", "protest", "journalist", "update", "official",
             "investigation", "report"),
    "art": ("painting", "gallery", "sculpture", "museum", "portrait", "canvas", "exhibit", "figure",
            "artist", "classical"),
    "support": ("helpline", "recovery", "therapy", "counselor", "hope", "healing", "talk", "support",
                "survivor", "listen"),
}
#: the two kinds of meme caption
CAPTION_WORDS: dict[int, tuple[str, ...]] = {
    0: ("pov", "nobody", "literally", "mood", "relatable", "vibes"),
    1: ("when", "them", "those", "people", "always", "typical"),
}
NEUTRAL_WORDS: tuple[str, ...] = tuple("""
day love food coffee weekend morning evening sunny rain beach park dinner lunch breakfast pizza
pasta salad cake cookie tea friends family dog cat puppy kitten birthday music song piano
dance movie film book reading school homework exam study office meeting project team game
football basketball tennis walk hike bike travel trip train flight airport hotel city town home
house kitchen bedroom sofa window flowers tree sunset sunrise mountain river lake ocean snow summer
winter spring autumn holiday vacation photo smile happy tired sleepy monday friday
sunday tonight tomorrow yesterday week month year baby kids mom dad sister brother grandma cousin
wedding concert festival market shopping dress shoes jacket recipe soup bread cheese chocolate
juice garden plants cooking baking podcast playlist laptop phone camera car bus
street library gym yoga workout pancakes burger tacos sushi noodles rice fruit apple
orange banana picnic balcony neighbor puzzle knitting fishing camping weather cozy
""".split())
#: the words of the new harm of ``new_posts(drift="new_harm")``
SCAM_WORDS = ("invest", "returns", "guaranteed", "wallet", "recover", "urgent", "verify", "refund")

#: every word a stored post can hold, in a fixed order: canonical harm words, their twins,
#: topic words, caption words, neutral words
VOCABULARY: tuple[str, ...] = (
    tuple(w for k in LABELS for w in HARM_WORDS[k]) + tuple(w for k in LABELS for w in OBFUSCATED[k])
    + tuple(w for t in TOPIC_WORDS.values() for w in t) + tuple(w for c in CAPTION_WORDS.values() for w in c)
    + NEUTRAL_WORDS
)

KNOBS = {
    "n_posts": 30_000,
    "days": 60,
    "type_prior": dict(normal=0.85, spammer=0.03, troll=0.04, edgy=0.06, at_risk=0.02),
    # P(S | T): the rest of each row goes to "benign"
    "scenario_given_type": {
        "normal": dict(news=0.03, art=0.02, support=0.006, meme_ok_01=0.015, meme_ok_10=0.015,
                       violence=0.004, nudity=0.006, hate=0.002, spam=0.006, self_harm=0.0015,
                       meme_hate_00=0.0005, meme_hate_11=0.0005),
        "spammer": dict(spam=0.60, porn_spam=0.15),
        "troll": dict(hate=0.22, threat=0.08, violence=0.05, meme_hate_00=0.05, meme_hate_11=0.05,
                      meme_ok_01=0.03, meme_ok_10=0.03),
        "edgy": dict(violence=0.12, nudity=0.12, hate=0.02, news=0.10, art=0.10,
                     meme_ok_01=0.03, meme_ok_10=0.03),
        "at_risk": dict(self_harm=0.15, support=0.20),
    },
    "severity_prior": (0.5, 0.3, 0.2),        # V = 1, 2, 3
    "severity_scale": (0.5, 1.0, 1.6),        # multiplies harm-word rates, image offsets, report rates
    "obfuscation": dict(normal=0.1, spammer=0.5, troll=0.5, edgy=0.3, at_risk=0.4),
    "words_per_class": 8,                     # canonical spellings per class (each has one twin)
    "harm_word_rate": 0.10,                   # per harm word, harmful post of that class, severity 2
    "lookalike_word_rate": 0.06,              # news -> violence words, support -> self-harm words
    "background_harm_rate": dict(normal=0.004, spammer=0.004, troll=0.012, edgy=0.015, at_risk=0.006),
    "topic_words": 10,                        # news / art / support words each
    "topic_rate": 0.15,
    "topic_background": 0.01,
    "caption_words": 6,                       # per meme caption kind
    "caption_rate": 0.30,
    "caption_background": 0.005,
    "n_neutral": 150,
    "neutral_rate": 0.04,
    "image_missing": 0.15,
    "image_offset": dict(violence=1.5, nudity=1.6, hate=1.0, spam=1.5, self_harm=1.3),
    "lookalike_image": dict(news=(0.8, 1.0), art=(1.1, 1.0)),   # (harm-direction share, own direction)
    "meme_image": 2.0,
    "account_age_mean": dict(normal=700.0, spammer=25.0, troll=120.0, edgy=400.0, at_risk=500.0),
    "violations_rate": dict(normal=0.05, spammer=3.0, troll=2.0, edgy=0.6, at_risk=0.2),
    "violations_caught": 0.5,
    "audience_prior": (0.35, 0.60, 0.05),     # quiet, typical, brigade
    "views_mean": (10.0, 60.0, 200.0),
    "brigade_reports": (0.0, 0.0, 6.0),       # extra first-hour reports regardless of content
    "report_rate_benign": 0.0004,
    "report_rate_lookalike": 0.0015,
    "report_rate": dict(violence=0.010, nudity=0.010, hate=0.015, spam=0.004, self_harm=0.005),
    "rater_miss": (0.30, 0.15, 0.05),         # by severity
    "later_views_share": 0.5,                 # each later hour brings this share of the first hour's mean views
    "appeal_benign": 0.6,                     # P(appeal | removed, truly benign)
    "appeal_harmful": 0.1,                    # P(appeal | removed, truly harmful)
    # new_posts(drift="new_harm"): scam posts by a new author type, "scammer"
    "new_harm": dict(word_rate=0.25, spam_word_rate=0.03, image_offset=1.5, report_rate=0.004,
                     account_age_mean=60.0, violations_rate=0.5),
}

WHY = {
    "n_posts": "about 5,000 test posts (days 50-59) and ~25 self-harm positives among them: the rare "
               "class is measurable but noisy, and the oracle and every model run in seconds",
    "days": "60 days: train on days 0-39, validate on 40-49, test on 50-59",
    "type_prior": "about 15 % of authors are not normal; with P(S | T) this gives ~7 % harmful posts "
                  "and 0.4-3 % per class",
    "scenario_given_type": "classes correlate through scenarios (threat, porn spam) and through the "
                           "author (trolls: hate and violence); look-alikes (news, art, support) "
                           "outnumber the harmful posts they resemble, as on a real platform",
    "severity_prior": "half of harmful posts are borderline (severity 1)",
    "severity_scale": "a borderline post carries half the signal of a severity-2 one in words, image "
                      "and reports: the reason even the oracle's average precision is far from 1",
    "obfuscation": "bad actors spell half their harm words as twins (k1ll), so a keyword list misses "
                   "them and a text model must learn the twins from fewer labels",
    "words_per_class": "eight harm words per class, each with one twin",
    "harm_word_rate": "16 spellings x 0.10 = 1.6 harm words in a typical harmful post; about 45 % of "
                      "borderline harmful posts carry none, so text alone cannot be enough",
    "lookalike_word_rate": "news and support posts use the harm words at 60 % of the harmful rate: "
                           "text-only precision suffers; topic words, image and author help",
    "background_harm_rate": "'kill time' in ordinary posts; edgy users and trolls use the words more "
                            "without breaking rules",
    "topic_words": "ten topic words each for news, art and support",
    "topic_rate": "a look-alike's topic words are hints, not proof",
    "topic_background": "any post may mention a topic word",
    "caption_words": "six words per meme caption kind",
    "caption_rate": "a meme's caption words are visible on most memes",
    "caption_background": "caption words appear rarely in other posts",
    "n_neutral": "150 ordinary words make the bulk of every post",
    "neutral_rate": "about six ordinary words per post",
    "image_missing": "some posts have no image: a model must cope with a missing modality",
    "image_offset": "1.0-1.6 sd along one direction per class (0.5-2.6 sd with severity): a "
                    "medium-strength image signal",
    "lookalike_image": "news and art images sit 0.8-1.1 of the way along the violence or nudity "
                       "direction, plus a direction of their own",
    "meme_image": "meme templates are clearly visible; only the pairing with the caption says hateful",
    "account_age_mean": "spammers' accounts are weeks old, normal ones years: a real but diluted prior",
    "violations_rate": "bad actors have broken rules before, most others not",
    "violations_caught": "only half the past violations were caught: the history is a diluted signal",
    "audience_prior": "5 % of posts meet a brigade that reports them whatever they are",
    "views_mean": "quiet, typical and viral first hours",
    "brigade_reports": "a brigade adds six reports on average, so 'many reports' is not 'harmful'",
    "report_rate_benign": "benign posts are rarely reported",
    "report_rate_lookalike": "look-alikes are reported four times as often as other benign posts",
    "report_rate": "a typical harmful post gets ~0.6 reports in its first hour: many harmful posts "
                   "have none yet, so proactive detection matters",
    "rater_miss": "crowd raters miss 30 % of borderline positives and 5 % of the worst: training "
                  "labels are noisy one way",
    "later_views_share": "interest fades: each later hour brings half the first hour's views",
    "appeal_benign": "most authors of a wrongly removed post appeal",
    "appeal_harmful": "a few authors of rightly removed posts appeal too",
    "new_harm": "a scam wave for the monitoring section: new words, a new image direction and few "
                "reports (victims report late)",
}

COLUMNS = {
    "posts.post_id": "post id, 0..n-1 (its row, in day order)",
    "posts.day": "day of posting, 0..59",
    "posts.text": "the post's words, space-separated, in a random order (may be empty)",
    "posts.account_age_days": "age of the author's account in whole days",
    "posts.past_violations": "the author's past violations that were caught",
    "posts.views_1h": "views in the first hour",
    "posts.reports_1h": "user reports in the first hour",
    "posts.has_image": "whether the post has an image (a row in images)",
    "images.post_id": "the post (only posts with an image)",
    "images.e0": "the image embedding, columns e0..e15 (an image encoder's output)",
    "labels.post_id": "the post",
    "labels.violence": "crowd raters' label (1 = harmful); raters miss some positives, never add one",
    "labels.nudity": "crowd raters' label",
    "labels.hate": "crowd raters' label",
    "labels.spam": "crowd raters' label",
    "labels.self_harm": "crowd raters' label",
    "truth.post_id": "hidden: the post",
    "truth.author_type": "hidden: the author's type",
    "truth.scenario": "hidden: the post's scenario (harmful, benign, look-alike or meme)",
    "truth.severity": "hidden: severity 1-3, which scales every signal",
    "truth.audience": "hidden: quiet, typical or brigade",
    "truth.true_past_violations": "hidden: all the author's past violations, caught or not",
    "truth.violence": "hidden: the true label",
    "truth.nudity": "hidden: the true label",
    "truth.hate": "hidden: the true label",
    "truth.spam": "hidden: the true label",
    "truth.self_harm": "hidden: the true label",
}

SCEN = tuple(SCENARIOS)
Y_OF = np.array([SCENARIOS[s] for s in SCEN], dtype=np.int64)    # (S, K)
HARMFUL = Y_OF.any(axis=1)
LOOKALIKES = ("news", "art", "support")
DRIFTS = ("obfuscation", "new_harm")
_K, _NT, _NS, _NV = len(LABELS), len(TYPES), len(SCEN), 3
_WORD_INDEX = {w: i for i, w in enumerate(VOCABULARY)}
_EMB = [f"e{j}" for j in range(EMB_DIM)]
_POST_COLUMNS = ("post_id", "text", "account_age_days", "past_violations", "views_1h", "reports_1h", "has_image")


def _check_vocabulary() -> None:
    k = KNOBS
    words = VOCABULARY + tuple(w for v in NEW_SPELLINGS.values() for w in v) + SCAM_WORDS
    assert len(set(words)) == len(words), "every token must be unique"
    assert all(w.isascii() and w.replace("_", "").isalnum() and w == w.lower() for w in words)
    assert all(len(HARM_WORDS[c]) == len(OBFUSCATED[c]) == len(NEW_SPELLINGS[c]) == k["words_per_class"]
               for c in LABELS)
    assert all(len(t) == k["topic_words"] for t in TOPIC_WORDS.values())
    assert all(len(c) == k["caption_words"] for c in CAPTION_WORDS.values())
    assert len(NEUTRAL_WORDS) == k["n_neutral"]


_check_vocabulary()


def _idx(words) -> list[int]:
    return [_WORD_INDEX[w] for w in words]


# --------------------------------------------------------------------------- the generative story


def scenario_matrix() -> np.ndarray:
    """P(S | T): array (types, scenarios), rows in the order of TYPES, columns of SCENARIOS."""
    p = np.zeros((_NT, _NS))
    for ti, t in enumerate(TYPES):
        for s, q in KNOBS["scenario_given_type"][t].items():
            p[ti, SCEN.index(s)] = q
        p[ti, SCEN.index("benign")] = 1 - p[ti].sum()
    return p


def _harm_use() -> np.ndarray:
    """The harmful use of each class's words (before obfuscation): array (S, V, K)."""
    sc = np.array(KNOBS["severity_scale"])
    # a hateful meme's text is harmless: its harm lies in the caption-image pairing
    text_harm = Y_OF * np.array([not s.startswith("meme") for s in SCEN])[:, None]
    return KNOBS["harm_word_rate"] * text_harm[:, None, :] * sc[None, :, None]


@lru_cache(maxsize=1)
def word_rates() -> np.ndarray:
    """P(word present | T, S, V): array (T, S, V, len(VOCABULARY)), read-only."""
    kn = KNOBS
    sc = np.array(kn["severity_scale"])
    p = np.zeros((_NT, _NS, _NV, len(VOCABULARY)))
    p[..., _idx(NEUTRAL_WORDS)] = kn["neutral_rate"]
    for t in TOPIC_WORDS.values():
        p[..., _idx(t)] = kn["topic_background"]
    for c in CAPTION_WORDS.values():
        p[..., _idx(c)] = kn["caption_background"]
    harm = _harm_use()
    for ti, t in enumerate(TYPES):
        ob_t = kn["obfuscation"][t]
        bg = kn["background_harm_rate"][t]
        for si, s in enumerate(SCEN):
            for v in range(_NV):
                for ki, k in enumerate(LABELS):
                    look = 0.0
                    if (s == "news" and k == "violence") or (s == "support" and k == "self_harm"):
                        look = kn["lookalike_word_rate"] * sc[v]
                    if s == "art" and k == "nudity":
                        look = 0.02 * sc[v]
                    # harmful use is obfuscated at the type's rate; background and look-alike at 5 %
                    h = harm[si, v, ki]
                    p[ti, si, v, _idx(HARM_WORDS[k])] = h * (1 - ob_t) + (bg + look) * 0.95
                    p[ti, si, v, _idx(OBFUSCATED[k])] = h * ob_t + (bg + look) * 0.05
                if s in TOPIC_WORDS:
                    p[ti, si, v, _idx(TOPIC_WORDS[s])] = kn["topic_rate"]
                if s == "self_harm":
                    p[ti, si, v, _idx(TOPIC_WORDS["support"])] = 0.03
                if s.startswith("meme"):
                    p[ti, si, v, _idx(CAPTION_WORDS[int(s[-2])])] = kn["caption_rate"]
    p = np.clip(p, 1e-6, 1 - 1e-6)
    p.flags.writeable = False
    return p


@lru_cache(maxsize=1)
def image_directions() -> dict[str, np.ndarray]:
    """The fixed unit directions of the embedding space (the image encoder's concepts)."""
    rng = np.random.default_rng(12345)
    names = list(LABELS) + ["news", "art", "meme0", "meme1", "scam"]
    q, _ = np.linalg.qr(rng.standard_normal((EMB_DIM, EMB_DIM)))
    return {n: q[:, i] for i, n in enumerate(names)}


@lru_cache(maxsize=1)
def image_means() -> np.ndarray:
    """mean(S, V) of the embedding: array (S, V, EMB_DIM), read-only."""
    kn, d = KNOBS, image_directions()
    sc = np.array(kn["severity_scale"])
    m = np.zeros((_NS, _NV, EMB_DIM))
    for si, s in enumerate(SCEN):
        for v in range(_NV):
            for ki, k in enumerate(LABELS):
                if Y_OF[si, ki] and not s.startswith("meme"):
                    m[si, v] += kn["image_offset"][k] * sc[v] * d[k]
            if s == "news":
                a, b = kn["lookalike_image"]["news"]
                m[si, v] += a * kn["image_offset"]["violence"] * sc[v] * d["violence"] + b * d["news"]
            if s == "art":
                a, b = kn["lookalike_image"]["art"]
                m[si, v] += a * kn["image_offset"]["nudity"] * sc[v] * d["nudity"] + b * d["art"]
            if s.startswith("meme"):
                m[si, v] += kn["meme_image"] * d[f"meme{s[-1]}"]
    m.flags.writeable = False
    return m


def report_rates() -> np.ndarray:
    """r(S, V): reports per view, array (S, V)."""
    kn = KNOBS
    sc = np.array(kn["severity_scale"])
    r = np.zeros((_NS, _NV))
    for si, s in enumerate(SCEN):
        if HARMFUL[si]:
            r[si] = sum(kn["report_rate"][k] for ki, k in enumerate(LABELS) if Y_OF[si, ki]) * sc
        elif s in LOOKALIKES:
            r[si] = kn["report_rate_lookalike"] * sc
        else:
            r[si] = kn["report_rate_benign"]
    return r


def _draw(seed: int, keys: tuple[str, ...], n: int, first_id: int, first_day: int, n_days: int,
          drift: str | None = None, share: float = 0.0) -> dict[str, pd.DataFrame]:
    """Draw ``n`` posts: the tables posts, images, labels and truth.

    Every part of the story has its own stream ``make_rng(seed, *keys, part)``, so a drift
    changes only what it touches: the same call with and without drift gives the same
    authors, scenarios, audiences and days.
    """
    kn = KNOBS

    def rng(part):
        return make_rng(seed, *keys, part)

    r = rng("authors")
    T = r.choice(_NT, size=n, p=[kn["type_prior"][t] for t in TYPES])
    r = rng("scenarios")
    S = np.minimum((r.random(n)[:, None] > np.cumsum(scenario_matrix()[T], axis=1)).sum(axis=1), _NS - 1)
    V = rng("severity").choice(_NV, size=n, p=kn["severity_prior"])
    A = rng("audience").choice(len(AUDIENCES), size=n, p=kn["audience_prior"])
    y = Y_OF[S]
    scam = np.zeros(n, dtype=bool)
    if drift == "new_harm":   # a share of posts are scams, by a new type of author
        scam = rng("new harm").random(n) < share
        y = np.where(scam[:, None], 0, y)

    # text: one Bernoulli draw per vocabulary word, and per word of a drift
    words = np.array(VOCABULARY)
    rates = np.array(word_rates()[T, S, V])                       # (n, words)
    if drift == "obfuscation":
        rates, extra = _obfuscation_drift(rates, T, S, V, share)
        words = np.r_[words, [w for k in LABELS for w in NEW_SPELLINGS[k]]]
    elif drift == "new_harm":
        rates, extra = _new_harm_text(rates, scam, V)
        words = np.r_[words, SCAM_WORDS]
    else:
        extra = np.zeros((n, 0))
    present = np.c_[rng("text").random(rates.shape) < rates, rng("text drift").random(extra.shape) < extra]
    r = rng("word order")
    text = [" ".join(r.permutation(words[row])) for row in present]

    # image
    r = rng("images")
    mu = image_means()[S, V]
    if scam.any():
        sc = np.array(kn["severity_scale"])[V[scam]]
        mu[scam] = kn["new_harm"]["image_offset"] * sc[:, None] * image_directions()["scam"]
    emb = mu + r.standard_normal((n, EMB_DIM))
    has_image = r.random(n) >= kn["image_missing"]

    # author history: a whole number of days (the floor of an exponential is geometric)
    r = rng("history")
    age_mean = np.array([kn["account_age_mean"][t] for t in TYPES])[T]
    rate = np.array([kn["violations_rate"][t] for t in TYPES])[T]
    age_mean[scam] = kn["new_harm"]["account_age_mean"]
    rate[scam] = kn["new_harm"]["violations_rate"]
    age = np.floor(r.exponential(age_mean)).astype(np.int64)
    true_viol = r.poisson(rate)
    caught = r.binomial(true_viol, kn["violations_caught"])

    # first-hour reactions
    r = rng("reactions")
    views = r.poisson(np.array(kn["views_mean"])[A])
    report_rate = report_rates()[S, V]
    report_rate[scam] = kn["new_harm"]["report_rate"] * np.array(kn["severity_scale"])[V[scam]]
    reports = r.poisson(views * report_rate + np.array(kn["brigade_reports"])[A])

    # crowd raters miss positives, more often on borderline posts
    miss = np.array(kn["rater_miss"])[V]
    rater = (y.astype(bool) & (rng("raters").random((n, _K)) >= miss[:, None])).astype(np.int64)

    day = first_day + np.sort(rng("days").integers(0, n_days, size=n))
    ids = np.arange(first_id, first_id + n)
    posts = pd.DataFrame({
        "post_id": ids, "day": day, "text": text, "account_age_days": age,
        "past_violations": caught, "views_1h": views, "reports_1h": reports, "has_image": has_image,
    })
    images = pd.DataFrame(emb[has_image].round(3), columns=_EMB)
    images.insert(0, "post_id", ids[has_image])
    labels = pd.DataFrame(rater, columns=list(LABELS))
    labels.insert(0, "post_id", ids)
    types, scenarios = np.array(TYPES, dtype=object)[T], np.array(SCEN, dtype=object)[S]
    types[scam], scenarios[scam] = "scammer", "scam"
    truth = pd.DataFrame({
        "post_id": ids, "author_type": types, "scenario": scenarios, "severity": V + 1,
        "audience": np.array(AUDIENCES)[A], "true_past_violations": true_viol,
    })
    for ki, k in enumerate(LABELS):
        truth[k] = y[:, ki]
    if drift == "new_harm":
        truth["scam"] = scam.astype(np.int64)
    return {"posts": posts, "images": images, "labels": labels, "truth": truth}


def _obfuscation_drift(rates, T, S, V, share):
    """Bad actors spell ``share`` of their harmful-use harm words in a new way."""
    harm = _harm_use()[S, V] * (T != TYPES.index("normal"))[:, None] * share       # (n, K)
    ob = np.array([KNOBS["obfuscation"][t] for t in TYPES])[T][:, None]
    per_word = np.repeat(harm, KNOBS["words_per_class"], axis=1)                    # (n, K x words)
    ob_words = np.repeat(ob, per_word.shape[1], axis=1)
    rates = rates.copy()
    canon = _idx(w for k in LABELS for w in HARM_WORDS[k])
    twins = _idx(w for k in LABELS for w in OBFUSCATED[k])
    rates[:, canon] -= per_word * (1 - ob_words)
    rates[:, twins] -= per_word * ob_words
    return np.clip(rates, 1e-6, 1 - 1e-6), per_word


def _new_harm_text(rates, scam, V):
    """Scam posts: ordinary words, the scam words and a few spam words; no other harm words."""
    kn, nh = KNOBS, KNOBS["new_harm"]
    sc = np.array(kn["severity_scale"])[V][:, None]
    rates = rates.copy()
    plain = word_rates()[TYPES.index("normal"), SCEN.index("benign"), 0]
    rates[scam] = plain
    spam = _idx(HARM_WORDS["spam"] + OBFUSCATED["spam"])
    rates[np.ix_(scam, spam)] = np.clip(nh["spam_word_rate"] * sc[scam] / 2, 1e-6, None)
    extra = np.where(scam[:, None], nh["word_rate"] * sc, 0.0) * np.ones(len(SCAM_WORDS))
    return rates, extra


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the harmful content world at ``seed``."""
    seed = check_int("seed", seed, minimum=0)
    tables = _draw(seed, (NAME,), KNOBS["n_posts"], 0, 0, KNOBS["days"])
    world = World(
        name=NAME,
        seed=seed,
        observed={name: tables[name] for name in ("posts", "images", "labels")},
        hidden={"truth": tables["truth"]},
        summary="",
        knobs=dict(KNOBS),
        columns=COLUMNS,
    )
    world.summary = _summary(world)
    return world


# --------------------------------------------------------------------------- the oracle


def _text_matrix(texts, ignore_unknown: bool) -> np.ndarray:
    """The binary bag of words of each text over VOCABULARY: (n, len(VOCABULARY))."""
    x = np.zeros((len(texts), len(VOCABULARY)))
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"posts.text must hold strings, got {text!r} in row {i}")
        for w in text.split():
            j = _WORD_INDEX.get(w)
            if j is not None:
                x[i, j] = 1.0
            elif not ignore_unknown:
                raise ValueError(f"unknown word {w!r} in row {i} of posts.text; pass ignore_unknown=True "
                                 "to leave out words the world's story cannot produce")
    return x


def _image_matrix(posts: pd.DataFrame, images: pd.DataFrame) -> np.ndarray:
    """Each post's embedding, NaN where it has none; checks the tables agree."""
    missing = [c for c in ("post_id", *_EMB) if c not in images.columns]
    if missing:
        raise ValueError(f"images lacks the columns {missing}")
    if images["post_id"].duplicated().any():
        raise ValueError("images has two rows for one post_id")
    rows = images.set_index("post_id").reindex(posts["post_id"].to_numpy())[_EMB].to_numpy(dtype=float)
    has = posts["has_image"].to_numpy(dtype=bool)
    found = ~np.isnan(rows).any(axis=1)
    for bad, why in ((has & ~found, "has_image but no row in images"),
                     (~has & found, "has_image False but a row in images")):
        if bad.any():
            raise ValueError(f"post {int(posts['post_id'].to_numpy()[bad][0])} has {why}")
    return rows


def _joint_log(posts: pd.DataFrame, text: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """log P(T, S, V, observables) per post: array (n, T, S, V), the audience summed out."""
    kn = KNOBS
    n = len(posts)
    # text: a Bernoulli per word given (T, S, V)
    p = word_rates().reshape(-1, len(VOCABULARY))
    ll = (text @ (np.log(p) - np.log1p(-p)).T + np.log1p(-p).sum(1)).reshape(n, _NT, _NS, _NV)
    # image: N(mean(S, V), I); no term for a post without one (missing at random)
    has = ~np.isnan(emb[:, 0])
    m = image_means().reshape(-1, EMB_DIM)
    e = np.nan_to_num(emb)
    d2 = (e**2).sum(1)[:, None] - 2 * e @ m.T + (m**2).sum(1)[None, :]
    ll += np.where(has[:, None], -0.5 * d2, 0.0).reshape(n, 1, _NS, _NV)
    # reactions: views | A ~ Poisson(mean_A); reports | views, S, V, A ~ Poisson(views r + brigade_A)
    views = posts["views_1h"].to_numpy(dtype=float)
    rep = posts["reports_1h"].to_numpy(dtype=float)
    r = report_rates()
    terms = []
    for a in range(len(AUDIENCES)):
        mu = kn["views_mean"][a]
        lv = views * np.log(mu) - mu - gammaln(views + 1)
        lam = np.maximum(views[:, None, None] * r[None] + kn["brigade_reports"][a], 1e-12)
        lr = rep[:, None, None] * np.log(lam) - lam - gammaln(rep + 1)[:, None, None]
        terms.append(np.log(kn["audience_prior"][a]) + lv[:, None, None] + lr)
    ll += logsumexp(np.stack(terms), axis=0)[:, None]
    # author history: geometric age, Poisson caught violations (a thinned Poisson)
    age = posts["account_age_days"].to_numpy(dtype=float)
    viol = posts["past_violations"].to_numpy(dtype=float)
    q = -1.0 / np.array([kn["account_age_mean"][t] for t in TYPES])          # log P(age >= 1 more day)
    lam_v = np.array([kn["violations_rate"][t] for t in TYPES]) * kn["violations_caught"]
    ll_hist = (age[:, None] * q[None] + np.log(-np.expm1(q))[None]
               + viol[:, None] * np.log(lam_v)[None] - lam_v[None] - gammaln(viol + 1)[:, None])
    with np.errstate(divide="ignore"):
        prior = (np.log([kn["type_prior"][t] for t in TYPES])[:, None, None]
                 + np.log(scenario_matrix())[:, :, None] + np.log(kn["severity_prior"])[None, None, :])
    return ll + ll_hist[:, :, None, None] + prior[None]


def _check_posts(posts) -> None:
    if not isinstance(posts, pd.DataFrame):
        raise TypeError(f"posts must be a DataFrame, got {type(posts).__name__}")
    missing = [c for c in _POST_COLUMNS if c not in posts.columns]
    if missing:
        raise ValueError(f"posts lacks the columns {missing}")
    for col in ("account_age_days", "past_violations", "views_1h", "reports_1h"):
        values = posts[col].to_numpy()
        if not pd.api.types.is_numeric_dtype(posts[col]) or (values < 0).any() or (values % 1 != 0).any():
            raise ValueError(f"posts.{col} must hold whole numbers >= 0")


def posterior(world: World, posts: pd.DataFrame | None = None, images: pd.DataFrame | None = None, *,
              ignore_unknown: bool = False, chunk: int = 5_000) -> pd.DataFrame:
    """The oracle: P(label | everything observable about the post), for every post.

    Exact: the story's latents (author type, scenario, severity, audience) are enumerated per
    post, with the world's own probabilities. ``posts`` and ``images`` default to the world's
    tables; tables of the same schema (e.g. from :func:`new_posts` without drift) are accepted,
    and ``images`` is matched by ``post_id``. A word the story cannot produce raises
    ``ValueError`` unless ``ignore_unknown`` (then it is left out). Returns a DataFrame with
    ``post_id``, one column per label and ``any_harm`` (P(at least one label)).
    """
    if not isinstance(world, World):
        raise TypeError(f"world must be a World, got {type(world).__name__}")
    chunk = check_int("chunk", chunk, minimum=1)
    posts = world.observed["posts"] if posts is None else posts
    images = world.observed["images"] if images is None else images
    _check_posts(posts)
    emb = _image_matrix(posts, images)
    text = posts["text"].to_numpy()
    out = np.empty((len(posts), _K + 1))
    harm = np.c_[Y_OF, HARMFUL].astype(float)
    for start in range(0, len(posts), chunk):
        part = slice(start, start + chunk)
        j = _joint_log(posts.iloc[part], _text_matrix(text[part], ignore_unknown), emb[part])
        j -= logsumexp(j.reshape(len(j), -1), axis=1)[:, None, None, None]
        out[part] = np.exp(j).sum(axis=(1, 3)) @ harm
    frame = pd.DataFrame(np.clip(out, 0, 1), columns=[*LABELS, "any_harm"])
    frame.insert(0, "post_id", posts["post_id"].to_numpy())
    return frame


# --------------------------------------------------------------------------- helpers for later sections


def _truth_of(world, truth) -> pd.DataFrame:
    if not isinstance(world, World):
        raise TypeError(f"world must be a World, got {type(world).__name__}")
    truth = world.hidden["truth"] if truth is None else truth
    if not isinstance(truth, pd.DataFrame):
        raise TypeError(f"truth must be a DataFrame, got {type(truth).__name__}")
    missing = [c for c in ("post_id", *LABELS) if c not in truth.columns]
    if missing:
        raise ValueError(f"truth lacks the columns {missing}")
    return truth


def _rows(table: pd.DataFrame, post_ids) -> pd.DataFrame:
    """``table``'s rows for ``post_ids``, in their order; unknown ids raise ValueError."""
    ids = np.asarray(post_ids)
    if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
        raise ValueError(f"post_ids must be a 1-d sequence of integers, got {ids.dtype} of shape {ids.shape}")
    ids = ids.astype(np.int64)
    indexed = table.set_index("post_id")
    unknown = np.setdiff1d(ids, indexed.index.to_numpy())
    if len(unknown):
        raise ValueError(f"unknown post ids: {unknown[:5].tolist()}")
    return indexed.loc[ids].reset_index()


def _uniforms(seed: int, purpose: str, ids: np.ndarray, *more: int) -> np.ndarray:
    """A uniform number in (0, 1) per id: a hash of (seed, purpose, id, more), no state."""
    salt = int.from_bytes(hashlib.sha256(f"{NAME}/{seed}/{purpose}".encode()).digest()[:8], "little")
    with np.errstate(over="ignore"):
        x = splitmix64(ids.astype(np.uint64) ^ np.uint64(salt))
        for m in more:
            x = splitmix64(x + np.uint64(m))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53   # in (0, 1)


def _label_columns(truth: pd.DataFrame) -> list[str]:
    return [*LABELS, "scam"] if "scam" in truth.columns else list(LABELS)


def review(world: World, post_ids, truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """The expert review team's verdict on ``post_ids``: post_id and the true labels.

    Experts are slow and costly but right (the crowd raters of ``labels`` miss positives), so
    their verdict is the truth. ``truth`` is the hidden truth table to read from (default the
    world's; pass the ``truth`` of :func:`new_posts` for later posts; its ``scam`` column, if
    any, is returned too).
    """
    truth = _truth_of(world, truth)
    return _rows(truth[["post_id", *_label_columns(truth)]], post_ids)


def later_reactions(world: World, posts: pd.DataFrame, truth: pd.DataFrame, hours: int) -> pd.DataFrame:
    """Cumulative views and reports of ``posts`` after ``hours`` hours (``hours`` >= 1).

    Consistent with the first hour: each later hour adds Poisson(views_mean[A] x
    ``later_views_share``) views and Poisson(new views x r(S, V)) reports (a brigade reports in
    the first hour only). The draws are a hash of (seed, post, hour), so the answer is the same
    whatever else is asked and grows with ``hours``; ``hours=1`` returns ``views_1h`` and
    ``reports_1h``. ``truth`` is the posts' hidden truth table (the world's or :func:`new_posts`').
    """
    hours = check_int("hours", hours, minimum=1)
    _check_posts(posts)
    t = _rows(_truth_of(world, truth), posts["post_id"].to_numpy())
    kn = KNOBS
    views = posts["views_1h"].to_numpy().astype(np.int64)
    reports = posts["reports_1h"].to_numpy().astype(np.int64)
    ids = posts["post_id"].to_numpy()
    if hours > 1:
        a = pd.Categorical(t["audience"], categories=AUDIENCES).codes
        v = t["severity"].to_numpy() - 1
        if (a < 0).any() or not np.isin(v, range(_NV)).all():
            raise ValueError("truth has an unknown audience or severity")
        rate = _report_rate_of(t["scenario"].to_numpy(), v)
        mu = np.array(kn["views_mean"])[a] * kn["later_views_share"]
        for h in range(2, hours + 1):
            new = stats.poisson.ppf(_uniforms(world.seed, "later views", ids, h), mu).astype(np.int64)
            lam = new * rate
            u = _uniforms(world.seed, "later reports", ids, h)
            more = np.zeros(len(ids), dtype=np.int64)
            some = u > np.exp(-lam)   # P(no report) = exp(-lam): most posts need no inverse CDF
            more[some] = stats.poisson.ppf(u[some], lam[some]).astype(np.int64)
            views, reports = views + new, reports + more
    return pd.DataFrame({"post_id": ids, "views": views, "reports": reports})


def _report_rate_of(scenarios: np.ndarray, v: np.ndarray) -> np.ndarray:
    r = report_rates()
    index = {s: i for i, s in enumerate(SCEN)}
    out = np.empty(len(scenarios))
    for i, (s, sev) in enumerate(zip(scenarios, v)):
        if s == "scam":
            out[i] = KNOBS["new_harm"]["report_rate"] * KNOBS["severity_scale"][sev]
        elif s in index:
            out[i] = r[index[s], sev]
        else:
            raise ValueError(f"unknown scenario {s!r} in truth")
    return out


def appeals(world: World, post_ids, truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """Whether the authors of removed posts appeal, and whether the appeal is upheld.

    The author of a removed post appeals with probability ``appeal_benign`` if the post is truly
    benign and ``appeal_harmful`` if it is harmful; an appeal overturns the removal iff the post
    is benign. Each post's draw is a hash of (seed, post): the same post always gets the same
    answer. Returns post_id, appealed, overturned.
    """
    t = _truth_of(world, truth)
    rows = _rows(t, post_ids)
    benign = ~rows[_label_columns(t)].to_numpy().astype(bool).any(axis=1)
    u = _uniforms(world.seed, "appeals", rows["post_id"].to_numpy())
    appealed = u < np.where(benign, KNOBS["appeal_benign"], KNOBS["appeal_harmful"])
    return pd.DataFrame({"post_id": rows["post_id"], "appealed": appealed, "overturned": appealed & benign})


def new_posts(world: World, n_posts: int, first_day: int, n_days: int, *, drift: str | None = None,
              share: float = 0.0) -> dict[str, pd.DataFrame]:
    """Posts of later days, drawn from the same story: tables posts, images, labels and truth.

    Ids continue after the world's last post, days run from ``first_day`` (after the world's last
    day) for ``n_days``. ``drift="obfuscation"``: bad actors (every type but normal) spell
    ``share`` of their harmful-use harm words in a third way no stored post uses
    (:data:`NEW_SPELLINGS`). ``drift="new_harm"``: ``share`` of the posts are scams by a new
    type of author (``scammer``) with words of their own (:data:`SCAM_WORDS`), an image
    direction of their own and few reports; the truth gains a ``scam`` column. Without drift
    ``share`` must be 0. The same arguments give the same posts, and a drift changes only what
    it touches (the authors, scenarios and audiences stay those of the call without it).
    """
    if not isinstance(world, World):
        raise TypeError(f"world must be a World, got {type(world).__name__}")
    n_posts = check_int("n_posts", n_posts, minimum=1)
    n_days = check_int("n_days", n_days, minimum=1)
    last_day = int(world.observed["posts"]["day"].max())
    first_day = check_int("first_day", first_day, minimum=last_day + 1)
    if drift is not None and drift not in DRIFTS:
        raise ValueError(f"unknown drift {drift!r}; known: {', '.join(DRIFTS)} or None")
    share = check_finite("share", share)
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share}")
    if drift is None and share != 0:
        raise ValueError(f"share must be 0 without a drift, got {share}")
    first_id = int(world.observed["posts"]["post_id"].max()) + 1
    keys = (NAME, "new posts", str(n_posts), str(first_day), str(n_days))
    return _draw(world.seed, keys, n_posts, first_id, first_day, n_days, drift, share)


# --------------------------------------------------------------------------- datasheet


def _summary(world: World) -> str:
    posts, truth, labels = world.observed["posts"], world.hidden["truth"], world.observed["labels"]
    k = KNOBS
    y = truth[list(LABELS)].to_numpy().astype(bool)
    harmful = y.any(axis=1)
    prevalence = ", ".join(f"{name.replace('_', '-')} {rate:.1%}" for name, rate in zip(LABELS, y.mean(0)))
    unreported = (posts["reports_1h"].to_numpy()[harmful] == 0).mean()
    caught = labels[list(LABELS)].to_numpy()[y].mean()
    scen = truth["scenario"]
    memes = scen.str.startswith("meme").mean()
    hateful_memes = scen.str.startswith("meme_hate").sum()
    lookalike = {s: (scen == s).mean() for s in LOOKALIKES}
    brigaded = (truth["audience"] == "brigade").to_numpy()
    why = "\n".join(f"- `{name}`: {reason}." for name, reason in WHY.items())
    return f"""
A platform's stream of {len(posts):,} posts over {k['days']} days, each by its own author: the text
(space-separated words), the author's account age and caught past violations, the first hour's
views and user reports, and for {posts['has_image'].mean():.0%} of posts an image embedding
(table `images`, {EMB_DIM} numbers). Crowd raters labelled every post (table `labels`) for five
harms: violence, nudity, hate, spam and self-harm; a post can carry several.

- **Prevalence** (the truth): {prevalence}; {harmful.mean():.1%} of posts are harmful in at least one
  way. {unreported:.0%} of harmful posts have no user report in their first hour, so waiting for
  reports misses most of them; {brigaded.mean():.0%} of posts meet a brigade that reports them
  whatever they are.
- **Look-alikes**: news posts ({lookalike['news']:.1%} of posts) use violent words and show
  violent-looking images, art ({lookalike['art']:.1%}) shows nudity-like images, support posts
  ({lookalike['support']:.1%}) use self-harm words; all are benign. Each harm word has an obfuscated
  twin ("kill" / "k1ll"); bad actors use the twins much more often. "slur1".."slur8" stand in
  for slurs and dehumanising words.
- **Memes** ({memes:.1%} of posts): a caption kind (in the words) and an image template (in the
  embedding); a meme is hateful exactly when the two match, an XOR that neither modality
  settles alone ({hateful_memes} hateful memes in all).
- **Raters** miss positives, more often on borderline posts ({', '.join(f'{m:.0%}' for m in
  k['rater_miss'])} at severity 1, 2, 3) and never invent one: they caught {caught:.0%} of the true
  positive labels.
- **Hidden** (`hidden/truth.csv.gz`): each post's author type, scenario, severity, audience, true
  past violations and true labels. `posterior` computes the exact P(label | everything
  observable) by enumerating the latents: the oracle. `review` gives the expert team's verdict
  (the truth), `later_reactions` the views and reports after more hours, `appeals` the authors'
  appeals of removals, `new_posts` later days with drift (new spellings, a new harm).

**Why these values.**

{why}

**Known biases and limits.** Texts are bags of words from a small vocabulary, independent
given the post's hidden state; every post has its own author (no author history across posts);
the image is a Gaussian embedding, not pixels; severity, author type and audience are the only
sources of correlation between the modalities.
"""
