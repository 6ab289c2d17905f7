"""Batches' epochs: under DDP every training rank takes the same number of steps, and no step is one image."""
import pytest
import torch

from loaders.batches import Batches
from loaders.datasets import ImageSet


def data(n):
    return ImageSet(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n) % 10, "toy", "train", "memory")


@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("batch", [2, 3, 8])
def test_training_ranks_take_equal_steps_and_lose_at_most_a_final_batch(world, batch):
    for n in range(world * 2, 70):
        shards = [Batches(data(n), batch, torch.device("cpu"), shuffle=True, shard=(r, world), drop_single=True)
                  for r in range(world)]
        sizes = [[len(y) for _, y in b.epoch(seed=n)] for b in shards]
        assert len({len(s) for s in sizes}) == 1, (n, sizes)  # the same steps on every rank: no collective waits
        assert all(len(s) == len(b) for s, b in zip(sizes, shards))
        assert all(k > 1 for s in sizes for k in s), (n, sizes)  # BatchNorm never sees a single image
        seen = sum(map(sum, sizes))
        assert n - seen < world * batch and (seen < n) == shards[0].drops_last(), (n, sizes)
        if world == 1:  # one process: only a final single image is left out, as before
            assert seen == n - int(n % batch == 1)


def test_fewer_than_two_training_images_a_rank_is_refused():
    from core.errors import UsageError

    with pytest.raises(UsageError, match="5 training images cannot be shared by 4 ranks"):
        Batches(data(5), 2, torch.device("cpu"), shard=(0, 4), drop_single=True)
    assert len(Batches(data(5), 2, torch.device("cpu"), shard=(0, 4))) == 1  # evaluation shards may be small


def test_evaluation_shards_keep_every_image():
    shards = [Batches(data(13), 4, torch.device("cpu"), shard=(r, 2)) for r in range(2)]
    assert [sum(len(y) for _, y in b.epoch()) for b in shards] == [7, 6]
