"""Behind a proxy or a firewall: the network probe and downloads honour HTTPS_PROXY /
HTTP_PROXY / ALL_PROXY / NO_PROXY, doctor probes HF_ENDPOINT's mirror, and a data set
downloaded by hand is checked and placed by `dlcourse data import` (small local fixtures
stand in for the real files; their checksums are swapped in for the official ones)."""
import dataclasses
import gzip
import hashlib
import io
import pickle
import socketserver
import tarfile
import threading
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest

from dlcourse import CourseError, data, data_import

PROXY_VARS = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY",
              "https_proxy", "http_proxy", "all_proxy", "no_proxy"]


@pytest.fixture
def proxy(monkeypatch):
    """A tiny forward proxy on 127.0.0.1: GET of an absolute URL serves PAGES, CONNECT is
    answered 200 for hosts in ALLOWED (403 otherwise). Yields (url, log of request lines)."""
    log, pages, allowed = [], {}, {"data.invalid", "hf-mirror.invalid"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            log.append(f"GET {self.path}")
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def do_CONNECT(self):
            log.append(f"CONNECT {self.path}")
            self.send_response(200 if self.path.split(":")[0] in allowed else 403)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in PROXY_VARS + ["DLCOURSE_OFFLINE"]:
        monkeypatch.delenv(name, raising=False)   # also restores what use_all_proxy() sets
    data._network_answer.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}", log, pages
    server.shutdown()
    server.server_close()
    data._network_answer.clear()


def test_probe_goes_through_the_https_proxy(proxy, monkeypatch):
    url, log, _ = proxy
    monkeypatch.setenv("HTTPS_PROXY", url)
    assert data.network_available("data.invalid") is True   # a name no DNS resolves
    assert log == ["CONNECT data.invalid:443"]
    assert data.network_available("blocked.invalid") is False  # the proxy says 403
    assert log[-1] == "CONNECT blocked.invalid:443"


def test_probe_uses_all_proxy_and_respects_no_proxy(proxy, monkeypatch):
    url, log, _ = proxy
    monkeypatch.setenv("all_proxy", url)            # lower case works too
    monkeypatch.setenv("NO_PROXY", "localhost,.example.invalid")
    assert data.proxy_for("data.invalid") == url
    assert data.proxy_for("files.example.invalid") is None
    assert data.network_available("data.invalid") is True
    assert data.network_available("files.example.invalid", timeout=1.0) is False  # direct: no DNS
    assert log == ["CONNECT data.invalid:443"]


def test_download_goes_through_all_proxy(proxy, monkeypatch, tmp_path):
    url, log, pages = proxy
    payload = b"First Citizen:\n" * 50
    pages["http://data.invalid/input.txt"] = payload
    monkeypatch.setenv("ALL_PROXY", url)            # urllib alone would ignore this one
    dest = data.download("http://data.invalid/input.txt", tmp_path / "t.txt",
                         hashlib.sha256(payload).hexdigest(), timeout=5)
    assert dest.read_bytes() == payload and log == ["GET http://data.invalid/input.txt"]


def test_without_a_proxy_the_probe_goes_direct(proxy):
    _, log, _ = proxy
    assert data.proxy_for("data.invalid") is None
    assert data.network_available("data.invalid", timeout=1.0) is False and log == []


def test_proxy_password_is_never_printed():
    assert data.without_password("http://me:secret@proxy.corp:3128") == "http://proxy.corp:3128"


