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
