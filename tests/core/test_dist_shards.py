"""Sharded evaluation under DDP (two gloo ranks on the CPU): each rank scores its shard of a set, and the gathered
per-image records and counts are those of one process scoring the whole set."""
import json

import torch
import torch.distributed as td
import torch.multiprocessing as mp

from core.dist import broadcast_buffers, gather_shards, sum_over_ranks


def _data(n=53):
    from loaders.datasets import ImageSet

    g = torch.Generator().manual_seed(0)
    return ImageSet(torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g),
                    torch.randint(0, 10, (n,), generator=g), "toy", "test", "test")


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 10)).eval()


def _rank(rank: int, world: int, store: str, out: str) -> None:
    from eval.accuracy import evaluate
    from eval.classify import Classifier
    from loaders.batches import Batches

    td.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        batches = Batches(_data(), 7, torch.device("cpu"), shard=(rank, world))
        result = evaluate(Classifier(_model()), batches)
        ranks = gather_shards(torch.tensor([rank]), world, world)
        # a rank's own counts (its shard: images rank, rank + 2, ...), summed over the ranks
        counts = sum_over_ranks(int(result["correct"][rank::world].sum()), len(batches.last_order))
        bn = torch.nn.BatchNorm1d(2)
        bn.running_mean.fill_(rank + 1)  # each rank's own statistics, as gloo DDP leaves them
        broadcast_buffers(bn)
        bn_sum = sum_over_ranks(int(bn.running_mean.sum()))  # rank 0's on both: 2 + 2
        if rank == 0:
            with open(out, "w") as f:
                json.dump({"correct": result["correct"].int().tolist(), "acc": result["acc"],
                           "ranks": ranks.tolist(), "counts": counts, "bn": bn_sum}, f)
    finally:
        td.destroy_process_group()


def test_two_ranks_gather_the_records_of_one_process(tmp_path):
    from eval.accuracy import evaluate
    from eval.classify import Classifier
    from loaders.batches import Batches

    out = tmp_path / "rank0.json"
    mp.spawn(_rank, args=(2, str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    got = json.loads(out.read_text())
    one = evaluate(Classifier(_model()), Batches(_data(), 7, torch.device("cpu")))
    assert got["correct"] == one["correct"].int().tolist()  # in the set's order, every image once (53: uneven)
    assert got["acc"] == one["acc"]
    assert got["ranks"] == [0, 1]
    assert got["counts"] == [int(one["correct"].sum()), 53]
    assert got["bn"] == [4]  # rank 0's BatchNorm statistics on every rank (without the broadcast, 2 + 4)


def test_outside_a_process_group_nothing_is_gathered():
    part = torch.tensor([True, False, True])
    assert gather_shards(part, 3, 1) is part
    assert sum_over_ranks(4, 9) == (4, 9)
