"""Writing calibration files safely: never overwrite a previous result without a backup."""
from __future__ import annotations

import datetime as _dt
import logging
import os
import pathlib

import yaml

from robot_stack.types.errors import CalibrationFileError

log = logging.getLogger(__name__)


def backup_existing(path: str | os.PathLike) -> pathlib.Path | None:
    """Rename an existing ``path`` to ``<path>.bak-<UTC timestamp>``; return the backup path.

    Returns None when there is nothing to back up. A counter suffix keeps two backups made
    in the same second apart.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return None
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
        n += 1
    path.rename(backup)
    log.info("backed up previous %s to %s", path, backup)
    return backup


def write_text_with_backup(path: str | os.PathLike, text: str) -> pathlib.Path | None:
    """Write ``text`` to ``path`` atomically, backing up any existing file first.

    Returns the backup path (or None). The new content goes to a temporary file in the same
    folder and is renamed into place, so a crash never leaves a half-written calibration.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    backup = backup_existing(path)
    os.replace(tmp, path)
    return backup


def read_yaml_mapping(path: str | os.PathLike, what: str) -> dict:
    """Read a YAML file that must hold a mapping; CalibrationFileError names the problem."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CalibrationFileError(f"{what} file not found: {path} (run the calibration tool first or fix the path)")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise CalibrationFileError(f"cannot read {what} file {path}: {e}") from e
    except yaml.YAMLError as e:
        raise CalibrationFileError(f"{what} file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise CalibrationFileError(f"{what} file {path} must hold a YAML mapping, got {type(data).__name__}")
    return data
