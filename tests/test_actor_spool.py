"""The actor's step spool (ROS-free): records wait on disk until the learner acknowledges them."""
from __future__ import annotations

import numpy as np
import pytest

from robot_stack.actor.spool import StepSpool
from robot_stack.rl.intake import ACCEPT, StepIntake, state_path
from robot_stack.types.records import StepAck, StepRecord


def record(ep: int, i: int, last: bool = False) -> StepRecord:
    obs = {"front": np.full((8, 8, 3), (ep * 7 + i) % 256, np.uint8), "proprio": np.array([ep, i], np.float32)}
    a = np.zeros(0, np.float32) if last else np.array([0.1, 0.2, -0.3], np.float32)
    return StepRecord(episode_id=ep, step_index=i, obs=obs, action=a, policy_action=a, is_first=i == 0,
                      is_last=last, stamp_s=100.0 + i, proprio_names=("a", "b"))


def keys(records) -> list[tuple[int, int]]:
    return [r.key for r in records]


@pytest.fixture(params=["disk", "memory"])
def spool(request, tmp_path):
    s = StepSpool(tmp_path / "spool" if request.param == "disk" else None, max_records=50, window=4,
                  resend_after_s=3.0, segment_records=5).open()
    yield s
    s.close()


def test_nothing_is_sent_without_a_learner_and_everything_after_it_arrives(spool):
    for i in range(10):
        spool.append(record(1, i))
    assert spool.take(0.0, learner_present=False) == [] and spool.pending == 10  # spooled, not lost
    # a subscriber that does not acknowledge (a recorder) gets each record once; they stay spooled
    assert keys(spool.take(0.0, learner_present=False, listeners=1)) == [(1, i) for i in range(4)]
    assert keys(spool.take(0.0, learner_present=False, listeners=1)) == [(1, i) for i in range(4, 8)]
    assert keys(spool.take(9.0, learner_present=False, listeners=1)) == [(1, 8), (1, 9)]  # no resend
    assert spool.pending == 10
    spool.on_ack(StepAck(learner_id=7, watermark=None), 0.0)  # a learner: everything again, for it
    assert keys(spool.take(0.1, True)) == [(1, 0), (1, 1), (1, 2), (1, 3)]  # window 4
    assert spool.take(0.2, True) == []
    spool.on_ack(StepAck(learner_id=7, watermark=(1, 1)), 0.3)
    assert keys(spool.take(0.3, True)) == [(1, 4), (1, 5)]
    assert spool.pending == 8 and spool.counters["acked"] == 2


def test_a_restarted_learner_gets_every_record_after_its_watermark_again(spool):
    for i in range(6):
        spool.append(record(3, i))
    spool.on_ack(StepAck(learner_id=1, watermark=None), 0.0)
    assert keys(spool.take(0.0, True)) == [(3, 0), (3, 1), (3, 2), (3, 3)]
    spool.on_ack(StepAck(learner_id=1, watermark=(3, 0)), 0.1)
    # learner 1 dies after storing step 1 (its last ack said step 0); learner 2 restored step 1
    spool.on_ack(StepAck(learner_id=2, watermark=(3, 1)), 5.0)
    assert keys(spool.take(5.0, True)) == [(3, 2), (3, 3), (3, 4), (3, 5)]
    assert spool.counters["resent"] == 2


def test_unacknowledged_records_are_sent_again_after_the_timeout(spool):
    for i in range(3):
        spool.append(record(1, i))
    spool.on_ack(StepAck(learner_id=1, watermark=None), 0.0)
    assert len(spool.take(0.0, True)) == 3
    assert spool.take(2.9, True) == []
    assert keys(spool.take(3.1, True)) == [(1, 0), (1, 1), (1, 2)]
    assert spool.counters["resent"] == 3


def test_the_spool_is_bounded_and_counts_what_it_drops(spool):
    for i in range(60):
        spool.append(record(1, i))
    assert spool.pending == 50 and spool.counters["dropped"] == 10
    spool.on_ack(StepAck(learner_id=1, watermark=None), 0.0)
    assert keys(spool.take(0.0, True))[0] == (1, 10)


def test_a_restarted_actor_sends_what_the_previous_one_left(tmp_path):
    d = tmp_path / "spool"
    a = StepSpool(d, segment_records=4).open()
    for i in range(10):
        a.append(record(2, i))
    a.on_ack(StepAck(learner_id=1, watermark=(2, 5)), 0.0)
    # the actor is killed: no close()
    segs = sorted(d.iterdir())
    assert len(segs) == 2  # the fully acknowledged first segment is gone
    data = bytearray(segs[-1].read_bytes())
    data[-20] ^= 0xFF  # and the last record was damaged on disk
    segs[-1].write_bytes(bytes(data))
    b = StepSpool(d, segment_records=4).open()
    b.on_ack(StepAck(learner_id=1, watermark=(2, 5)), 0.0)
    assert keys(b.take(0.0, True)) == [(2, 6), (2, 7), (2, 8)]
    assert b.counters["damaged"] == 1
    b.append(record(3, 0))
    b.on_ack(StepAck(learner_id=1, watermark=(2, 8)), 1.0)
    assert keys(b.take(1.0, True)) == [(3, 0)]
    b.close()


def test_spool_and_intake_lose_nothing_across_learner_restarts_and_losses(tmp_path):
    """A lossy link (records dropped in transit), learner restarts that forget what they had
    not stored, and an actor that keeps producing: every record reaches the learner once, in order."""
    rng = np.random.default_rng(0)
    spool = StepSpool(tmp_path / "spool", window=8, resend_after_s=1.0, segment_records=16).open()
    produced = [record(ep, i, last=i == 9) for ep in range(1, 21) for i in range(10)]
    stored: list[tuple[int, int]] = []
    learner_dir = tmp_path / "learner"
    learner_dir.mkdir()
    intake = StepIntake(state_path(learner_dir), gap_timeout_s=1e9)
    intake.load()
    learner_id, now = 1, 0.0
    spool.on_ack(StepAck(learner_id, intake.watermark), now)
    for k in range(3000):
        now += 0.1
        if produced and k % 2 == 0:
            spool.append(produced.pop(0))
        if rng.random() < 0.02:  # the learner is killed and restarts from its state file
            learner_id += 1
            intake = StepIntake(state_path(learner_dir), gap_timeout_s=1e9)
            intake.load()
            spool.on_ack(StepAck(learner_id, intake.watermark), now)
        for r in spool.take(now, learner_present=True):
            if rng.random() < 0.1:
                continue  # lost in transit
            if intake.admit(r) == ACCEPT:
                intake.commit(r.key, r.is_last, None, {})
                stored.append(r.key)
        spool.on_ack(StepAck(learner_id, intake.watermark), now)
        if not produced and spool.pending == 0:
            break
    want = [(ep, i) for ep in range(1, 21) for i in range(10)]
    assert stored == want, "records lost, duplicated or out of order"
    assert spool.pending == 0 and spool.counters["resent"] > 0
