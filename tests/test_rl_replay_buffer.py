"""Vision replay buffer: frame dedup, aligned sampling, crash-safe persistence."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from robot_stack.rl.labelling import Transition
from robot_stack.rl.replay_buffer import VisionReplayBuffer, concat_batches, sample_mixed
from robot_stack.types.spec import ActionSpec, CameraSpec, PolicySpec

SPEC = PolicySpec(cameras=(CameraSpec("front", 16, 16), CameraSpec("wrist", 16, 16)),
                  proprio_names=("x", "y", "z"), action=ActionSpec())


def make_obs(ep: int, i: int) -> dict:
    """Observation whose content encodes (episode, step) so alignment can be checked."""
    val = (ep * 31 + i) % 256
    return {"front": np.full((16, 16, 3), val, np.uint8), "wrist": np.full((16, 16, 3), 255 - val, np.uint8),
            "proprio": np.array([ep, i, 0.5], np.float32)}


def episode_transitions(ep: int, length: int, terminal: bool = False):
    obs = [make_obs(ep, i) for i in range(length + 1)]
    for i in range(length):
        yield Transition(obs=obs[i], action=np.array([ep, i, 0], np.float32), reward=-float(i % 2),
                         next_obs=obs[i + 1], terminal=terminal and i == length - 1, intervention=i % 3 == 0,
                         episode_id=ep, step_index=i, episode_end=i == length - 1)


def fill(buf, episodes, length):
    for ep in range(episodes):
        for t in episode_transitions(ep, length, terminal=ep % 2 == 0):
            buf.add(t)


def test_each_frame_is_stored_once_bytes_per_step_within_5_percent_of_raw_images():
    length = 50
    buf = VisionReplayBuffer(SPEC, capacity=length * 40)
    fill(buf, 60, length)  # wraps around the ring
    raw = buf.raw_image_bytes_per_step()
    lowdim = 4 * (SPEC.proprio_dim + SPEC.action.dim) + 4 + 3 + 8  # proprio, action, reward, flags, episode
    per_step = buf.nbytes() / len(buf)
    assert per_step <= 1.05 * raw + 1.05 * lowdim, (per_step, raw)
    # A copy per next_obs would need about 2x raw.
    assert per_step < 1.5 * raw


def test_sampled_batches_are_aligned_and_never_cross_episode_boundaries():
    buf = VisionReplayBuffer(SPEC, capacity=7 * 13 + 5)  # odd size: wraps mid-episode
    fill(buf, 30, 7)
    b = buf.sample(2000, np.random.default_rng(0))
    ep, i = b["action"][:, 0], b["action"][:, 1]
    np.testing.assert_array_equal(b["obs"]["proprio"][:, 0], ep)
    np.testing.assert_array_equal(b["obs"]["proprio"][:, 1], i)
    np.testing.assert_array_equal(b["next_obs"]["proprio"][:, 0], ep)
    np.testing.assert_array_equal(b["next_obs"]["proprio"][:, 1], i + 1)
    np.testing.assert_array_equal(b["next_obs"]["front"][:, 0, 0, 0], ((ep * 31 + i + 1) % 256).astype(np.uint8))
    np.testing.assert_array_equal(b["obs"]["wrist"][:, 0, 0, 0], (255 - (ep * 31 + i) % 256).astype(np.uint8))
    np.testing.assert_array_equal(b["reward"], -(i % 2))
    np.testing.assert_array_equal(b["terminal"], ((ep % 2 == 0) & (i == 6)).astype(np.float32))
    np.testing.assert_array_equal(b["intervention"], (i % 3 == 0).astype(np.float32))
    assert ep.min() >= 30 - (7 * 13 + 5) // 8 - 1  # only recent episodes survive the wrap


def test_mixed_sampling_takes_the_configured_share_from_each_buffer():
    online, offline = VisionReplayBuffer(SPEC, 200), VisionReplayBuffer(SPEC, 200)
    fill(online, 3, 10)
    for t in episode_transitions(99, 10):
        offline.add(t)
    b = sample_mixed(online, offline, 64, np.random.default_rng(1), offline_fraction=0.25)
    assert (b["action"][:, 0] == 99).sum() == 16 and len(b["reward"]) == 64
    empty = VisionReplayBuffer(SPEC, 10)
    assert (sample_mixed(online, empty, 32, np.random.default_rng(1))["action"][:, 0] != 99).all()
    c = concat_batches(b, b)
    assert c["obs"]["front"].shape == (128, 16, 16, 3)


def test_persisted_buffer_restores_identically_and_ignores_a_torn_tail(tmp_path):
    path = tmp_path / "log.bin"
    with VisionReplayBuffer(SPEC, 100, path, sync="flush") as buf:
        fill(buf, 4, 9)
    size = path.stat().st_size
    with open(path, "ab") as f:  # a half-written record: header promises more than is there
        f.write(b"RSRB" + (5000).to_bytes(4, "little") + b"\0\0\0\0" + b"x" * 100)
    with VisionReplayBuffer(SPEC, 100, path) as back:
        assert len(back) == 36
        assert path.stat().st_size == size  # torn tail cut off
        a, b = buf.sample(500, np.random.default_rng(3)), back.sample(500, np.random.default_rng(3))
        for k in ("action", "reward", "terminal", "intervention"):
            np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a["next_obs"]["front"], b["next_obs"]["front"])
        for t in episode_transitions(4, 3):  # appending after recovery works
            back.add(t)
    with VisionReplayBuffer(SPEC, 100, path) as again:
        assert len(again) == 39


def test_corrupt_record_is_not_loaded(tmp_path):
    path = tmp_path / "log.bin"
    with VisionReplayBuffer(SPEC, 100, path, sync="flush") as buf:
        fill(buf, 1, 5)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # flip a byte inside the last record
    path.write_bytes(bytes(data))
    with VisionReplayBuffer(SPEC, 100, path) as back:
        assert len(back) == 4


def _record_offsets(data: bytes) -> list[int]:
    """Start of every record (the log is intact when this is called)."""
    from robot_stack.types import record_log

    return [c.start for c in record_log.scan(data)]


def _restored_keys(path) -> set:
    with VisionReplayBuffer(SPEC, 10_000, path) as back:
        slots = np.flatnonzero(back._valid)
        return {(int(back._action[s, 0]), int(back._action[s, 1])) for s in slots}, back.restore_report


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_damage_costs_the_damaged_records_only_and_goes_to_quarantine(tmp_path, where):
    """16 flipped bytes (the spec record at the start, a record in the middle of a 656-record log,
    the last record): every intact record survives, the damaged bytes move to the quarantine
    file, the log is left holding the intact records, and appending and reopening work."""
    path = tmp_path / "log.bin"
    with VisionReplayBuffer(SPEC, 10_000, path, sync="flush") as buf:
        fill(buf, 41, 16)  # 656 transitions + the spec record
    data = bytearray(path.read_bytes())
    starts = _record_offsets(bytes(data))
    assert len(starts) == 657
    victim = {"start": 0, "middle": 329, "end": 656}[where]
    hit = starts[victim] + 12 if where == "start" else starts[victim] + 200
    for i in range(16):
        data[hit + i] ^= 0x5A
    damaged = bytes(data[starts[victim]:starts[victim + 1] if victim + 1 < len(starts) else len(data)])
    path.write_bytes(bytes(data))

    keys, report = _restored_keys(path)
    lost = set() if where == "start" else {divmod(victim - 1, 16)}
    want = {(ep, i) for ep in range(41) for i in range(16)} - lost
    assert keys == want, f"lost {sorted(want - keys)[:5]}..."
    assert report.damaged_records == 1 and report.damaged_bytes == len(damaged)
    q = report.quarantine.read_bytes()
    assert q[:4] == b"RSRQ" and q.endswith(damaged), "the damaged bytes are in the quarantine file"

    # The log now holds the intact records only: reopening finds nothing damaged, and an append
    # after it is restored too.
    with VisionReplayBuffer(SPEC, 10_000, path, sync="flush") as again:
        assert not again.restore_report and len(again) == len(want)
        for t in episode_transitions(99, 3):
            again.add(t)
    keys2, report2 = _restored_keys(path)
    assert not report2 and keys2 == want | {(99, i) for i in range(3)}


def test_every_intact_record_survives_scattered_damage(tmp_path):
    """Damage to k records (flipped bytes, a cut, garbage inserted) loses at most those k."""
    path = tmp_path / "log.bin"
    with VisionReplayBuffer(SPEC, 10_000, path, sync="flush") as buf:
        fill(buf, 10, 10)
    data = bytearray(path.read_bytes())
    starts = _record_offsets(bytes(data))
    rng = np.random.default_rng(5)
    victims = sorted(rng.choice(np.arange(1, 101), 7, replace=False).tolist())
    for v in victims[:5]:
        data[starts[v] + int(rng.integers(0, 300))] ^= 0xFF
    # a record's header marker damaged, and 50 bytes of garbage (holding a marker) after another
    data[starts[victims[5]]] = ord("X")
    cut = starts[victims[6]] + 5
    data[cut:cut] = b"RSRB" + bytes(rng.integers(0, 256, 46, dtype=np.uint8))
    path.write_bytes(bytes(data))
    keys, report = _restored_keys(path)
    want = {(ep, i) for ep in range(10) for i in range(10)}
    lost = want - keys
    assert len(lost) <= 7 and lost <= {divmod(v - 1, 10) for v in victims}, (sorted(lost), victims)
    assert report.damaged_records >= len(lost)


def test_robot_records_resync_after_damage_and_keep_their_robot(tmp_path):
    """Interleaved robots' records (type 2, robot id in the record): a damaged one costs only
    itself, and the others restore under their own robot id."""
    import dataclasses

    path = tmp_path / "log.bin"
    streams = [[dataclasses.replace(t, robot_id=rid) for t in episode_transitions(ep, 6)]
               for rid, ep in (("arm1", 0), ("lab/arm2", 0), ("", 1))]
    with VisionReplayBuffer(SPEC, 10_000, path, sync="flush") as buf:
        for i in range(6):
            for s in streams:
                buf.add(s[i])
    data = bytearray(path.read_bytes())
    starts = _record_offsets(bytes(data))
    victim = 1 + 3 * 2 + 1  # step 2 of lab/arm2
    data[starts[victim] + 150] ^= 0xFF
    path.write_bytes(bytes(data))
    with VisionReplayBuffer(SPEC, 10_000, path) as back:
        assert back.robot_counts() == {"arm1": 6, "lab/arm2": 5, "": 6}
        assert back.restore_report.damaged_records == 1
        assert back.stored_steps == {"arm1": {0: 6}, "lab/arm2": {0: 6}, "": {1: 6}}
        batch = back.sample(200, np.random.default_rng(0))
        np.testing.assert_array_equal(batch["next_obs"]["proprio"][:, 1], batch["obs"]["proprio"][:, 1] + 1)
        np.testing.assert_array_equal(batch["obs"]["proprio"][:, 0], batch["action"][:, 0])


def test_an_older_log_without_observations_in_every_record_still_restores(tmp_path):
    """Logs written before records were self-contained store a continuing transition's obs only
    in the previous record: they restore, and a record whose predecessor is lost is quarantined."""
    from robot_stack.rl import replay_buffer as rb
    from robot_stack.types import record_log

    def legacy(t, has_obs):
        flags = (rb._F_HAS_OBS if has_obs else 0) | (rb._F_END if t.episode_end else 0)
        parts = [rb._STEP_HEAD.pack(rb._REC_STEP, flags, t.episode_id, t.step_index, t.reward),
                 np.asarray(t.action, np.float32).tobytes()]
        for o in ((t.obs, t.next_obs) if has_obs else (t.next_obs,)):
            parts += [o["front"].tobytes(), o["wrist"].tobytes(), o["proprio"].tobytes()]
        return record_log.frame(b"".join(parts))

    path = tmp_path / "log.bin"
    recs = [record_log.frame(bytes([rb._REC_SPEC]) + SPEC.to_json().encode())]
    for ep in range(2):
        recs += [legacy(t, t.step_index == 0) for t in episode_transitions(ep, 5)]
    path.write_bytes(b"".join(recs))
    keys, report = _restored_keys(path)
    assert keys == {(ep, i) for ep in range(2) for i in range(5)} and not report
    data = bytearray(path.read_bytes())
    starts = _record_offsets(bytes(data))
    data[starts[2] + 100] ^= 0xFF  # episode 0 step 1: step 2 (no obs of its own) is lost with it
    path.write_bytes(bytes(data))
    keys, report = _restored_keys(path)
    assert keys == {(0, 0), *((1, i) for i in range(5))}
    assert report.damaged_records == 4  # step 1 damaged; steps 2-4 continue it and cannot be used


def test_log_for_another_spec_is_refused(tmp_path):
    path = tmp_path / "log.bin"
    with VisionReplayBuffer(SPEC, 10, path):
        pass
    other = PolicySpec(proprio_names=("x",))
    with pytest.raises(ValueError, match="different policy spec"):
        VisionReplayBuffer(other, 10, path).open()




def test_kill_minus_9_while_appending_restores_every_acknowledged_step(tmp_path):
    """A child appends big steps and prints ACK after each add() returned; we kill -9 it."""
    path = tmp_path / "log.bin"
    code = textwrap.dedent(f"""
        import sys, numpy as np
        from robot_stack.types.spec import CameraSpec, PolicySpec
        from robot_stack.rl.labelling import Transition
        from robot_stack.rl.replay_buffer import VisionReplayBuffer
        spec = PolicySpec(cameras=(CameraSpec("front", 128, 128), CameraSpec("wrist", 128, 128)), proprio_names=("i",))
        def obs(k):
            return {{"front": np.full((128, 128, 3), k % 251, np.uint8), "wrist": np.full((128, 128, 3), k % 7, np.uint8),
                    "proprio": np.array([k], np.float32)}}
        with VisionReplayBuffer(spec, 100000, {str(path)!r}, sync="flush") as buf:
            k = 0
            while True:
                # 20-step episodes; every record carries >= 96 KiB of images, so kills land mid-write.
                i = k % 20
                buf.add(Transition(obs=obs(k), action=np.array([k, 0, 0], np.float32), reward=0.0, next_obs=obs(k + 1),
                                   terminal=False, intervention=False, episode_id=k // 20, step_index=i,
                                   episode_end=i == 19))
                print("ACK", k, flush=True)
                k += 1
    """)
    rng = np.random.default_rng(0)
    for trial in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")})
        target = int(rng.integers(20, 60))
        acked = -1
        for line in proc.stdout:
            acked = int(line.split()[1])
            if acked >= target:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        from robot_stack.types.spec import CameraSpec as C
        spec = PolicySpec(cameras=(C("front", 128, 128), C("wrist", 128, 128)), proprio_names=("i",))
        buf = VisionReplayBuffer(spec, 100000, path).open()
        try:
            n = len(buf)
            assert n >= acked + 1, f"trial {trial}: acknowledged {acked + 1} steps, restored {n}"
            b = buf.sample(256, np.random.default_rng(trial))
            k = b["action"][:, 0].astype(int)
            np.testing.assert_array_equal(b["obs"]["proprio"][:, 0], k)
            np.testing.assert_array_equal(b["next_obs"]["proprio"][:, 0], k + 1)
            np.testing.assert_array_equal(b["next_obs"]["front"][:, 64, 64, 0], ((k + 1) % 251).astype(np.uint8))
            np.testing.assert_array_equal(b["obs"]["wrist"][:, 5, 5, 2], (k % 7).astype(np.uint8))
        finally:
            buf.close()
        path.unlink()
