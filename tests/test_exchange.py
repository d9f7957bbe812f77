"""Arrays to and from the engine worker through shared files that stay mapped (art_ai_addon/exchange.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from art_ai_addon.exchange import SharedFiles, decode, encode
from art_ai_addon.worker import WorkerClient, _remove_stale


@pytest.fixture
def folder(tmp_path):
    return tmp_path


def test_values_round_trip_and_inputs_are_read_only(folder):
    mine, theirs = SharedFiles(folder, "c"), SharedFiles(folder, "w")
    img = np.random.default_rng(0).random((5, 7, 4), dtype=np.float32)
    sent = encode({"image": img[::-1], "sizes": (3, "x"), "none": None}, mine)  # a flipped view: copied in
    got = decode(sent, theirs, copy=False, writeable=False)
    np.testing.assert_array_equal(got["image"], img[::-1])
    assert got["sizes"] == (3, "x") and got["none"] is None
    with pytest.raises(ValueError):
        got["image"][0, 0, 0] = 1.0  # the worker's engine code cannot write into Blender's pixels


def test_a_file_is_reused_only_when_free(folder):
    mine = SharedFiles(folder, "c")
    a = np.ones((64, 64, 4), np.float32)
    first = mine.put(a)["path"]
    assert mine.put(a)["path"] != first  # the other side has not released the first one yet
    mine.release([first])
    assert mine.put(a)["path"] == first  # released and nobody holds a view: reused, no new file
    mine.release([str(p) for p in folder.iterdir()])  # both files free again
    held = mine.array((64, 64, 4))  # a view we hold keeps its file ours
    assert mine.put(a)["path"] != mine._where(held)["path"]
    assert len(list(folder.iterdir())) == 2  # two files served four puts


def test_an_array_in_a_shared_file_travels_without_a_copy(folder):
    mine, theirs = SharedFiles(folder, "c"), SharedFiles(folder, "w")
    buf = mine.array((8, 8, 3))
    buf[:] = 0.25
    ref = mine.put(buf)
    view = decode({"__shm__": ref}, theirs, copy=False)
    buf[0, 0, 0] = 0.75  # written after sending: the other side sees the same memory
    assert view[0, 0, 0] == 0.75


def test_views_given_back_are_released_once_dropped(folder):
    mine, theirs = SharedFiles(folder, "w"), SharedFiles(folder, "c")
    ref = {"__shm__": mine.put(np.zeros((4, 4), np.float32))}
    view = decode(ref, theirs, copy=False)
    assert theirs.releasable() == []  # still held
    del view
    assert theirs.releasable() == [ref["__shm__"]["path"]]


def test_free_files_beyond_the_limit_are_removed(folder):
    mine = SharedFiles(folder, "c", keep_bytes=3 * 4096 * 4)
    paths = []
    for n in (4096, 8192, 16384):  # sizes that cannot reuse each other's file
        paths.append(mine.put(np.zeros(n, np.float32))["path"])
        mine.release(paths)
    assert not os.path.exists(paths[0]) and os.path.exists(paths[-1])
    assert paths[0] in mine.removed()
    mine.close()
    assert list(folder.iterdir()) == []


def test_stale_folders_of_dead_sessions_are_removed(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead, alive = tmp_path / f"c{proc.pid}-deadbeef", tmp_path / f"c{os.getpid()}-cafe0000"
    for d in (dead, alive):
        d.mkdir()
        (d / "c-x.bin").write_bytes(b"\0" * 16)
    _remove_stale(tmp_path)
    assert not dead.exists() and alive.exists()


def test_worker_round_trips_reuse_files_and_keep_held_results():
    client = WorkerClient(sys.executable, idle_timeout=0)
    try:
        img = np.random.default_rng(1).random((32, 48, 4), dtype=np.float32)
        first, _ = client.run("echo", {"value": img}, copy=False)
        np.testing.assert_array_equal(first, img)
        folder = client.files.folder
        for _ in range(4):
            again, _ = client.run("echo", {"value": img * 0.5}, copy=False)
            np.testing.assert_array_equal(again, img * 0.5)
            del again
        np.testing.assert_array_equal(first, img)  # a result we still hold is never overwritten by later jobs
        assert len(list(folder.iterdir())) <= 4  # files are reused, not one per job
        buf = client.array(img.shape)
        buf[:] = img[::-1]
        back, _ = client.run("echo", {"value": buf})
        np.testing.assert_array_equal(back, img[::-1])
    finally:
        client.stop()
    assert not folder.exists()  # stop removes the session's shared files
