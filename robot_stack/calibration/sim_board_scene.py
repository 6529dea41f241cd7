"""A self-contained MuJoCo scene for end-to-end calibration checks.

A fixed camera (known ``fovy``, resolution and pose) looks at a ChArUco board textured onto
a plane carried by a mocap body (the "end effector"). Moving the body and rendering gives
the views an eye-to-hand calibration would see; the true intrinsics and T_world_cam are known.

MuJoCo cameras look along -z with y up; OpenCV cameras along +z with y down, so
T_world_cam(OpenCV) = T_world_cam(MuJoCo) @ diag(1, -1, -1). MuJoCo's image of a camera with
vertical field of view ``fovy`` has fy = fx = (H/2) / tan(fovy/2) and its principal point at the
image centre, which in OpenCV pixel coordinates (pixel centres at integers) is (W/2 - 0.5, H/2 - 0.5).
"""
from __future__ import annotations

import pathlib
import tempfile

import numpy as np

from robot_stack.types.geometry import R_to_quat_xyzw, invert, make_T, rotvec_to_R

from .board import BoardConfig, render_board_image

_FLIP_MJ_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


class BoardScene:
    """Context manager owning the MuJoCo model and renderer (nothing is opened in __init__)."""

    def __init__(self, board: BoardConfig, width: int = 640, height: int = 480, fovy_deg: float = 55.0,
                 cam_pos: tuple[float, float, float] = (1.1, 0.25, 0.75),
                 cam_xyaxes: tuple[float, ...] = (-0.22, 0.975, 0.0, -0.55, -0.124, 0.826),
                 board_offset_xyz_m: tuple[float, float, float] = (0.02, -0.01, 0.06),
                 px_per_square: int = 100):
        self.board = board
        self.width, self.height, self.fovy_deg = width, height, fovy_deg
        self._cam_pos, self._cam_xyaxes = cam_pos, cam_xyaxes
        self._board_offset = np.asarray(board_offset_xyz_m, dtype=np.float64)
        self._px_per_square = px_per_square
        self.model = self.data = self._renderer = None

    # -- truth -------------------------------------------------------------------------
    @property
    def K(self) -> np.ndarray:
        f = (self.height / 2) / np.tan(np.radians(self.fovy_deg) / 2)
        return np.array([[f, 0, self.width / 2 - 0.5], [0, f, self.height / 2 - 0.5], [0, 0, 1.0]])

    @property
    def T_body_board(self) -> np.ndarray:
        """Board frame (board.py convention) in the mocap body frame."""
        w, h = self.board.size_m
        # Texture row 0 is at the plane's +y edge: board x = plane x, board y = -plane y.
        T_plane_board = make_T(rotvec_to_R([np.pi, 0, 0]), [-w / 2, h / 2, 0])
        return make_T(np.eye(3), self._board_offset) @ T_plane_board

    def T_world_cam(self) -> np.ndarray:
        """True OpenCV camera pose in the world (= robot base) frame."""
        cid = self.model.camera("calib_cam").id
        T_mj = make_T(self.data.cam_xmat[cid].reshape(3, 3), self.data.cam_xpos[cid])
        return T_mj @ _FLIP_MJ_TO_CV

    # -- life cycle --------------------------------------------------------------------
    def __enter__(self) -> "BoardScene":
        import mujoco  # imported here so the calibration core does not need MuJoCo

        self._mujoco = mujoco
        margin = self._px_per_square // 2
        tex = render_board_image(self.board, px_per_square=self._px_per_square, margin_px=margin)
        half = (np.array(tex.shape[::-1], dtype=float) / self._px_per_square * self.board.square_length_m) / 2
        with tempfile.TemporaryDirectory() as tmp:
            png = pathlib.Path(tmp) / "board.png"
            import cv2

            cv2.imwrite(str(png), tex)
            # Settings for fast software rendering: no shadows, no multisampling, flat light.
            xml = f"""
<mujoco model="calibration_board_scene">
  <visual>
    <global offwidth="{self.width}" offheight="{self.height}"/>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.75 0.75 0.75" diffuse="0.25 0.25 0.25" specular="0 0 0"/>
  </visual>
  <asset>
    <texture name="board" type="2d" file="{png}"/>
    <material name="board" texture="board" texrepeat="1 1" texuniform="false" specular="0" shininess="0" reflectance="0"/>
  </asset>
  <worldbody>
    <geom name="floor" type="plane" size="2 2 0.5" rgba="0.35 0.35 0.38 1" pos="0 0 -0.3"/>
    <camera name="calib_cam" pos="{' '.join(map(str, self._cam_pos))}" xyaxes="{' '.join(map(str, self._cam_xyaxes))}" fovy="{self.fovy_deg}"/>
    <body name="ee" mocap="true" pos="0.4 0 0.3">
      <geom name="board" type="plane" size="{half[0]} {half[1]} 0.1" material="board" pos="{' '.join(map(str, self._board_offset))}"/>
    </body>
  </worldbody>
</mujoco>"""
            self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, self.data)
        self._renderer = mujoco.Renderer(self.model, self.height, self.width)
        return self

    def __exit__(self, *exc) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # -- use ---------------------------------------------------------------------------
    def set_ee_pose(self, T_world_ee: np.ndarray) -> None:
        q = R_to_quat_xyzw(T_world_ee[:3, :3])
        self.data.mocap_pos[0] = T_world_ee[:3, 3]
        self.data.mocap_quat[0] = [q[3], q[0], q[1], q[2]]  # MuJoCo is w, x, y, z
        self._mujoco.mj_forward(self.model, self.data)

    def ee_pose_for_view(self, T_cam_board: np.ndarray) -> np.ndarray:
        """EE pose that puts the board at ``T_cam_board`` in the camera."""
        return self.T_world_cam() @ T_cam_board @ invert(self.T_body_board)

    def render(self) -> np.ndarray:
        """RGB uint8 image (H, W, 3) from the calibration camera, row 0 at the top."""
        self._renderer.update_scene(self.data, camera="calib_cam")
        return self._renderer.render().copy()
