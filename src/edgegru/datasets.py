"""Small real datasets for the demo and examples, built from data that a pip package ships.

Nothing here downloads anything at run time: :func:`language_id` reads the word lists that the
`wordfreq <https://pypi.org/project/wordfreq/>`_ package installs with itself (R. Speer,
*wordfreq*, Zenodo, doi:10.5281/zenodo.7199437; word-list data under CC BY-SA 4.0). wordfreq is
an optional dependency, installed by the ``demo`` extra: ``pip install edgegru[demo]``.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field

import numpy as np

#: Token id of the padding that fills a word up to ``max_len`` (appended at the end).
PAD_ID = 0
#: Token id of a character that is not in the training vocabulary.
UNK_ID = 1
#: Vocabulary entries for the two reserved ids (they are not characters).
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"

#: Default languages: Latin script, distinguishable from spelling alone, with large wordfreq
#: lists. Romance (es/it/pt/fr) and Germanic (en/de/nl) neighbours keep the task non-trivial.
DEFAULT_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt", "pl")

#: Each language's candidate pool is its ``POOL_FACTOR * words_per_language`` most frequent
#: words; the ambiguity filter compares these pools across languages.
POOL_FACTOR = 3
#: The wordfreq list that :func:`language_id` reads (``wordfreq.top_n_list(..., wordlist=...)``).
WORDLIST = "best"

_MISSING_WORDFREQ = "the demo needs the 'demo' extra: pip install edgegru[demo]"


@dataclass(frozen=True)
class Dataset:
    """A character-level classification dataset of single words.

    x_train, x_test: int32, shape ``(n, max_len)``; one word per row, character ids padded at the
        end with :data:`PAD_ID`. Ids index ``vocabulary``.
    y_train, y_test: int32, shape ``(n,)``; class ids indexing ``labels``.
    vocabulary: ``vocabulary[i]`` is the character with id ``i``; ids 0 and 1 are reserved
        (:data:`PAD_TOKEN`, :data:`UNK_TOKEN`), every other entry is one character. Built from the
        training split only, so the test split may contain :data:`UNK_ID`.
    labels: the class names (wordfreq language codes), in class-id order.
    max_len: the sequence length T of every row.
    source: provenance, printable: data package and version, the function and word list read,
        the languages, pool and split sizes, the filters applied and the seed.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    vocabulary: tuple
    labels: tuple
    max_len: int
    source: dict = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        """Number of token ids (the Embedding's input dimension), reserved ids included."""
        return len(self.vocabulary)

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    def encode(self, words) -> np.ndarray:
        """Encode an iterable of words as an int32 ``(len(words), max_len)`` array.

        Words are case-folded (``str.casefold``, as wordfreq folds its lists); characters missing
        from the vocabulary map to :data:`UNK_ID`; words longer than ``max_len`` are cut to their
        first ``max_len`` characters; shorter ones are padded at the end with :data:`PAD_ID`.
        """
        return _encode(list(words), _index(self.vocabulary), self.max_len)


def _index(vocabulary) -> dict:
    return {ch: i for i, ch in enumerate(vocabulary) if i not in (PAD_ID, UNK_ID)}


def _encode(words: list, index: dict, max_len: int) -> np.ndarray:
    out = np.full((len(words), max_len), PAD_ID, dtype=np.int32)
    for row, word in enumerate(words):
        ids = [index.get(ch, UNK_ID) for ch in word.casefold()[:max_len]]
        out[row, : len(ids)] = ids
    return out


def _import_wordfreq():
    try:
        import wordfreq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_MISSING_WORDFREQ) from exc
    return wordfreq


