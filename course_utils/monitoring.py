"""Drift detection for a deployed text classifier (chapter 11): two-sample tests on what it sees.

The question a monitor asks is whether today's inputs come from the same distribution as the
inputs the model was validated on. Following Rabanser et al. ("Failing Loudly", 2019): reduce each
text to a vector (a sentence embedding, or the model's own output probabilities), then run a
two-sample test between a reference window and the current window::

    stat, p = mmd_permutation_test(reference_emb, current_emb, permutations=500)
    p < 0.01   # -> raise a drift alarm

``mmd2_unbiased`` is the maximum mean discrepancy with a Gaussian (RBF) kernel, whose bandwidth is
the median distance between the pooled points; the permutation test shuffles the pooled points
between the two windows to see how large the statistic gets when there is no difference at all.
"""

from __future__ import annotations

import inspect
import random
import re

import torch


def rbf_kernel(a: torch.Tensor, b: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """``exp(-|a_i - b_j|^2 / (2 bandwidth^2))``. a: (n, d), b: (m, d) -> (n, m)."""
    return torch.exp(-torch.cdist(a, b).pow(2) / (2 * bandwidth**2))


def median_bandwidth(x: torch.Tensor) -> float:
    """The median pairwise distance between the rows of ``x`` (n, d): the usual kernel bandwidth."""
    d = torch.cdist(x, x)
    return float(d[torch.triu(torch.ones_like(d, dtype=torch.bool), diagonal=1)].median())


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> float:
    """Unbiased estimate of MMD² between samples x: (n, d) and y: (m, d).

    Mean kernel value within x and within y (diagonals left out), minus twice the mean across.
    Its expectation is 0 when both samples come from one distribution; it can come out negative.

    Example::

        mmd2_unbiased(torch.randn(100, 5), torch.randn(100, 5) + 1, bandwidth=2.0)   # about 0.25

    (Its expectation: 2 (1.5^-2.5) (1 - exp(-5/12)) = 0.247, for unit Gaussians 1 apart in each of 5
    dimensions at bandwidth 2.)
    """
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"each sample needs at least 2 rows, got {n} and {m}")
    kxx, kyy, kxy = rbf_kernel(x, x, bandwidth), rbf_kernel(y, y, bandwidth), rbf_kernel(x, y, bandwidth)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within_x + within_y - 2 * kxy.mean())


def mmd_permutation_test(x: torch.Tensor, y: torch.Tensor, *, permutations: int = 500,
                         seed: int = 0) -> tuple[float, float]:
    """``(MMD², p-value)``: how often a random re-split of the pooled rows gives an MMD² at least
    as large as the observed one. The +1s count the observed split as one of the permutations,
    so the p-value is never 0 (smallest: ``1 / (permutations + 1)``)."""
    pooled = torch.cat([x, y])
    bandwidth = median_bandwidth(pooled)
    observed = mmd2_unbiased(x, y, bandwidth)
    k = rbf_kernel(pooled, pooled, bandwidth)  # computed once; permutations only re-index it
    n, generator = len(x), torch.Generator().manual_seed(seed)
    at_least = 0
    for _ in range(permutations):
        idx = torch.randperm(len(pooled), generator=generator)
        at_least += _mmd2_from_kernel(k[idx][:, idx], n) >= observed
    return observed, (at_least + 1) / (permutations + 1)


def _mmd2_from_kernel(k: torch.Tensor, n: int) -> float:
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    m = len(k) - n
    return float((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
                 + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) - 2 * kxy.mean())


def docstring_sentences(n: int, *, seed: int = 0, min_words: int = 4, max_words: int = 40) -> list[str]:
    """``n`` English sentences from the docstrings of Python's standard library: text of another
    domain (software documentation) that every Python installation has, offline.

    Sentences are lower-cased and split from punctuation like SST-2's (``"returns a list ."``).
    """
    import argparse
    import collections
    import csv
    import datetime
    import email
    import functools
    import http.client
    import json
    import logging
    import os
    import pathlib
    import shutil
    import socket
    import subprocess
    import tarfile
    import threading
    import unittest
    import urllib.request
    import zipfile

    modules = [argparse, collections, csv, datetime, email, functools, http.client, json, logging, os,
               pathlib, shutil, socket, subprocess, tarfile, threading, unittest, urllib.request, zipfile]
    found = set()
    for module in modules:
        for _, member in inspect.getmembers(module):
            doc = inspect.getdoc(member) or ""
            for paragraph in doc.split("\n\n"):
                for sentence in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split())):
                    words = re.findall(r"[A-Za-z']+|[.,;:!?]", sentence.lower())
                    if min_words <= len(words) <= max_words and sentence[:1].isalpha():
                        found.add(" ".join(words))
    found = sorted(found)
    if len(found) < n:
        raise ValueError(f"asked for n={n} sentences; the standard library docstrings give only {len(found)}")
    return random.Random(seed).sample(found, n)
