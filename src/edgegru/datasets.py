"""Small real datasets for the demo and examples, built from data that a pip package ships.

Nothing here downloads anything at run time:

* :func:`language_id` reads the word lists that the
  `wordfreq <https://pypi.org/project/wordfreq/>`_ package installs with itself (R. Speer,
  *wordfreq*, Zenodo, doi:10.5281/zenodo.7199437; word-list data under CC BY-SA 4.0). wordfreq is
  an optional dependency, installed by the ``demo`` extra: ``pip install 'edgegru[demo]'``.
* :func:`japanese_vowels` reads the UCI Japanese Vowels speaker-identification set from the
  ``.ts`` files that the `aeon <https://pypi.org/project/aeon/>`_ wheel ships as package data.
  Only the files are read, aeon is never imported (its dependencies are heavy), so it can be
  installed alone: ``pip install --no-deps aeon==1.6.0``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

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

_MISSING_WORDFREQ = "the demo needs the 'demo' extra: pip install 'edgegru[demo]'"


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


#: The aeon release whose wheel ships the Japanese Vowels files read by :func:`japanese_vowels`.
AEON_VERSION = "1.6.0"
#: Where the files are inside the aeon package.
JAPANESE_VOWELS_SUBDIR = ("datasets", "data", "JapaneseVowels")
#: The longest utterance in either split, in frames: :func:`japanese_vowels`' default length.
JAPANESE_VOWELS_MAX_LEN = 29

_MISSING_AEON = (
    "the Japanese Vowels data ships inside the aeon wheel; install its files (without aeon's "
    f"dependencies, edgegru never imports it): pip install --no-deps aeon=={AEON_VERSION} "
    "(on Python 3.10 add --ignore-requires-python: only the data files are used)"
)


@dataclass(frozen=True)
class FrameDataset:
    """A classification dataset of variable-length sequences of float frames.

    x_train, x_test: float32, shape ``(n, max_len, n_features)``; row ``i`` holds its
        ``lengths_*[i]`` frames first, then zeros (post-padding, what ``keras.layers.Masking()``
        with its default ``mask_value=0.0`` skips).
    y_train, y_test: int32, shape ``(n,)``; class ids indexing ``labels``.
    lengths_train, lengths_test: int32, shape ``(n,)``; the number of real frames of each row.
    labels: the class names as the data file spells them, in class-id order.
    max_len: the sequence length T of every row.
    source: provenance, printable: data package, version and files, original source, sizes.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lengths_train: np.ndarray
    lengths_test: np.ndarray
    labels: tuple
    max_len: int
    source: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def n_classes(self) -> int:
        return len(self.labels)


