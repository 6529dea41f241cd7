"""Raw images to compressed images, CDR in and CDR out (ROS-free).

:class:`ImageCompressor` turns a serialised ``sensor_msgs/Image`` into a serialised
``sensor_msgs/CompressedImage`` with the ``compressed_image_transport`` conventions: the topic
``<image topic>/compressed``, ``format`` ``"<encoding>; jpeg compressed bgr8"`` for 8-bit colour
(``mono8`` stays mono), ``"<encoding>; png compressed"`` for 16-bit images (depth, lossless),
header kept. ``ros2 bag play`` then republishes what ``image_transport`` subscribers read, and
Foxglove's image panel shows it.
"""
from __future__ import annotations

import numpy as np

from robot_stack.recording.schemas import MessageTypes

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
_COLOR = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4}


def compressed_topic(topic: str) -> str:
    """``.../image_raw`` -> ``.../image_raw/compressed`` (image_transport's name)."""
    return topic.rstrip("/") + "/compressed"


class ImageCompressor:
    """Compress serialised ``sensor_msgs/Image`` messages; see the module docstring."""

    def __init__(self, types: MessageTypes, jpeg_quality: int = 90):
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {jpeg_quality}")
        self.types = types
        self.jpeg_quality = int(jpeg_quality)
        types.ensure(IMAGE)
        types.ensure(COMPRESSED_IMAGE)

    def compress(self, data: bytes | memoryview) -> bytes:
        """Image CDR -> CompressedImage CDR. ValueError for an encoding it cannot compress."""
        import cv2

        img = self.types.deserialize(data, IMAGE)
        enc = img.encoding.lower()
        h, w, step = int(img.height), int(img.width), int(img.step)
        buf = np.asarray(img.data, np.uint8)
        if h * step != buf.size or h == 0 or w == 0:
            raise ValueError(f"image {w}x{h} step {step} does not match its {buf.size} bytes")
        rows = buf.reshape(h, step)
        if enc in _COLOR:
            c = _COLOR[enc]
            arr = rows[:, : w * c].reshape(h, w, c)
            bgr = {"rgb8": lambda a: a[:, :, ::-1], "bgr8": lambda a: a,
                   "rgba8": lambda a: a[:, :, 2::-1], "bgra8": lambda a: a[:, :, :3]}[enc](arr)
            ok, out = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            fmt = f"{enc}; jpeg compressed bgr8"
        elif enc == "mono8":
            ok, out = cv2.imencode(".jpg", np.ascontiguousarray(rows[:, :w]), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            fmt = "mono8; jpeg compressed mono8"
        elif enc in ("16uc1", "mono16"):
            dtype = ">u2" if img.is_bigendian else "<u2"
            arr = rows[:, : 2 * w].copy().view(dtype).reshape(h, w).astype(np.uint16)
            ok, out = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            fmt = f"{img.encoding}; png compressed"
        else:
            raise ValueError(f"image encoding '{img.encoding}' cannot be compressed (rgb8, bgr8, rgba8, bgra8, "
                             "mono8, 16UC1, mono16)")
        if not ok:
            raise ValueError(f"OpenCV could not encode a {w}x{h} {img.encoding} image")
        msg = self.types.make(COMPRESSED_IMAGE, header=img.header, format=fmt, data=out.reshape(-1))
        return self.types.serialize(msg, COMPRESSED_IMAGE)


__all__ = ["COMPRESSED_IMAGE", "IMAGE", "ImageCompressor", "compressed_topic"]