def test_hf_endpoint_names_the_host_doctor_probes(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert data.hf_host() == "huggingface.co"
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.com")
    assert data.hf_host() == "hf-mirror.com"


def test_doctor_probes_the_hf_mirror_through_the_proxy(proxy, monkeypatch, capsys):
    url, log, _ = proxy
    from dlcourse.__main__ import main

    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.invalid")
    monkeypatch.setenv("HTTPS_PROXY", url)
    main(["doctor"])
    out = capsys.readouterr().out
    assert "[OK] network: hf-mirror.invalid (Hugging Face" in out
    assert f"reachable through proxy {url}" in out and "huggingface.co" not in out
    assert "CONNECT hf-mirror.invalid:443" in log


# --- data import ---------------------------------------------------------------------------

@pytest.fixture
def data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DLCOURSE_OFFLINE", "1")
    return tmp_path / "data"


def md5(content):
    return hashlib.md5(content).hexdigest()


def test_import_tiny_shakespeare_and_its_crlf_copy(data_home, monkeypatch, tmp_path):
    text = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40
    source = dataclasses.replace(data.SOURCES["tinyshakespeare"],
                                 sha256=hashlib.sha256(text).hexdigest())
    monkeypatch.setitem(data.SOURCES, "tinyshakespeare", source)
    crlf = tmp_path / "input.txt"
    crlf.write_bytes(text.replace(b"\n", b"\r\n"))   # as a Windows editor may save it
    said = data_import.import_data("tinyshakespeare", [str(crlf)])
    assert "CRLF" in said[0]
    assert data.fetch("tinyshakespeare", offline=True).read_bytes() == text
    crlf.write_bytes(text[:-10])
    with pytest.raises(CourseError, match="is not tiny Shakespeare's input.txt: sha256"):
        data_import.import_data("tinyshakespeare", [str(crlf)])
    with pytest.raises(CourseError, match="not found"):
        data_import.import_data("tinyshakespeare", [str(tmp_path / "nothing.txt")])


def idx(magic, dims, payload):
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return gzip.compress(head + payload)


def test_import_mnist_files_one_by_one_or_as_a_folder(data_home, monkeypatch, tmp_path):
    from torchvision.datasets import MNIST

    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 3), ("t10k", 2)):
        files[f"{split}-images-idx3-ubyte.gz"] = idx(0x803, (n, 28, 28),
                                                     rng.integers(0, 256, n * 784, np.uint8).tobytes())
        files[f"{split}-labels-idx1-ubyte.gz"] = idx(0x801, (n,), bytes(range(n)))
    monkeypatch.setattr(MNIST, "resources", [(name, md5(b)) for name, b in files.items()])
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    first = data_import.import_data("mnist", [str(folder / "train-images-idx3-ubyte.gz")])
    assert "still needs: train-labels-idx1-ubyte.gz" in first[-1]
    assert data.torchvision_dataset("mnist", train=True, offline=True) is None  # incomplete
    said = data_import.import_data("mnist", [str(folder)])
    assert said[-1] == "MNIST complete: lessons will use it"
    train = data.torchvision_dataset("mnist", train=True, offline=True)
    assert len(train) == 3 and train[2][1] == 2
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"truncated")
    with pytest.raises(CourseError, match="damaged or not the official file: md5"):
        data_import.import_data("mnist", [str(folder / "t10k-labels-idx1-ubyte.gz")])
    unpacked = folder / "t10k-labels-idx1-ubyte"
    unpacked.write_bytes(b"x")
    with pytest.raises(CourseError, match="is unpacked: give t10k-labels-idx1-ubyte.gz"):
        data_import.import_data("mnist", [str(unpacked)])


def tar_gz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def test_import_cifar10_archive(data_home, monkeypatch, tmp_path):
    from torchvision.datasets import CIFAR10

    rng = np.random.default_rng(1)

    def batch(n):
        return pickle.dumps({"data": rng.integers(0, 256, (n, 3072), np.uint8),
                             "labels": list(rng.integers(0, 10, n))})

    members = {f"cifar-10-batches-py/data_batch_{i}": batch(2) for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = batch(4)
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {"label_names": [f"class{i}" for i in range(10)]})
    archive = tar_gz(members)
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive))
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", md5(members[
        f"cifar-10-batches-py/data_batch_{i}"])] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(members[
        "cifar-10-batches-py/test_batch"])]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(members[
        "cifar-10-batches-py/batches.meta"])})
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(archive)
    assert "torchvision accepts it" in data_import.import_data("cifar10", [str(path)])[0]
    assert len(data.torchvision_dataset("cifar10", train=False, offline=True)) == 4
    other = tmp_path / "cifar-10-binary.tar.gz"
    other.write_bytes(archive + b"\0")
    with pytest.raises(CourseError, match="the course needs the python one"):
        data_import.import_data("cifar10", [str(other)])


