"""The record types (xpnet.training.history) and the batch order a checkpoint continues."""

from __future__ import annotations

import json

import numpy as np

from xpnet.training import BatchOrder, EpochRecord, History


def _history(**kw) -> History:
    return History(config={"iters": 9}, backend="numpy", device="cpu", dtype="float32", **kw)


def test_a_history_continues_from_its_saved_dict():
    """What a checkpoint does on resume: the saved evaluations, losses, step count and times
    come back as records; the new run keeps its own settings and device."""
    old = _history(epochs=[EpochRecord(1, 1, 0.1, 0.2, 2.3, 0.0),
                           EpochRecord(2, 4, 0.5, 0.6, 1.1, 1.5)],
                   loss=[2.3, 2.0, 1.5, 1.1, 1.0], iterations=5, train_time=2.0, wall_time=3.0)
    saved = json.loads(json.dumps(old.to_dict()))
    new = History(config={"iters": 20}, backend="torch", device="cuda:0", dtype="float32")
    new.continue_from(saved)
    assert new.epochs == old.epochs
    assert all(isinstance(e, EpochRecord) for e in new.epochs)
    assert (new.loss, new.iterations) == (old.loss, 5)
    assert (new.train_time, new.wall_time) == (2.0, 3.0)
    assert (new.config, new.backend, new.device) == ({"iters": 20}, "torch", "cuda:0")
    assert new.train_acc_list == [0.1, 0.5]
    assert new.test_acc_list == [0.2, 0.6]


def test_a_resumed_batch_order_gives_the_uninterrupted_batches():
    """Start again at step k from the permutation in use (none when it is used up), where it
    was drawn and the generator's state, as a checkpoint holds them: the same rows as the
    uninterrupted run."""
    whole = BatchOrder(np.random.default_rng(7), 10, 3, np, "cpu")
    rows = [whole(i).tolist() for i in range(8)]
    for k in range(1, 8):
        rng = np.random.default_rng(7)
        again = BatchOrder(rng, 10, 3, np, "cpu")
        for i in range(k):
            again(i)
        state = rng.bit_generator.state
        resumed_rng = np.random.default_rng()
        resumed_rng.bit_generator.state = state
        used_up = k - again.drawn_at >= again.per_epoch  # Checkpointer.save keeps none then
        resumed = BatchOrder(resumed_rng, 10, 3, np, "cpu", first=k, drawn_at=again.drawn_at,
                             host=None if used_up else again.host.copy())
        assert [resumed(i).tolist() for i in range(k, 8)] == rows[k:], k
    # 3 batches of 3 per epoch (one row left out), a new permutation each epoch
    assert rows[:3] != rows[3:6]
    assert all(len({row for batch in rows[e:e + 3] for row in batch}) == 9 for e in (0, 3))
