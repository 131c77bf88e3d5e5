"""SHA-256 checks of model files (voice/model_integrity.py)."""

import hashlib
from pathlib import Path

import pytest

from voice.model_integrity import ModelIntegrityError, sha256_file, verify_sha256
from voice.models import ModelNotFound


def test_sha256_file_matches_hashlib_over_several_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # more than one 1 MB chunk
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_verify_accepts_the_pinned_bytes_in_either_case(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    verify_sha256(path, hashlib.sha256(b"weights").hexdigest().upper(), "test model")


def test_verify_refuses_other_bytes_naming_file_and_both_digests(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"tampered")
    expected = hashlib.sha256(b"weights").hexdigest()
    with pytest.raises(ModelIntegrityError) as caught:
        verify_sha256(path, expected, "test model")
    message = str(caught.value)
    assert str(path) in message and expected in message and hashlib.sha256(b"tampered").hexdigest() in message


def test_verify_reports_a_missing_file_as_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        verify_sha256(tmp_path / "absent.bin", "0" * 64, "test model")
