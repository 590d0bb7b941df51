"""`python -m dlcourse data import NAME FILE...`: place a data set downloaded by hand.

A learner behind a firewall downloads a data set in a browser (or from a mirror) and
hands the file, exactly as its official source serves it, to the course. This module
checks it (sha256 or the md5 its library publishes), then puts it where the lessons look:

    tinyshakespeare     input.txt                  -> <data>/tinyshakespeare.txt
    mnist               the four *-ubyte.gz files,  -> <data>/torchvision/MNIST/raw/
                        one by one or their folder     (kept and unpacked, as torchvision does)
    cifar10             cifar-10-python.tar.gz      -> <data>/torchvision/cifar-10-batches-py/
    california_housing  cal_housing.tgz             -> <data>/sklearn/ (scikit-learn's own cache,
                                                        made by scikit-learn from this archive)

    titanic             OpenML's CSV of data set   -> <data>/titanic.csv (read before
                        40945 (TITANIC_CSV_URL)         scikit-learn's OpenML client is tried)

Every problem is one CourseError line naming the file and what is wrong. OpenML publishes
no checksum for its CSV export, so the Titanic file is checked by its header, its 1309 rows
and its 500 survivors.
"""
import gzip
import hashlib
import tarfile
from pathlib import Path

from dlcourse import CourseError, data, progress


def _one_file(name, paths):
    if len(paths) != 1:
        raise CourseError(f"{name} is one file: give exactly one path, got {len(paths)}")
    path = Path(paths[0]).expanduser()
    if not path.is_file():
        raise CourseError(f"{path} is not a file" + (" (a folder)" if path.is_dir() else
                                                    " (not found)"))
    return path


def tinyshakespeare(paths):
    path = _one_file("tinyshakespeare", paths)
    source = data.SOURCES["tinyshakespeare"]
    content = path.read_bytes()
    sha = hashlib.sha256(content).hexdigest()
    if sha == source.sha256:
        return [f"placed {progress.atomic_write_bytes(data.root() / source.filename, content)}"]
    if b"\r\n" in content:
        unix = content.replace(b"\r\n", b"\n")
        if hashlib.sha256(unix).hexdigest() == source.sha256:
            dest = progress.atomic_write_bytes(data.root() / source.filename, unix)
            return [f"{path.name} had Windows (CRLF) line endings, as some editors and "
                    f"git settings save it; converted them back to LF, checksum now matches",
                    f"placed {dest}"]
    raise CourseError(f"{path} is not tiny Shakespeare's input.txt: sha256 "
                      f"{sha[:12]}... != expected "
                      f"{source.sha256[:12]}... ({len(content)} bytes; download it from "
                      f"{source.url})")


