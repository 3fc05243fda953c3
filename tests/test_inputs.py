from pathlib import Path

import pytest

from offload_mcp.config import Limits
from offload_mcp.errors import InputError
from offload_mcp.inputs import read_inputs


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "a.txt").write_text("alpha\n")
    (root / "bin.dat").write_bytes(b"\x00\x01binary")
    (root / "latin1.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "outside.txt").write_text("secret stuff")
    return root


def test_reads_relative_and_absolute_paths(project: Path):
    files = read_inputs(["a.txt", str(project / "a.txt")], Limits(), cwd=project)
    assert [f.text for f in files] == ["alpha\n", "alpha\n"]
    assert files[0].path == "a.txt"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../outside.txt", "outside the allowed roots"),
        ("missing.txt", "does not exist"),
        ("bin.dat", "looks binary"),
        ("latin1.txt", "not UTF-8"),
        (".", "not a regular file"),
        ("  ", "empty path"),
    ],
)
def test_rejects_bad_files(project: Path, name: str, message: str):
    with pytest.raises(InputError, match=message):
        read_inputs([name], Limits(), cwd=project)


def test_symlink_escaping_the_root_is_refused(project: Path):
    (project / "link.txt").symlink_to(project.parent / "outside.txt")
    with pytest.raises(InputError, match="outside the allowed roots"):
        read_inputs(["link.txt"], Limits(), cwd=project)


def test_configured_roots_replace_the_working_directory(project: Path):
    limits = Limits(allowed_roots=[str(project.parent)])
    assert read_inputs(["../outside.txt"], limits, cwd=project)[0].text == "secret stuff"


def test_size_caps(project: Path):
    (project / "big.txt").write_text("x" * 100)
    with pytest.raises(InputError, match="over the 50-byte cap"):
        read_inputs(["big.txt"], Limits(max_file_bytes=50), cwd=project)
    with pytest.raises(InputError, match="together they exceed 150 bytes"):
        read_inputs(["big.txt", "big.txt"], Limits(max_input_bytes=150), cwd=project)
