"""Volume paths come only from API-issued uids and never leave <data>/volumes."""

from __future__ import annotations

import os
import uuid

import pytest
from hypothesis import given, strategies as st

from k1s.node.volumes import paths
from k1s.node.volumes.paths import UnsafePath

GOOD = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize("uid", [
    "../../etc", "..", "", "a/b", "0F8FAD5B-D9CB-469F-A165-70867728950E",
    GOOD + "/..", GOOD + "\x00", "/" + GOOD, GOOD[:-1], " " + GOOD, None, 5,
])
def test_malicious_uids_are_refused(uid):
    with pytest.raises(UnsafePath):
        paths.pv_name_for(uid)


@pytest.mark.parametrize("name", ["pvc-../../x", "data", "pvc-" + GOOD + "/../..", "../pvc-" + GOOD])
def test_malicious_volume_names_are_refused(tmp_path, name):
    with pytest.raises(UnsafePath):
        paths.volume_dir(str(tmp_path), name)


def test_paths_are_under_volumes(tmp_path):
    name = paths.pv_name_for(GOOD)
    assert name == "pvc-" + GOOD
    root = os.path.join(os.path.realpath(tmp_path), "volumes")
    assert paths.volume_dir(str(tmp_path), name) == os.path.join(root, name)
    assert paths.image_path(str(tmp_path), name) == os.path.join(root, name, "disk.img")
    assert paths.mount_path(str(tmp_path), name) == os.path.join(root, name, "mount")


def test_symlink_escape_is_refused(tmp_path):
    name = paths.pv_name_for(GOOD)
    os.makedirs(tmp_path / "volumes")
    os.symlink("/etc", tmp_path / "volumes" / name)
    with pytest.raises(UnsafePath):
        paths.volume_dir(str(tmp_path), name)


@given(st.text(max_size=60))
def test_only_uuids_are_accepted(text):
    try:
        name = paths.pv_name_for(text)
    except UnsafePath:
        return
    assert str(uuid.UUID(text)) == text and name == "pvc-" + text
