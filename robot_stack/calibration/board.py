"""ChArUco board: configuration, printable rendering at true scale, detection, board pose.

Board frame (OpenCV's): origin at the outer top-left corner of the printed board (as it
appears in :func:`render_board_image`), x along the ``squares_x`` direction (to the right),
y along ``squares_y`` (down the page), z into the board. Units are metres.
"""
from __future__ import annotations

import dataclasses
import logging
import pathlib
from dataclasses import dataclass

import cv2
import numpy as np

from robot_stack.types.errors import BoardNotFoundError, CalibrationError
from robot_stack.types.geometry import make_T

log = logging.getLogger(__name__)

_MM_PER_INCH = 25.4


@dataclass(frozen=True)
class BoardConfig:
    """ChArUco board geometry; must match the printed board exactly (measure it!)."""

    squares_x: int = 7
    """Number of chessboard squares along x (board width)."""
    squares_y: int = 5
    """Number of chessboard squares along y (board height)."""
    square_length_m: float = 0.035
    """Side of one chessboard square in m, as measured on the print."""
    marker_length_m: float = 0.026
    """Side of one ArUco marker in m (smaller than the square)."""
    dictionary: str = "DICT_5X5_100"
    """OpenCV ArUco dictionary name (cv2.aruco.<name>)."""
    legacy_pattern: bool = False
    """Use the pre-4.6 OpenCV ChArUco layout (boards printed by old tools, even square counts)."""
    min_corners: int = 6
    """Fewest ChArUco corners for a detection to count as a view."""

    def validate(self) -> None:
        if self.squares_x < 3 or self.squares_y < 3:
            raise ValueError(f"squares_x and squares_y must be >= 3, got {self.squares_x}x{self.squares_y}")
        if not 0 < self.marker_length_m < self.square_length_m:
            raise ValueError(
                f"marker_length_m ({self.marker_length_m}) must be > 0 and smaller than square_length_m ({self.square_length_m})"
            )
        if not hasattr(cv2.aruco, self.dictionary):
            raise ValueError(f"unknown ArUco dictionary '{self.dictionary}' (e.g. DICT_5X5_100, DICT_4X4_50)")
        n_markers = (self.squares_x * self.squares_y) // 2
        dict_size = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)).bytesList.shape[0]
        if n_markers > dict_size:
            raise ValueError(f"board needs {n_markers} markers but {self.dictionary} has only {dict_size}")
        if self.min_corners < 4:
            raise ValueError("min_corners must be >= 4 (a board pose needs 4 points)")

    @property
    def size_m(self) -> tuple[float, float]:
        """(width, height) of the chessboard area in m."""
        return self.squares_x * self.square_length_m, self.squares_y * self.square_length_m

    @property
    def num_corners(self) -> int:
        return (self.squares_x - 1) * (self.squares_y - 1)


def make_board(cfg: BoardConfig) -> cv2.aruco.CharucoBoard:
    """The OpenCV board object for ``cfg``."""
    cfg.validate()
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, cfg.dictionary))
    board = cv2.aruco.CharucoBoard(
        (cfg.squares_x, cfg.squares_y), cfg.square_length_m, cfg.marker_length_m, dictionary
    )
    board.setLegacyPattern(cfg.legacy_pattern)
    return board


def render_board_image(cfg: BoardConfig, px_per_square: int = 100, margin_px: int = 0) -> np.ndarray:
    """Grey uint8 image of the board: ``px_per_square`` pixels per square, white margin around.

    The board's outer top-left corner is at pixel (margin_px, margin_px) (pixel-edge
    coordinates), so board point (x, y) m maps to ``margin + (x, y) * px_per_square / square``.
    """
    board = make_board(cfg)
    w = cfg.squares_x * px_per_square
    h = cfg.squares_y * px_per_square
    img = board.generateImage((w, h), marginSize=0, borderBits=1)
    if margin_px:
        img = cv2.copyMakeBorder(img, margin_px, margin_px, margin_px, margin_px, cv2.BORDER_CONSTANT, value=255)
    return img


def _print_layout(cfg: BoardConfig, dpi: float) -> tuple[int, float]:
    """(pixels per square, exact dpi) so that the printed square has the true length."""
    px = max(20, int(round(cfg.square_length_m * 1000 / _MM_PER_INCH * dpi)))
    exact_dpi = px / (cfg.square_length_m * 1000 / _MM_PER_INCH)
    return px, exact_dpi


