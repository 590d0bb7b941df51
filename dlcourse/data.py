"""Where data lives, how it is downloaded, and what stands in for it offline.

- `root()` is the one data folder: $DLCOURSE_DATA, else `data/` in the course folder.
- `SOURCES` lists every data set the course downloads: by our own checksummed download
  (`url` + `sha256`) or through the library that owns it (torchvision, scikit-learn),
  which verifies its own checksums.
- Nothing here ever hangs without a network: `network_available()` answers within
  a few seconds, and downloads have timeouts.
- `offline_mode()` is True with --offline, --quick or DLCOURSE_OFFLINE=1 (the tests set it).
- `announce()` prints the one line that says which data a run used: downloaded, bundled with
  a package, or generated, and whether it stands in for a data set that could not be had.
"""
import base64
import hashlib
import os
import socket
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dlcourse import CourseError, shorten, syllabus

REPO = syllabus.REPO  # the course folder


@dataclass(frozen=True)
class Source:
    """One downloadable data set."""
    name: str
    description: str
    via: str                 # 'url' (our download + sha256), 'torchvision' or 'sklearn'
    url: str = ""
    sha256: str = ""
    filename: str = ""
    host: str = ""           # probed by network_available() before any download
    used_by: str = ""        # lessons that use it, for `dlcourse prefetch --list`


SOURCES = {s.name: s for s in [
    Source("tinyshakespeare", "Tiny Shakespeare, 1.1 MB of plays, character-level LM benchmark",
           "url", url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                      "tinyshakespeare/input.txt",
           sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
           filename="tinyshakespeare.txt", host="raw.githubusercontent.com", used_by="phase 6 capstone, phase 7, phase 12"),
    Source("titanic", "Titanic passengers (OpenML data_id 40945), 1309 rows",
           "sklearn", host="api.openml.org", used_by="phase 1 capstone"),
    Source("california_housing", "California housing, 20640 block groups",
           "sklearn", host="ndownloader.figshare.com", used_by="phase 4 capstone"),
    Source("mnist", "MNIST handwritten digits, 70k 28x28 images", "torchvision",
           host="ossci-datasets.s3.amazonaws.com", used_by="phase 3 capstone"),
    Source("cifar10", "CIFAR-10, 60k 32x32 colour images in 10 classes", "torchvision",
           host="www.cs.toronto.edu", used_by="phase 5 capstone"),
]}


def root():
    """The data folder (created on demand)."""
    path = Path(os.environ.get("DLCOURSE_DATA") or REPO / "data").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def env_flag(name):
    """True when an environment variable is set to 1/true/yes/on."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def offline_mode(flag=False):
    """True when the run must not touch the network."""
    return bool(flag) or env_flag("DLCOURSE_OFFLINE")


_network_answer = {}


def proxy_for(host, scheme="https"):
    """The proxy the standard variables name for `host` (HTTPS_PROXY / HTTP_PROXY, else
    ALL_PROXY; upper or lower case; NO_PROXY honoured), as a URL, or None: go direct."""
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxies.get(scheme) or proxies.get("all")


def _split_url(url, default_scheme="http"):
    """urlsplit that also reads 'host:port' (no scheme), as proxy variables often are."""
    return urllib.parse.urlsplit(url if "://" in url else f"{default_scheme}://{url}")


def without_password(proxy):
    """A proxy URL fit to print: scheme://host:port, any user name and password left out."""
    parts = _split_url(proxy)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def use_all_proxy():
    """urllib (our downloads, torchvision's, scikit-learn's) reads HTTPS_PROXY and
    HTTP_PROXY but not ALL_PROXY: when only ALL_PROXY names an HTTP proxy, use it for both
    in this process, as curl and requests do."""
    proxies = urllib.request.getproxies_environment()
    every = proxies.get("all", "")
    if every.startswith(("http://", "https://")):
        for scheme in ("https", "http"):
            if scheme not in proxies:
                os.environ[f"{scheme}_proxy"] = every


def _probe(host, port, timeout, proxy):
    """True if `host:port` answers, directly (proxy None) or through the proxy URL."""
    if proxy is None:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    parts = _split_url(proxy)
    default_port = {"https": 443, "socks4": 1080, "socks5": 1080, "socks5h": 1080}
    with socket.create_connection((parts.hostname, parts.port or default_port.get(
            parts.scheme, 80)), timeout=timeout) as conn:
        if not parts.scheme.startswith("http"):
            return True   # a SOCKS proxy answers; whether it reaches `host` shows on download
        # ask the HTTP proxy for a tunnel to host:port, as a download through it would
        request = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        if parts.username:
            token = base64.b64encode(f"{urllib.parse.unquote(parts.username)}:"
                                     f"{urllib.parse.unquote(parts.password or '')}".encode())
            request += f"Proxy-Authorization: Basic {token.decode()}\r\n"
        conn.settimeout(timeout)
        conn.sendall((request + "\r\n").encode())
        status = conn.recv(1024).split(b"\r\n", 1)[0].split()
        return len(status) >= 2 and status[1] == b"200"


