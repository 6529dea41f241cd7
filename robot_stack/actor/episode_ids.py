"""Episode ids that keep counting across actor restarts (``episode_id_file``)."""
from __future__ import annotations

import os
import pathlib


class EpisodeIdFile:
    """Keeps the last finished episode id in a one-line file ('' path: not kept, start at 1)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def first_episode_id(self) -> int:
        """The id after the one in the file; 1 without a path or file. OSError/ValueError
        when the file is unreadable (the caller warns and starts at 1)."""
        if not self.path:
            return 1
        try:
            return int(pathlib.Path(self.path).read_text().strip()) + 1
        except FileNotFoundError:
            return 1

    def save(self, episode_id: int) -> None:
        """Write ``episode_id`` atomically (a temporary file renamed into place); OSError on failure."""
        if not self.path:
            return
        tmp = f"{self.path}.tmp"
        pathlib.Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w") as f:
            f.write(f"{episode_id}\n")
        os.replace(tmp, self.path)