def language_id(
    languages=DEFAULT_LANGUAGES,
    words_per_language: int = 6000,
    max_len: int = 16,
    min_len: int = 3,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Language identification of single words, from wordfreq's word lists.

    Source: ``wordfreq.top_n_list(lang, POOL_FACTOR * words_per_language, wordlist="best")``
    for each language code (see ``wordfreq.available_languages()``). wordfreq's "best" lists merge
    several corpora (Wikipedia, subtitles, news, web text, ...) and are already case-folded and
    Unicode-normalised by wordfreq. The exact wordfreq version is recorded in ``Dataset.source``.

    Filters, in this order, on each language's pool (most frequent words first):

    * keep purely alphabetic words (``str.isalpha``: drops numbers, punctuation, ``_`` ...);
    * keep words of ``min_len`` to ``max_len`` characters (short words are too ambiguous, longer
      ones are dropped rather than cut, so every sample is a whole word);
    * drop every word that appears in the pool of more than one of ``languages`` (ambiguous:
      "piano", "hotel", names ...).

    Each language then contributes its ``words_per_language`` most frequent surviving words
    (balanced classes); of those, a seeded ``test_fraction`` goes to the test split (stratified),
    the rest, shuffled, to the training split. The result depends only on the arguments and the
    wordfreq data version.

    Raises ImportError (naming the ``demo`` extra) when wordfreq is not installed, ValueError on
    bad arguments or when a language has fewer than ``words_per_language`` words left.
    """
    languages = tuple(languages)
    if len(languages) < 2 or len(set(languages)) != len(languages):
        raise ValueError(f"need at least two distinct languages, got {languages!r}")
    if words_per_language < 2:
        raise ValueError(f"words_per_language must be >= 2, got {words_per_language}")
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    n_test = round(words_per_language * test_fraction)
    if not 0 < n_test < words_per_language:
        raise ValueError(
            f"test_fraction={test_fraction} leaves an empty split of {words_per_language} words"
        )
    wordfreq = _import_wordfreq()
    known = wordfreq.available_languages(wordlist=WORDLIST)
    unknown = [lang for lang in languages if lang not in known]
    if unknown:
        raise ValueError(f"wordfreq has no {WORDLIST!r} word list for {unknown}")

    pool_size = POOL_FACTOR * words_per_language
    pools = {}
    for lang in languages:
        words = wordfreq.top_n_list(lang, pool_size, wordlist=WORDLIST)
        pools[lang] = [
            w for w in dict.fromkeys(words) if w.isalpha() and min_len <= len(w) <= max_len
        ]
    seen_in = {}
    for lang in languages:
        for w in pools[lang]:
            seen_in[w] = seen_in.get(w, 0) + 1

    rng = np.random.default_rng(seed)
    train_words, train_labels, test_words, test_labels = [], [], [], []
    for label, lang in enumerate(languages):
        chosen = [w for w in pools[lang] if seen_in[w] == 1][:words_per_language]
        if len(chosen) < words_per_language:
            raise ValueError(
                f"wordfreq {lang!r}: only {len(chosen)} unambiguous words of {min_len}..{max_len} "
                f"characters in its top {pool_size}, {words_per_language} requested"
            )
        order = rng.permutation(words_per_language)
        test_words += [chosen[i] for i in order[:n_test]]
        train_words += [chosen[i] for i in order[n_test:]]
        test_labels += [label] * n_test
        train_labels += [label] * (words_per_language - n_test)
    shuffle = rng.permutation(len(train_words))
    train_words = [train_words[i] for i in shuffle]
    train_labels = [train_labels[i] for i in shuffle]

    chars = sorted(set("".join(train_words)))
    vocabulary = (PAD_TOKEN, UNK_TOKEN, *chars)
    index = _index(vocabulary)
    source = {
        "package": "wordfreq",
        "version": importlib.metadata.version("wordfreq"),
        "function": f"wordfreq.top_n_list(lang, {pool_size}, wordlist={WORDLIST!r})",
        "languages": list(languages),
        "words_per_language": words_per_language,
        "train_size": len(train_words),
        "test_size": len(test_words),
        "filters": (
            f"alphabetic, {min_len}..{max_len} chars, not in another language's top {pool_size}"
        ),
        "license": "wordfreq data: CC BY-SA 4.0",
        "seed": seed,
    }
    return Dataset(
        x_train=_encode(train_words, index, max_len),
        y_train=np.asarray(train_labels, dtype=np.int32),
        x_test=_encode(test_words, index, max_len),
        y_test=np.asarray(test_labels, dtype=np.int32),
        vocabulary=vocabulary,
        labels=languages,
        max_len=max_len,
        source=source,
    )
