"""Synthetic board views from a known camera: the fake camera for tests and benchmarks.

Images are made by ray-casting each output pixel (through the lens distortion) onto the
board plane and sampling a high-resolution board texture, 2x supersampled, then blurred and
noised like a real sensor. The truth (K, distortion, T_cam_board) is known exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot_stack.types.geometry import invert, make_T, rotvec_to_R

from .board import BoardConfig, render_board_image


@dataclass(frozen=True)
class SyntheticCamera:
    """A pinhole camera with plumb-bob distortion (OpenCV convention)."""

    width: int = 640
    height: int = 480
    fx: float = 600.0
    fy: float = 602.0
    cx: float = 322.5
    cy: float = 236.0
    dist: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    """k1, k2, p1, p2, k3."""

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])


class BoardRenderer:
    """Renders a ChArUco board seen by a :class:`SyntheticCamera` at a given T_cam_board."""

    def __init__(self, board: BoardConfig, camera: SyntheticCamera, px_per_square: int = 120, supersample: int = 2):
        self.board = board
        self.camera = camera
        self.supersample = supersample
        self._margin_px = px_per_square // 2
        self._texture = render_board_image(board, px_per_square=px_per_square, margin_px=self._margin_px)
        self._px_per_m = px_per_square / board.square_length_m
        s = supersample
        # Output pixel centres of the supersampled grid, in the final image's pixel coordinates.
        us = (np.arange(camera.width * s) + 0.5) / s - 0.5
        vs = (np.arange(camera.height * s) + 0.5) / s - 0.5
        uu, vv = np.meshgrid(us, vs)
        pts = np.stack([uu.ravel(), vv.ravel()], axis=1).reshape(-1, 1, 2)
        # Undistorted normalized coordinates of every output pixel: computed once per camera.
        und = cv2.undistortPoints(pts, camera.K, np.asarray(camera.dist, dtype=np.float64))
        self._rays = np.concatenate([und.reshape(-1, 2), np.ones((pts.shape[0], 1))], axis=1)

    def render(
        self,
        T_cam_board: np.ndarray,
        rng: np.random.Generator | None = None,
        noise_std: float = 2.0,
        blur_sigma_px: float = 0.6,
        background: int = 110,
    ) -> np.ndarray:
        """Grey uint8 image of the board at ``T_cam_board`` (board frame as in board.py)."""
        cam = self.camera
        s = self.supersample
        H = np.column_stack([T_cam_board[:3, 0], T_cam_board[:3, 1], T_cam_board[:3, 3]])
        A = np.array([[self._px_per_m, 0, self._margin_px], [0, self._px_per_m, self._margin_px], [0, 0, 1.0]])
        # Texture pixel-edge coords -> cv2.remap pixel-centre coords: subtract 0.5.
        M = A @ np.linalg.inv(H)
        q = self._rays @ M.T
        w = q[:, 2]
        valid = w > 1e-9  # rays that hit the plane in front of the camera
        mx = np.full(w.shape, -1e4, dtype=np.float32)
        my = np.full(w.shape, -1e4, dtype=np.float32)
        mx[valid] = q[valid, 0] / w[valid] - 0.5
        my[valid] = q[valid, 1] / w[valid] - 0.5
        shape = (cam.height * s, cam.width * s)
        img = cv2.remap(
            self._texture, mx.reshape(shape), my.reshape(shape), cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=background,
        )
        img = cv2.resize(img, (cam.width, cam.height), interpolation=cv2.INTER_AREA).astype(np.float32)
        if blur_sigma_px > 0:
            img = cv2.GaussianBlur(img, (0, 0), blur_sigma_px)
        if noise_std > 0:
            rng = rng or np.random.default_rng()
            img = img + rng.normal(0.0, noise_std, img.shape)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def look_at_board(board: BoardConfig, cam_pos_board: np.ndarray, roll_rad: float = 0.0,
                  target_board: np.ndarray | None = None) -> np.ndarray:
    """T_cam_board for an OpenCV camera at ``cam_pos_board`` looking at ``target_board``.

    The board's z axis points into the board, so a camera in front of it has negative z.
    """
    w, h = board.size_m
    target = np.array([w / 2, h / 2, 0.0]) if target_board is None else np.asarray(target_board, float)
    z = target - cam_pos_board
    z /= np.linalg.norm(z)
    up = np.array([0.0, 1.0, 0.0])  # image y down ~ board y down
    x = np.cross(up, z)
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R_board_cam = np.column_stack([x, y, z]) @ rotvec_to_R([0, 0, roll_rad])
    return invert(make_T(R_board_cam, cam_pos_board))


def board_corners_visible(board: BoardConfig, camera: SyntheticCamera, T_cam_board: np.ndarray, border_px: float = 8) -> bool:
    """True when all four outer board corners project inside the image (with a border)."""
    w, h = board.size_m
    corners = np.array([[0, 0, 0], [w, 0, 0], [w, h, 0], [0, h, 0.0]])
    rvec, _ = cv2.Rodrigues(T_cam_board[:3, :3])
    if np.any((T_cam_board[:3, :3] @ corners.T + T_cam_board[:3, 3:4])[2] <= 0.05):
        return False
    proj, _ = cv2.projectPoints(corners, rvec, T_cam_board[:3, 3], camera.K, np.asarray(camera.dist, float))
    p = proj.reshape(-1, 2)
    return bool(np.all((p[:, 0] > border_px) & (p[:, 0] < camera.width - border_px)
                       & (p[:, 1] > border_px) & (p[:, 1] < camera.height - border_px)))


def sample_views(board: BoardConfig, camera: SyntheticCamera, n: int, rng: np.random.Generator,
                 distance_m: tuple[float, float] = (0.3, 0.6), max_tilt_deg: float = 40.0) -> list[np.ndarray]:
    """``n`` varied T_cam_board with the whole board in view (tilted, rolled, off-centre)."""
    w, h = board.size_m
    out: list[np.ndarray] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n:
            raise RuntimeError("could not sample enough board views: board too large for this camera")
        d = rng.uniform(*distance_m)
        tilt = np.radians(rng.uniform(0, max_tilt_deg))
        az = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), -np.cos(tilt)])
        target = np.array([w / 2, h / 2, 0]) + np.array([rng.uniform(-0.25, 0.25) * w, rng.uniform(-0.25, 0.25) * h, 0])
        T = look_at_board(board, target + d * direction, roll_rad=rng.uniform(-0.5, 0.5), target_board=target)
        if board_corners_visible(board, camera, T):
            out.append(T)
    return out


def hand_eye_scene(board: BoardConfig, camera: SyntheticCamera, n: int, rng: np.random.Generator,
                   mode: str, T_hand_eye: np.ndarray, T_fixed_board: np.ndarray,
                   max_tilt_deg: float = 35.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(T_base_ee list, true T_cam_board list) consistent with a known hand-eye transform.

    eye_in_hand: ``T_hand_eye`` = T_ee_cam, ``T_fixed_board`` = T_base_board (board on the table).
    eye_to_hand: ``T_hand_eye`` = T_base_cam, ``T_fixed_board`` = T_ee_board (board in the gripper).
    Board views are sampled like an operator would (varied tilt/roll/distance), then the robot
    pose that produces each view is computed.
    """
    T_cam_board = sample_views(board, camera, n, rng, max_tilt_deg=max_tilt_deg)
    if mode == "eye_in_hand":
        T_base_ee = [T_fixed_board @ invert(T) @ invert(T_hand_eye) for T in T_cam_board]
    elif mode == "eye_to_hand":
        T_base_ee = [T_hand_eye @ T @ invert(T_fixed_board) for T in T_cam_board]
    else:
        raise ValueError(f"mode must be eye_in_hand or eye_to_hand, got {mode!r}")
    return T_base_ee, T_cam_board