def _aeon_data_dir() -> Path:
    """The Japanese Vowels directory of the installed aeon package, found without importing aeon
    (``find_spec`` of a top-level package only locates it; its ``__init__`` does not run)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"no package 'aeon' is installed: {_MISSING_AEON}")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*JAPANESE_VOWELS_SUBDIR)


def _read_ts(path: Path, n_dims: int):
    """Read a multivariate, classification ``.ts`` file (aeon/sktime's text format).

    Header lines start with ``@`` (``@dimensions``, ``@classLabel true <labels>``, ``@data``...),
    comments with ``#``. After ``@data`` each line is one case: the dimensions separated by
    ``:``, each a comma-separated series, then the class label. Returns a list of float64
    ``(T, n_dims)`` arrays, the labels as strings and the declared class labels.
    """
    series, labels, class_labels, in_data = [], [], None, False
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{path}:{lineno}"
            if not in_data:
                key, _, value = line.partition(" ")
                key = key.lower()
                if key == "@data":
                    in_data = True
                elif key == "@dimensions" and int(value) != n_dims:
                    raise ValueError(f"{where}: {value} dimensions, expected {n_dims}")
                elif key == "@timestamps" and value.strip().lower() != "false":
                    raise ValueError(f"{where}: time stamps are not supported")
                elif key == "@classlabel":
                    flag, *names = value.split()
                    if flag.lower() != "true" or not names:
                        raise ValueError(f"{where}: not a classification problem")
                    class_labels = tuple(names)
                continue
            *dims, label = line.split(":")
            if len(dims) != n_dims:
                raise ValueError(f"{where}: {len(dims)} dimensions, expected {n_dims}")
            try:
                values = [np.array(d.split(","), dtype=np.float64) for d in dims]
            except ValueError as exc:
                raise ValueError(f"{where}: not a number ({exc})") from None
            if len({len(v) for v in values}) != 1:
                raise ValueError(f"{where}: dimensions of different lengths")
            if not np.isfinite(values).all():
                raise ValueError(f"{where}: missing or non-finite values")
            series.append(np.stack(values, axis=-1))
            labels.append(label.strip())
    if class_labels is None or not series:
        raise ValueError(f"{path}: no @classLabel header or no data")
    unknown = sorted(set(labels) - set(class_labels))
    if unknown:
        raise ValueError(f"{path}: labels {unknown} are not in @classLabel {class_labels}")
    return series, labels, class_labels


def _pad(series: list, max_len: int, n_dims: int) -> tuple:
    x = np.zeros((len(series), max_len, n_dims), dtype=np.float32)
    lengths = np.array([len(s) for s in series], dtype=np.int32)
    for row, s in enumerate(series):
        x[row, : len(s)] = s
    return x, lengths


def japanese_vowels(max_len: int = JAPANESE_VOWELS_MAX_LEN, data_dir=None) -> FrameDataset:
    """Speaker identification from short utterances: the UCI Japanese Vowels set.

    Nine male speakers each uttered the Japanese vowels /ae/; every utterance is a sequence of
    7..29 frames of 12 LPC cepstrum coefficients (12-degree linear prediction, 10 kHz sampling,
    25.6 ms frames every 6.4 ms). The task is to name the speaker (9 classes). The split is the
    original one: 270 training utterances (30 per speaker) and 370 test utterances (24..88 per
    speaker, recorded on other occasions).

    Source: M. Kudo, J. Toyama, M. Shimbo, "Multidimensional curve classification using
    passing-through regions", Pattern Recognition Letters 20 (11-13), 1103-1111, 1999; data in
    the UCI Machine Learning Repository, "Japanese Vowels", doi:10.24432/C5NS47. Read here from
    ``aeon/datasets/data/JapaneseVowels/JapaneseVowels_{TRAIN,TEST}.ts`` as shipped in the
    aeon wheel (the UEA/UCR time-series archive's ``.ts`` conversion of the UCI files; aeon is
    BSD-3-Clause), version :data:`AEON_VERSION`: ``pip install --no-deps aeon==1.6.0`` (aeon
    1.6.0 declares Python >= 3.11; on 3.10 add ``--ignore-requires-python``, the data files do
    not care). The version actually read is recorded in ``source``.

    Frames are kept as they are (no normalisation) and padded at the end with zero frames to
    ``max_len``; no real frame is all zeros, so ``keras.layers.Masking()`` recovers the lengths.
    Labels ``"1"``..``"9"`` become class ids 0..8.

    data_dir: a directory holding ``JapaneseVowels_TRAIN.ts`` and ``JapaneseVowels_TEST.ts``;
        default: the one inside the installed aeon package, found without importing aeon.

    Raises FileNotFoundError naming the fix (``pip install --no-deps aeon==1.6.0``) when the
    files are missing, ValueError when ``max_len`` is shorter than an utterance or a file is
    malformed.
    """
    directory = _aeon_data_dir() if data_dir is None else Path(os.fspath(data_dir))
    files = {split: directory / f"JapaneseVowels_{split}.ts" for split in ("TRAIN", "TEST")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Japanese Vowels data not found ({', '.join(missing)}); "
            + (_MISSING_AEON if data_dir is None else "pass the directory that holds both files")
        )
    n_dims = 12
    read = {split: _read_ts(path, n_dims) for split, path in files.items()}
    class_labels = read["TRAIN"][2]
    if read["TEST"][2] != class_labels:
        raise ValueError(f"the two splits declare different classes: {files}")
    longest = max(len(s) for series, _, _ in read.values() for s in series)
    if max_len < longest:
        raise ValueError(f"max_len={max_len} is shorter than the longest utterance ({longest})")
    index = {name: i for i, name in enumerate(class_labels)}
    arrays = {}
    for split, (series, labels, _) in read.items():
        x, lengths = _pad(series, max_len, n_dims)
        arrays[split] = (x, np.array([index[v] for v in labels], dtype=np.int32), lengths)
    try:
        version = importlib.metadata.version("aeon") if data_dir is None else None
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - unusual installs
        version = None
    source = {
        "package": "aeon" if data_dir is None else None,
        "version": version,
        "files": [str(p) for p in files.values()],
        "origin": "UCI Machine Learning Repository, Japanese Vowels, doi:10.24432/C5NS47",
        "reference": "Kudo, Toyama, Shimbo, Pattern Recognition Letters 20:1103-1111, 1999",
        "train_size": len(arrays["TRAIN"][0]),
        "test_size": len(arrays["TEST"][0]),
        "lengths": f"{longest} frames at most, padded with zeros at the end to {max_len}",
    }
    (x_train, y_train, len_train), (x_test, y_test, len_test) = arrays["TRAIN"], arrays["TEST"]
    return FrameDataset(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        lengths_train=len_train,
        lengths_test=len_test,
        labels=class_labels,
        max_len=max_len,
        source=source,
    )