def test_import_refuses_an_archive_that_escapes_its_folder(data_home, monkeypatch, tmp_path):
    from torchvision.datasets import CIFAR10

    archive = tar_gz({"../outside.txt": b"x"})
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive))
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(archive)
    with pytest.raises(CourseError, match="refusing to unpack it"):
        data_import.import_data("cifar10", [str(path)])
    assert not (data_home / "outside.txt").exists()


def test_import_california_housing_through_scikit_learn(data_home, monkeypatch, tmp_path):
    import sklearn.datasets._california_housing as ch

    rows = "\n".join(",".join(str(v) for v in (-122.2 - i, 37.9, 41, 880, 129, 322, 126,
                                               8.3 + i, 452600 + i)) for i in range(5))
    archive = tar_gz({"CaliforniaHousing/cal_housing.data": rows.encode()})
    monkeypatch.setattr(ch, "ARCHIVE", ch.ARCHIVE._replace(
        checksum=hashlib.sha256(archive).hexdigest()))
    path = tmp_path / "cal_housing.tgz"
    path.write_bytes(archive)
    assert "scikit-learn processed" in data_import.import_data("california_housing",
                                                               [str(path)])[0]
    X, y = data.california_housing(offline=True)
    assert X.shape == (5, 8) and y.iloc[4] == pytest.approx(4.52604)
    assert ch._fetch_remote.__name__ == "_fetch_remote"   # scikit-learn's own, put back
    path.write_bytes(archive[:-5])
    with pytest.raises(CourseError, match="is not cal_housing.tgz"):
        data_import.import_data("california_housing", [str(path)])


def test_import_cli_errors_are_one_line(tmp_path):
    from conftest import REPO, offline_env
    import subprocess
    import sys

    for args in (["nosuchset", "x"], ["mnist", str(tmp_path / "missing.gz")],
                 ["titanic", str(tmp_path / "missing.csv")]):
        result = subprocess.run([sys.executable, "-m", "dlcourse", "data", "import", *args],
                                cwd=REPO, env=offline_env(tmp_path), capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def titanic_csv(rows=1309, survivors=500, header=None):
    header = header or ("pclass,survived,name,sex,age,sibsp,parch,ticket,fare,cabin,embarked,"
                        "boat,body,home.dest")
    lines = [header] + [f'{1 + i % 3},{int(i < survivors)},"Doe, Mr. {i}",male,'
                        f'{"?" if i % 5 == 0 else 30},0,0,A{i},7.25,?,S,?,?,"Town, ST"'
                        for i in range(rows)]
    return "\n".join(lines) + "\n"


def test_import_titanic_from_openml_csv(data_home, tmp_path):
    from dlcourse import data

    path = tmp_path / "phpMYEkMl.csv"
    for text, says in [(titanic_csv(rows=1000), "1000 rows"),
                       (titanic_csv(header="PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,"
                                           "Parch,Ticket,Fare,Cabin,Embarked"), "Kaggle's"),
                       (titanic_csv(header="a,b,c,d,e,f,g,h,i,j,k,l,m,n"), "columns")]:
        path.write_text(text)
        with pytest.raises(CourseError, match=says):
            data_import.import_data("titanic", [str(path)])
    assert data.titanic(offline=True) is None               # nothing placed by a refusal
    path.write_text(titanic_csv())
    said = data_import.import_data("titanic", [str(path)])
    assert "1309 passengers" in said[0]
    frame = data.titanic(offline=True)
    assert frame.shape == (1309, 14) and frame["age"].isna().sum() == 262  # '?' is missing
