import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("WANDB_MODE", "disabled")  # tests that check W&B turn it on themselves
os.environ.setdefault("MPLBACKEND", "Agg")
# `make test` runs under the Makefile, which exports TRUSTLAB_LOCK_WAIT for its own commands; the tests of a busy
# lock expect the one-line refusal at once (the Make race test goes through make, which sets it again)
os.environ.pop("TRUSTLAB_LOCK_WAIT", None)
# one numba JIT cache for every test and the commands they start (UMAP compiles once per machine, not once per
# test's own cache folder): the one `make venv` warms (data/cache/numba, eval/umap_run.py warm_jit); the commands
# take NUMBA_CACHE_DIR when set
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "data" / "cache" / "numba"))
# `make test` runs two pytest workers with OMP_NUM_THREADS=1 each; alone, a test process takes both cores
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """SVHN, MNIST and CIFAR-10 in their official formats, made from real handwritten digits."""
    from tests.fixtures import write_all

    return write_all(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def weights_file(data_root) -> Path:
    return data_root / "resnet18-imagenet.pth"


@pytest.fixture
def python() -> str:
    return sys.executable


def pytest_collection_modifyitems(config, items):
    """The long end-to-end runs (marked slow; `cost` in seconds, 60 unless given) start first, spread over the
    workers: under `pytest -n N --dist worksteal` worker i starts on the i-th slice of the collection, so each
    slice begins with its share of the slow tests (the longest first, each to the least loaded slice) and then
    the short ones. No long run is left to end the suite alone on one core."""
    # the collection that counts is the workers' own; xdist tells each worker how many there are
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if workers < 2:
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
        return
    cost = lambda item: item.get_closest_marker("slow").kwargs.get("cost", 60)
    slow = sorted((i for i in items if i.get_closest_marker("slow")), key=cost, reverse=True)
    fast = [i for i in items if not i.get_closest_marker("slow")]
    groups = [[] for _ in range(workers)]
    for item in slow:
        min(groups, key=lambda g: sum(map(cost, g))).append(item)
    size = len(items) // workers  # worksteal hands worker i the items [i * size, (i + 1) * size), the last the rest
    ordered = []
    for i, group in enumerate(groups):
        take = max(0, (size if i < workers - 1 else len(fast)) - len(group))
        ordered += group + fast[:take]
        fast = fast[take:]
    items[:] = ordered + fast