def network_available(host, port=443, timeout=3.0):
    """Can we reach `host`, directly or through the proxy that HTTPS_PROXY / HTTP_PROXY /
    ALL_PROXY name for it? Answers within `timeout` seconds, even when DNS itself hangs
    (the lookup runs in a daemon thread we stop waiting for)."""
    if env_flag("DLCOURSE_OFFLINE"):
        return False
    proxy = proxy_for(host, "https" if port == 443 else "http")
    key = (host, port, proxy)
    if key not in _network_answer:
        result = []

        def probe():
            try:
                result.append(_probe(host, port, timeout, proxy))
            except OSError:
                result.append(False)

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        thread.join(timeout + 0.5)
        _network_answer[key] = bool(result and result[0])
    return _network_answer[key]


def hf_host():
    """The host Hugging Face downloads go to: HF_ENDPOINT's (a mirror) or huggingface.co."""
    endpoint = os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"
    return _split_url(endpoint, "https").hostname


def file_digest(path, algorithm="sha256"):
    """Hex digest of a file, read in 1 MB blocks: sha256 for the course's own sources, md5
    where a library publishes that (torchvision's MNIST and CIFAR-10)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url, dest, sha256=None, timeout=30.0):
    """Download `url` to `dest` atomically, verifying sha256 when given.

    A partial or wrong file never lands at `dest`: bytes go to `dest.part`, are hashed,
    and only then renamed. Raises CourseError with one line on any failure.
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    use_all_proxy()
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "dlcourse"})
        opener = urllib.request.build_opener()  # reads the proxy variables now, not at import
        with opener.open(request, timeout=timeout) as response, open(part, "wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                      disable=None) as bar:  # disable=None: quiet when not a terminal
                for block in iter(lambda: response.read(1 << 16), b""):
                    f.write(block)
                    digest.update(block)
                    bar.update(len(block))
    except (OSError, ValueError) as err:  # URLError, HTTPError and timeouts are OSErrors
        part.unlink(missing_ok=True)
        raise CourseError(f"download of {url} failed: {getattr(err, 'reason', err)}") from None
    if sha256 and digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        raise CourseError(f"download of {url} is corrupt: sha256 {digest.hexdigest()[:12]}... "
                          f"!= expected {sha256[:12]}...")
    os.replace(part, dest)
    return dest


def fetch(name, offline=False):
    """Path to the cached file of SOURCES[name] (a 'url' source), downloading it if needed.

    Returns None when the file is not cached and we are offline or the download fails,
    after printing why; the lesson then uses its stand-in. A cached file with the wrong
    checksum is renamed `*.corrupt` (kept, never silently deleted) and fetched again.
    """
    source = SOURCES[name]
    if source.via != "url":
        raise ValueError(f"{name} is downloaded through {source.via}, not fetch()")
    path = root() / source.filename
    if path.exists():
        if not source.sha256 or file_digest(path) == source.sha256:
            return path
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        print(f"data: cached {path.name} failed its checksum; moved to {aside.name}")
    if offline_mode(offline):
        return None
    if not network_available(source.host):
        print(f"data: {source.host} not reachable, cannot download {name}")
        return None
    try:
        return download(source.url, path, source.sha256)
    except CourseError as err:
        print(f"data: {err}")
        return None


def can_download(name, offline=False):
    """Should we try to download SOURCES[name] now? (not offline, and its host answers)"""
    return not offline_mode(offline) and network_available(SOURCES[name].host)


def library_timeout(seconds=30.0):
    """Make library downloads (torchvision, scikit-learn) give up instead of hanging:
    they use urllib without a timeout, which then falls back to this default."""
    socket.setdefaulttimeout(seconds)


KINDS = {
    "downloaded": "real data set, downloaded",
    "bundled": "real data set, shipped inside an installed package",
    "generated": "generated by the code, not a real data set",
}
ANNOUNCED = []  # what announce() said in this run; cli.finish() records stand-ins in progress


def announce(name, kind, stand_in_for=None, detail=""):
    """Print the one line that says which data this run uses, and remember it.

    kind: 'downloaded' (a real data set fetched from its source), 'bundled' (a real data
    set that ships inside a package: scikit-learn's iris or digits, statsmodels' CO2) or
    'generated' (made by code: XOR, moons, random normals, MNIST-1D).
    stand_in_for: the data set this one replaces because that one could not be had
    (offline, --quick): its numbers are then not that data set's, and the line says so.
    """
    if kind not in KINDS:
        raise ValueError(f"data kind must be one of {', '.join(KINDS)}, got {kind!r}")
    line = f"DATA: {name} ({KINDS[kind]}"
    if stand_in_for:
        line += f"; OFFLINE STAND-IN for {stand_in_for}: its numbers are not {stand_in_for}'s"
    line += ")" + (f" - {detail}" if detail else "")
    ANNOUNCED.append({"name": name, "kind": kind, "stand_in_for": stand_in_for or None})
    print(line, flush=True)
    return line


def stand_ins():
    """Names of the data sets this run replaced by stand-ins (empty: the real data ran)."""
    return sorted({a["stand_in_for"] for a in ANNOUNCED if a["stand_in_for"]})


def mnist1d(num_samples=4000, seed=0):
    """MNIST-1D generated offline (mnist1d's make_dataset): 40-sample 1-D signals, 10 classes.

    Returns dict(x_train, y_train, x_test, y_test) as numpy arrays. Generating takes about a
    second, so the result is cached in the data folder, keyed by size and seed.
    """
    import numpy as np

    cache = root() / f"mnist1d-{num_samples}-seed{seed}.npz"
    if cache.exists():
        try:
            with np.load(cache) as f:
                return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except (OSError, ValueError, KeyError):  # a damaged cache is just regenerated
            pass
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    d = make_dataset(args)
    out = {"x_train": d["x"], "y_train": d["y"], "x_test": d["x_test"], "y_test": d["y_test"]}
    part = cache.with_name(f"{cache.stem}.{os.getpid()}.part.npz")  # unique per process
    np.savez(part, **out)
    os.replace(part, cache)
    return out


# --- Library-managed downloads: one function each, used by lessons and `dlcourse prefetch`.
# Each returns None (after saying why) when the data cannot be had, so the lesson can
# announce its stand-in instead.

TITANIC_CSV = "titanic.csv"   # placed by `dlcourse data import titanic FILE`
TITANIC_CSV_URL = "https://www.openml.org/data/get_csv/16826755/phpMYEkMl"


def titanic(offline=False):
    """Titanic passengers as a pandas DataFrame (OpenML 40945 via scikit-learn, or OpenML's
    CSV of it placed by `data import`), or None."""
    placed = root() / TITANIC_CSV
    if placed.exists():
        import pandas as pd
        return pd.read_csv(placed, na_values=["?"])
    from sklearn.datasets import fetch_openml

    def load(home, download):
        # fetch_openml has no download switch: it reads its cache (data_home/openml) first
        # and only goes to the network for what is missing, so offline we call it only
        # when that cache exists.
        if not download and not (Path(home) / "openml").exists():
            raise OSError("not cached")
        return fetch_openml(data_id=40945, as_frame=True, data_home=home, n_retries=1).frame

    return _library_fetch("titanic", offline, load)


def california_housing(offline=False):
    """California housing as (X DataFrame, y Series) via scikit-learn, or None."""
    from sklearn.datasets import fetch_california_housing

    return _library_fetch("california_housing", offline, lambda home, download:
                          fetch_california_housing(data_home=home, as_frame=True,
                                                   download_if_missing=download,
                                                   return_X_y=True, n_retries=1))


def torchvision_dataset(name, train, offline=False, transform=None):
    """torchvision's MNIST or CIFAR10 split from the data folder, or None."""
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    return _library_fetch(name, offline, lambda home, download: cls(
        home, train=train, download=download, transform=transform))


def _library_fetch(name, offline, load):
    home = str(root() / SOURCES[name].via)
    try:  # already cached: no network needed
        return load(home, False)
    except (OSError, RuntimeError, ValueError):
        pass
    if not can_download(name, offline):
        print(f"data: {name} is not cached and {SOURCES[name].host} cannot be reached")
        return None
    library_timeout()
    use_all_proxy()
    try:
        print(f"data: downloading {name} through {SOURCES[name].via} into {home}")
        return load(home, True)
    except Exception as err:  # network errors come in many library-specific types
        print(f"data: download of {name} failed: {type(err).__name__}: {shorten(err, 160)}")
        return None
