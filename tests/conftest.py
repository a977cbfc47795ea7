import os

import matplotlib

matplotlib.use("Agg")  # unit tests draw no windows
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