def save_board_png(cfg: BoardConfig, path: str | pathlib.Path, dpi: float = 300.0) -> float:
    """Write the board as a PNG whose pHYs DPI makes it print at true scale; returns that DPI.

    Pixels per square are rounded to an integer and the stored DPI adjusted to match, so the
    square length on paper is exact when printed at 100 % ("actual size").
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    px, exact_dpi = _print_layout(cfg, dpi)
    margin = px // 2  # white quiet zone so the outer markers are detected
    img = render_board_image(cfg, px_per_square=px, margin_px=margin)
    plt.imsave(str(path), img, cmap="gray", vmin=0, vmax=255, dpi=exact_dpi)
    return exact_dpi


def save_board_pdf(cfg: BoardConfig, path: str | pathlib.Path, paper: str = "A4", dpi: float = 600.0) -> None:
    """Write a one-page PDF with the board at true scale, its parameters and a 100 mm check bar.

    ``paper`` is ``A4``, ``A3`` or ``letter``; landscape is chosen when the board is wider than
    high. Raises CalibrationError when the board does not fit on the page.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes_mm = {"A4": (210.0, 297.0), "A3": (297.0, 420.0), "LETTER": (215.9, 279.4)}
    if paper.upper() not in sizes_mm:
        raise CalibrationError(f"unknown paper '{paper}': use one of {sorted(sizes_mm)}")
    pw, ph = sizes_mm[paper.upper()]
    bw_mm, bh_mm = (v * 1000 for v in cfg.size_m)
    if bw_mm > bh_mm:
        pw, ph = ph, pw
    margin_mm = 8.0  # most printers cannot print closer to the edge
    caption_mm = 14.0
    if bw_mm + 2 * margin_mm > pw or bh_mm + 2 * margin_mm + caption_mm > ph:
        raise CalibrationError(
            f"board {bw_mm:.0f}x{bh_mm:.0f} mm does not fit on {paper} ({pw:.0f}x{ph:.0f} mm) with margins: "
            "use a larger paper or a smaller square_length_m"
        )
    px, _ = _print_layout(cfg, dpi)
    img = render_board_image(cfg, px_per_square=px)
    fig = plt.figure(figsize=(pw / _MM_PER_INCH, ph / _MM_PER_INCH))
    x0 = (pw - bw_mm) / 2
    y0 = (ph - bh_mm) / 2 + 5  # leave room for the caption below
    ax = fig.add_axes([x0 / pw, y0 / ph, bw_mm / pw, bh_mm / ph])
    ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    # 100 mm check bar: the operator measures it to confirm the printer did not scale.
    bar = fig.add_axes([x0 / pw, (y0 - 9) / ph, 100 / pw, 1.5 / ph])
    bar.set_facecolor("black")
    bar.set_xticks([])
    bar.set_yticks([])
    fig.text(
        x0 / pw,
        (y0 - 15) / ph,
        f"ChArUco {cfg.squares_x}x{cfg.squares_y}, square {cfg.square_length_m * 1000:.1f} mm, "
        f"marker {cfg.marker_length_m * 1000:.1f} mm, {cfg.dictionary}. Print at 100 %; the bar above is 100 mm.",
        fontsize=7,
    )
    fig.savefig(str(path), format="pdf", dpi=dpi)  # image placement snaps to 1/dpi inch
    plt.close(fig)


@dataclass
class BoardDetection:
    """ChArUco corners found in one image."""

    ids: np.ndarray
    """Corner ids, shape (N,), int."""
    image_points: np.ndarray
    """Corner pixel positions, shape (N, 2), float64 (OpenCV convention: pixel centres at integers)."""
    object_points: np.ndarray
    """Matching corner positions in the board frame, shape (N, 3), m."""
    image_size: tuple[int, int]
    """(width, height) of the image in pixels."""
    sharpness: float = float("nan")
    """Variance of the Laplacian of the image (higher is sharper)."""
    source: str = ""
    """Where the image came from (file name or topic + stamp), for reports."""

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask: np.ndarray) -> "BoardDetection":
        return dataclasses.replace(
            self, ids=self.ids[mask], image_points=self.image_points[mask], object_points=self.object_points[mask]
        )


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grey uint8 view of an image (grey, BGR/RGB or BGRA); colour order does not matter here."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3:
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    if img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return img


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: a standard blur measure (low = blurred)."""
    return float(cv2.Laplacian(to_gray(image), cv2.CV_64F).var())


class BoardDetector:
    """Detects one ChArUco board in images. Cheap to build; holds OpenCV detector objects."""

    def __init__(self, cfg: BoardConfig):
        self.cfg = cfg
        self.board = make_board(cfg)
        self._detector = cv2.aruco.CharucoDetector(self.board)
        self._corners_m = np.asarray(self.board.getChessboardCorners(), dtype=np.float64).reshape(-1, 3)

    def detect(self, image: np.ndarray, source: str = "") -> BoardDetection | None:
        """Corners in ``image``, or None when fewer than ``min_corners`` were found."""
        gray = to_gray(image)
        corners, ids, _, _ = self._detector.detectBoard(gray)
        if ids is None or len(ids) < self.cfg.min_corners:
            return None
        ids = ids.reshape(-1).astype(int)
        det = BoardDetection(
            ids=ids,
            image_points=corners.reshape(-1, 2).astype(np.float64),
            object_points=self._corners_m[ids].copy(),
            image_size=(gray.shape[1], gray.shape[0]),
            sharpness=sharpness(gray),
            source=source,
        )
        # All corners on one line give no pose (and break calibrateCamera).
        if self.board.checkCharucoCornersCollinear(ids.reshape(-1, 1)):
            return None
        return det

    def detect_or_raise(self, image: np.ndarray, source: str = "") -> BoardDetection:
        det = self.detect(image, source)
        if det is None:
            raise BoardNotFoundError(
                f"board not found in {source or 'image'} (need >= {self.cfg.min_corners} ChArUco corners): "
                "check that the board parameters match the print (squares, dictionary), that the whole board is "
                "lit evenly without glare, and that it fills a good part of the image"
            )
        return det


def estimate_board_pose(det: BoardDetection, K: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, float]:
    """(T_cam_board, RMS reprojection error px) from one detection with known intrinsics."""
    obj = det.object_points.reshape(-1, 1, 3)
    img = det.image_points.reshape(-1, 1, 2)
    dist = np.asarray(dist, dtype=np.float64).reshape(-1)
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise BoardNotFoundError(f"board pose could not be estimated in {det.source or 'image'}")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, dist, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
    rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - det.image_points) ** 2, axis=1))))
    R, _ = cv2.Rodrigues(rvec)
    return make_T(R, tvec.reshape(3)), rms
