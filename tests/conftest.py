import os

import matplotlib
import pytest

matplotlib.use("Agg")  # unit tests draw no windows
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_classifier_dir(tmp_path_factory):
    """A saved 2-layer random BERT classifier with the packaged MiniLM tokenizer: a real tokenizer
    and a model fast enough to serve in tests (tests/test_serving*.py)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from course_utils.models import packaged_encoder_path

    folder = tmp_path_factory.mktemp("tiny_classifier")
    tokenizer = AutoTokenizer.from_pretrained(packaged_encoder_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, num_labels=2,
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