def _expand(paths):
    """Files named directly, and the files inside folders named."""
    found = []
    for p in map(lambda x: Path(x).expanduser(), paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise CourseError(f"{p} not found")
    return found


def mnist(paths):
    from torchvision.datasets import MNIST

    expected = dict(MNIST.resources)             # file name -> md5, as torchvision checks it
    raw = data.root() / "torchvision" / "MNIST" / "raw"
    said, placed = [], 0
    for path in _expand(paths):
        if path.name not in expected:
            if path.name + ".gz" in expected:
                raise CourseError(f"{path} is unpacked: give {path.name}.gz as downloaded")
            if len(paths) == 1 and Path(paths[0]).is_file():
                raise CourseError(f"{path.name} is not an MNIST file; expected one of "
                                  f"{', '.join(expected)}")
            continue   # other files in a folder the learner named
        content = path.read_bytes()
        md5 = hashlib.md5(content).hexdigest()
        if md5 != expected[path.name]:
            raise CourseError(f"{path} is damaged or not the official file: md5 {md5[:12]}... "
                              f"!= {expected[path.name][:12]}...")
        progress.atomic_write_bytes(raw / path.name, content)
        # torchvision reads the unpacked file; the .gz is kept beside it, as its download does
        progress.atomic_write_bytes(raw / path.name[:-3], gzip.decompress(content))
        placed += 1
        said.append(f"placed {raw / path.name} (and unpacked it)")
    if not placed:
        raise CourseError(f"no MNIST file among {', '.join(map(str, paths))}; expected "
                          f"{', '.join(expected)}")
    missing = [n for n in expected if not (raw / n[:-3]).exists()]
    said.append(f"MNIST still needs: {', '.join(missing)}" if missing else
                "MNIST complete: lessons will use it")
    return said


def _safe_extract(archive, dest):
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not target.is_relative_to(dest.resolve()) or member.issym() or member.islnk():
                raise CourseError(f"{archive} holds a path outside its folder ({member.name}): "
                                  "refusing to unpack it")
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
        tar.extractall(dest, **safe)


def cifar10(paths):
    from torchvision.datasets import CIFAR10

    path = _one_file("cifar10", paths)
    md5 = data.file_digest(path, "md5")     # 170 MB: read in blocks, not at once
    if md5 != CIFAR10.tgz_md5:
        hint = (" (that is the Matlab or binary version; the course needs the python one)"
                if "python" not in path.name else "")
        raise CourseError(f"{path} is not {CIFAR10.filename} from {CIFAR10.url}: md5 "
                          f"{md5[:12]}... != {CIFAR10.tgz_md5[:12]}...{hint}")
    home = data.root() / "torchvision"
    home.mkdir(parents=True, exist_ok=True)
    _safe_extract(path, home)
    if data.torchvision_dataset("cifar10", train=False, offline=True) is None:
        raise CourseError(f"unpacked {path.name} into {home}, but torchvision does not accept "
                          "the files (their checksums differ)")
    return [f"unpacked {path.name} into {home / CIFAR10.base_folder}; torchvision accepts it"]


def california_housing(paths):
    import sklearn.datasets._california_housing as ch

    path = _one_file("california_housing", paths)
    sha = data.file_digest(path)
    if sha != ch.ARCHIVE.checksum:
        raise CourseError(f"{path} is not {ch.ARCHIVE.filename} from {ch.ARCHIVE.url}: sha256 "
                          f"{sha[:12]}... != {ch.ARCHIVE.checksum[:12]}...")
    home = data.root() / "sklearn"
    original = ch._fetch_remote

    def hand_over(remote, dirname=None, **ignored):
        # scikit-learn's own processing of the archive runs; only its download is replaced
        target = Path(dirname) / remote.filename
        return str(progress.atomic_write_bytes(target, path.read_bytes()))

    ch._fetch_remote = hand_over
    try:
        ch.fetch_california_housing(data_home=str(home), download_if_missing=True)
    finally:
        ch._fetch_remote = original
    if data.california_housing(offline=True) is None:
        raise CourseError(f"scikit-learn did not accept {path.name}")
    return [f"scikit-learn processed {path.name} into its cache in {home}"]


TITANIC_COLUMNS = ["pclass", "survived", "name", "sex", "age", "sibsp", "parch", "ticket",
                   "fare", "cabin", "embarked", "boat", "body", "home.dest"]
TITANIC_ROWS, TITANIC_SURVIVED = 1309, 500


def titanic(paths):
    import pandas as pd

    path = _one_file("titanic", paths)
    try:
        frame = pd.read_csv(path, na_values=["?"])
    except (ValueError, UnicodeDecodeError) as err:
        raise CourseError(f"{path} cannot be read as CSV: {str(err).splitlines()[0]}") from None
    columns = [str(c).strip().strip('"') for c in frame.columns]
    if "PassengerId" in columns:
        raise CourseError(f"{path} is Kaggle's Titanic file ({len(frame)} rows), not OpenML's "
                          f"40945 that the course uses: download {data.TITANIC_CSV_URL}, or give "
                          "Kaggle's file to the phase 1 capstone with --csv")
    if columns != TITANIC_COLUMNS:
        raise CourseError(f"{path} does not have OpenML Titanic's columns ({', '.join(TITANIC_COLUMNS)}); "
                          f"download {data.TITANIC_CSV_URL}")
    survived = int(pd.to_numeric(frame["survived"], errors="coerce").fillna(0).sum())
    if len(frame) != TITANIC_ROWS or survived != TITANIC_SURVIVED:
        raise CourseError(f"{path} has {len(frame)} rows and {survived} survivors; OpenML's "
                          f"Titanic has {TITANIC_ROWS} and {TITANIC_SURVIVED} (cut short or edited?)")
    dest = progress.atomic_write_bytes(data.root() / data.TITANIC_CSV, path.read_bytes())
    return [f"placed {dest} ({TITANIC_ROWS} passengers); the phase 1 capstone will use it"]


IMPORTERS = {"tinyshakespeare": tinyshakespeare, "mnist": mnist, "cifar10": cifar10,
             "california_housing": california_housing, "titanic": titanic}


def import_data(name, paths):
    """Check and place a hand-downloaded data set; returns the lines to print."""
    if name not in IMPORTERS:
        raise CourseError(f"unknown data set '{name}'; one of: {', '.join(IMPORTERS)}")
    return IMPORTERS[name](paths)
