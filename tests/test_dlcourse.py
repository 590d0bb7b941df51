"""Unit tests of the shared package: each helper does what its docstring promises,
including the failure paths a learner will hit."""
import hashlib
import http.server
import json
import os
import stat
import threading
import time

import numpy as np
import pytest
import torch

from dlcourse import (CourseError, check, cli, data, device, progress, seed, shorten, syllabus,
                      train)


# ---------- device ----------
def test_device_cpu_and_auto():
    assert device.pick("cpu").type == "cpu"
    assert device.pick(None).type in {"cpu", "cuda", "mps"}


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x", ""])
def test_unknown_device_is_a_course_error(name, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DEVICE", "auto")
    if name == "":
        monkeypatch.setenv("DLCOURSE_DEVICE", "quantum")
    with pytest.raises(CourseError, match="unknown device"):
        device.pick(name or None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_npu_is_accepted_and_needs_torch_npu():
    assert device.validate("npu") == "npu" and device.validate("npu:1") == "npu:1"
    try:
        import torch_npu  # noqa: F401
        pytest.skip("torch_npu is installed here")
    except ImportError:
        pass
    with pytest.raises(CourseError, match="needs torch_npu"):
        device.pick("npu")


def test_unavailable_cuda_is_a_course_error():
    with pytest.raises(CourseError, match="not available"):
        device.pick("cuda")


def test_env_variable_overrides_auto(monkeypatch):
    monkeypatch.setenv("DLCOURSE_DEVICE", "cpu")
    assert device.pick(None).type == "cpu"


# ---------- seed ----------
def test_seed_repeats_random_numpy_and_torch():
    import random

    def draw():
        seed.seed_everything(123)
        return random.random(), np.random.rand(), torch.rand(1).item()

    assert draw() == draw()


def test_seeded_dataloader_shuffle_repeats():
    ds = torch.utils.data.TensorDataset(torch.arange(50))

    def order():
        loader = torch.utils.data.DataLoader(ds, batch_size=50, shuffle=True,
                                             generator=seed.generator(7))
        return next(iter(loader))[0].tolist()

    assert order() == order()
    assert order() != list(range(50))


# ---------- check ----------
def test_check_close_passes_and_fails(capsys):
    assert check.close("same", torch.ones(3), np.ones(3)) == 0
    with pytest.raises(check.CheckFailed):
        check.close("different", [1.0, 2.0], [1.0, 2.1], atol=1e-3)
    with pytest.raises(check.CheckFailed, match="shape"):
        check.close("shape", np.ones(3), np.ones(4))
    assert "max |diff|" in capsys.readouterr().out


def test_check_close_handles_inf_and_nan():
    check.close("matching inf", [np.inf, 1.0], [np.inf, 1.0])
    with pytest.raises(check.CheckFailed):
        check.close("inf vs finite", [np.inf], [1.0])
    with pytest.raises(check.CheckFailed):
        check.close("nan vs number", [np.nan], [1.0])
    with pytest.raises(check.CheckFailed):
        check.close("opposite inf", [np.inf], [-np.inf])


def test_check_rtol_and_comparisons():
    check.close("relative", [1000.0], [1000.5], atol=0, rtol=1e-3)
    with pytest.raises(check.CheckFailed):
        check.close("relative too far", [1000.0], [1002.0], atol=0, rtol=1e-3)
    check.greater("acc beats baseline", 0.9, 0.5)
    with pytest.raises(check.CheckFailed):
        check.greater("nan never passes", float("nan"), 0.0)
    with pytest.raises(check.CheckFailed):
        check.less("loss fell", 2.0, 1.0)
    with pytest.raises(check.CheckFailed):
        check.true("false", False)
    check.equal("labels", torch.tensor([1, 2]), np.array([1, 2]))
    with pytest.raises(check.CheckFailed):
        check.equal("labels differ", [1, 2], [2, 1])


def test_check_raises():
    err = check.raises("planted shape bug", RuntimeError, torch.mm, torch.ones(2, 3),
                       torch.ones(2, 3))
    assert isinstance(err, RuntimeError)
    with pytest.raises(check.CheckFailed, match="did not raise"):
        check.raises("no bug", RuntimeError, torch.mm, torch.ones(2, 3), torch.ones(3, 2))
    with pytest.raises(check.CheckFailed, match="expected"):
        check.raises("wrong error", KeyError, torch.mm, torch.ones(2, 3), torch.ones(2, 3))


# ---------- cli ----------
@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--epochs", "-3"], ["--epochs", "two"],
                                  ["--seed", "x"]])
def test_parser_rejects_bad_numbers(argv):
    with pytest.raises(SystemExit) as exc:
        cli.parser(epochs=3).parse_args(argv)
    assert exc.value.code == 2


def test_parser_offers_only_the_count_flags_a_lesson_honours(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parser().parse_args(["--epochs", "3"])
    assert exc.value.code == 2 and "unrecognized arguments: --epochs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parser(epochs=(60, 20)).parse_args(["--steps", "3"])
    cli.parser(steps=100).parse_args(["--steps", "3"])


@pytest.mark.parametrize("argv, expected", [([], 60), (["--quick"], 20), (["--epochs", "7"], 7),
                                            (["--quick", "--epochs", "7"], 7)])
def test_start_resolves_the_epochs_to_run(argv, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_PROGRESS", str(tmp_path / "p.json"))
    args = cli.parser(epochs=(60, 20)).parse_args(argv + ["--out", str(tmp_path)])
    run = cli.start(args, "lesson.py", use_torch=False)
    assert run.epochs == expected and run.steps is None


def test_help_shows_every_default(capsys):
    with pytest.raises(SystemExit):
        cli.parser("Title\n\nGoal: x", epochs=(60, 20), steps=500).parse_args(["--help"])
    out = capsys.readouterr().out
    assert "(default 60; 20 with --quick)" in out and "(default 500)" in out
    assert "random seed (default 0)" in out and "Goal: x" in out


def test_check_demonstrations_are_shown_but_not_counted(monkeypatch, capsys):
    monkeypatch.setattr(check, "PASSED", [])
    monkeypatch.setattr(check, "DEMOS", [])
    check.close("torch AdamW(wd=0) vs torch Adam", 1.0, 1.0, demo=True)
    check.close("my Adam vs torch Adam", 1.0, 1.0)
    out = capsys.readouterr().out
    assert "[demo] torch AdamW" in out and "[check] my Adam" in out
    assert check.PASSED == ["my Adam vs torch Adam"]
    assert check.summary() == "checks: 1 passed (1 library demonstration not counted)"
    with pytest.raises(check.CheckFailed, match="demonstration"):
        check.equal("a library identity that broke", 1, 2, demo=True)


def test_long_messages_are_cut_at_a_word_boundary():
    text = "weights_only load failed because the file contains a global that is not allowed " * 3
    short = shorten(text, 60)
    assert len(short) <= 60 and short.endswith(" ...")
    assert text.startswith(short[:-4]) and not short[:-4].endswith(" ")
    assert shorten("short", 60) == "short"


def test_parser_rejects_an_output_path_that_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--out", str(f)])


def test_friendly_errors_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        with cli.friendly_errors():
            raise CourseError("bad thing")
    assert exc.value.code == 2 and "error: bad thing" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        with cli.friendly_errors():
            check.true("x", False)
    assert exc.value.code == 1


def test_start_and_finish_write_metrics_and_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_PROGRESS", str(tmp_path / "p.json"))
    lesson_file = str(cli.REPO / "phase01-python-ds" / "01-numpy-basics.py")
    args = cli.parser().parse_args(["--out", str(tmp_path / "out")])
    run = cli.start(args, lesson_file, use_torch=False)
    assert run.lesson_id == "01.01" and not run.quick
    monkeypatch.setattr(check, "PASSED", [])
    with pytest.raises(CourseError, match="no self-check"):
        cli.finish(run, {"x": 1})
    check.true("something", True)
    metrics = cli.finish(run, {"x": 1})
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["x"] == 1
    assert metrics["checks_passed"] == 1
    assert progress.status("01.01") == "done"


def test_finish_records_a_stand_in_run_apart(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DLCOURSE_PROGRESS", str(tmp_path / "p.json"))
    monkeypatch.setattr(data, "ANNOUNCED", [])
    monkeypatch.setattr(check, "PASSED", [])
    lesson_file = str(cli.REPO / "phase03-pytorch" / "capstone-mnist.py")
    run = cli.start(cli.parser().parse_args(["--out", str(tmp_path / "o")]), lesson_file,
                    use_torch=False)
    data.announce("digits upsampled", kind="bundled", stand_in_for="MNIST")
    check.true("something", True)
    metrics = cli.finish(run, {})
    assert metrics["stand_in_for"] == "MNIST"
    assert progress.status("03.capstone") == "stand-in"
    assert "recorded as done on stand-in data" in capsys.readouterr().out


# ---------- progress ----------
def test_progress_records_quick_as_tried_and_full_as_done(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_PROGRESS", str(tmp_path / "p.json"))
    assert progress.status("01.01") == "todo"
    progress.record("01.01", quick=True, checks=2, seconds=1.0)
    assert progress.status("01.01") == "tried"
    progress.record("01.01", quick=False, checks=2, seconds=1.0)
    assert progress.status("01.01") == "done"


def test_corrupt_progress_file_is_kept_aside(tmp_path, monkeypatch, capsys):
    p = tmp_path / "p.json"
    monkeypatch.setenv("DLCOURSE_PROGRESS", str(p))
    p.write_text('{"runs": {"01.01": ')  # a crash in someone else's editor, say
    assert progress.load() == {"runs": {}}
    kept = list(tmp_path.glob("p.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"runs": {"01.01": '
    assert "could not be read" in capsys.readouterr().out
    progress.record("01.02", quick=False, checks=1, seconds=1.0)
    assert progress.status("01.02") == "done"


@pytest.mark.parametrize("content", ['{"runs": {"01.01": "bad"}}', '{"runs": []}', '[1, 2]',
                                     '{"runs": {"01.01": {"full": 3}}}'])
def test_progress_of_the_wrong_shape_is_kept_aside(content, tmp_path, monkeypatch, capsys):
    p = tmp_path / "p.json"
    monkeypatch.setenv("DLCOURSE_PROGRESS", str(p))
    p.write_text(content)
    assert progress.load() == {"runs": {}}
    assert "not a progress record" in capsys.readouterr().out
    kept = list(tmp_path.glob("p.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == content
    assert progress.status("01.01") == "todo"


def test_kept_aside_copies_never_overwrite_each_other(tmp_path, monkeypatch):
    p = tmp_path / "p.json"
    monkeypatch.setenv("DLCOURSE_PROGRESS", str(p))
    monkeypatch.setattr(progress.time, "strftime", lambda fmt, *a: "20260101-120000")
    for i in range(3):  # three bad files within the same second
        p.write_text(f"broken {i}")
        progress.load()
    kept = sorted(f.read_text() for f in tmp_path.glob("p.json.corrupt-*"))
    assert kept == ["broken 0", "broken 1", "broken 2"]


def test_written_files_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        target = progress.atomic_write_text(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_stand_in_runs_are_kept_apart_from_real_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_PROGRESS", str(tmp_path / "p.json"))
    progress.record("03.capstone", quick=False, checks=3, seconds=1.0, stand_in_for=["MNIST"])
    assert progress.status("03.capstone") == "stand-in"
    progress.record("03.capstone", quick=False, checks=3, seconds=1.0)
    assert progress.status("03.capstone") == "done"
    progress.record("03.capstone", quick=False, checks=3, seconds=1.0, stand_in_for=["MNIST"])
    assert progress.status("03.capstone") == "done"  # a later stand-in run never undoes it


def test_milestones_need_every_verifying_run_on_real_data(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_PROGRESS", str(tmp_path / "p.json"))
    first, later = syllabus.MILESTONES[0], syllabus.MILESTONES[-1]
    assert first.phase == 3 and "03.capstone" in first.verified_by
    assert progress.milestone_status(later) == "planned"
    assert progress.milestone_status(first) == "open"
    for lesson_id in first.verified_by[:-1]:
        progress.record(lesson_id, quick=False, checks=1, seconds=1.0)
    progress.record(first.verified_by[-1], quick=True, checks=1, seconds=1.0)
    assert progress.milestone_status(first) == "open"     # the last one only tried
    progress.record(first.verified_by[-1], quick=False, checks=1, seconds=1.0,
                    stand_in_for=["MNIST"])
    assert progress.milestone_status(first) == "stand-in"
    progress.record(first.verified_by[-1], quick=False, checks=1, seconds=1.0)
    assert progress.milestone_status(first) == "reached"


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    progress.atomic_write_text(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        progress.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["f.txt"]  # no temporary left behind


# ---------- data ----------
@pytest.fixture
def file_server(tmp_path):
    """A local HTTP server over tmp_path/www (downloads are tested without the internet)."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(www), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_checksum(file_server, tmp_path):
    www, url = file_server
    payload = b"to be or not to be\n" * 1000
    (www / "text.txt").write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    dest = data.download(f"{url}/text.txt", tmp_path / "cache" / "text.txt", sha256=good)
    assert dest.read_bytes() == payload
    with pytest.raises(CourseError, match="corrupt"):
        data.download(f"{url}/text.txt", tmp_path / "cache" / "bad.txt", sha256="0" * 64)
    assert not (tmp_path / "cache" / "bad.txt").exists()
    assert not list((tmp_path / "cache").glob("*.part"))
    with pytest.raises(CourseError, match="failed"):
        data.download(f"{url}/missing.txt", tmp_path / "cache" / "missing.txt")


def test_fetch_uses_cache_offline_and_sets_corrupt_files_aside(file_server, tmp_path,
                                                               monkeypatch):
    www, url = file_server
    payload = b"First Citizen:\n" * 100
    (www / "input.txt").write_bytes(payload)
    source = data.Source("toy", "toy text", "url", url=f"{url}/input.txt",
                         sha256=hashlib.sha256(payload).hexdigest(), filename="toy.txt",
                         host="127.0.0.1")
    monkeypatch.setitem(data.SOURCES, "toy", source)
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DLCOURSE_OFFLINE", raising=False)
    monkeypatch.setattr(data, "network_available", lambda host="", *a, **k: True)
    assert data.fetch("toy", offline=True) is None            # not cached, offline: stand-in
    path = data.fetch("toy")                                   # downloads
    assert path.read_bytes() == payload
    (www / "input.txt").unlink()                               # server gone: cache still works
    assert data.fetch("toy", offline=True) == path
    path.write_bytes(b"tampered")
    assert data.fetch("toy", offline=True) is None             # bad cache is not used...
    assert (tmp_path / "data" / "toy.txt.corrupt").read_bytes() == b"tampered"  # ...nor lost


def test_network_probe_answers_quickly_without_network(monkeypatch):
    monkeypatch.delenv("DLCOURSE_OFFLINE", raising=False)
    data._network_answer.clear()
    started = time.perf_counter()
    assert data.network_available("192.0.2.1", 9, timeout=1.0) is False  # TEST-NET: unroutable
    assert time.perf_counter() - started < 3.0
    monkeypatch.setenv("DLCOURSE_OFFLINE", "1")
    assert data.network_available("127.0.0.1") is False


def test_library_downloads_return_none_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("DLCOURSE_OFFLINE", "1")
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path))
    assert data.titanic() is None
    assert data.california_housing() is None
    assert data.torchvision_dataset("cifar10", train=False) is None


def test_announce_names_the_kind_of_data(capsys, monkeypatch):
    monkeypatch.setattr(data, "ANNOUNCED", [])
    assert "(real data set, downloaded)" in data.announce("MNIST", kind="downloaded")
    assert "shipped inside an installed package" in data.announce("iris", kind="bundled")
    line = data.announce("two moons", kind="generated")
    assert line == "DATA: two moons (generated by the code, not a real data set)"
    assert data.stand_ins() == []
    line = data.announce("Iris", kind="bundled", stand_in_for="Titanic")
    assert "OFFLINE STAND-IN for Titanic" in line and "not Titanic's" in line
    assert data.stand_ins() == ["Titanic"]
    with pytest.raises(ValueError, match="data kind"):
        data.announce("x", kind="real")


# ---------- train ----------
def toy_problem(n=256, seed_value=0):
    seed.seed_everything(seed_value)
    x = torch.randn(n, 5)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    ds = torch.utils.data.TensorDataset(x, y)
    train_loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True,
                                               generator=seed.generator(seed_value))
    val_loader = torch.utils.data.DataLoader(ds, batch_size=64)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                                torch.nn.Linear(16, 2))
    return model, train_loader, val_loader


def test_fit_learns_and_reports_history():
    model, tl, vl = toy_problem()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    hist = train.fit(model, tl, torch.nn.functional.cross_entropy, opt, device=torch.device("cpu"),
                     epochs=5, val_loader=vl, metrics={"acc": train.accuracy}, progress=False,
                     log=lambda *_: None)
    assert hist["epoch"] == [1, 2, 3, 4, 5]
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["val_acc"][-1] > 0.9


def test_fit_equals_a_hand_written_loop():
    cpu = torch.device("cpu")
    model, tl, _ = toy_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train.fit(model, tl, torch.nn.functional.cross_entropy, opt, device=cpu, epochs=2,
              progress=False, log=lambda *_: None)
    by_fit = [p.detach().clone() for p in model.parameters()]
    model, tl, _ = toy_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        model.train()
        for x, y in tl:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(by_fit, model.parameters()):
        assert torch.equal(a, b)


def test_gradient_accumulation_equals_the_large_batch():
    cpu = torch.device("cpu")
    seed.seed_everything(0)
    x, y = torch.randn(64, 5), torch.randint(0, 2, (64,))
    base = torch.nn.Linear(5, 2)
    results = []
    for batch, accum in [(64, 1), (16, 4)]:
        model = torch.nn.Linear(5, 2)
        model.load_state_dict(base.state_dict())
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        train.fit(model, loader, torch.nn.functional.cross_entropy, opt, device=cpu, epochs=1,
                  accum_steps=accum, progress=False, log=lambda *_: None)
        results.append(model.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("n, accum", [(7, 3), (5, 2), (6, 3)])
def test_accumulation_weights_a_short_last_group_fully(n, accum):
    """7 batches with accum 3 make groups of 3, 3 and 1: each group's step must use the mean
    gradient of its own batches, so the lone last batch is not divided by 3."""
    cpu = torch.device("cpu")
    seed.seed_everything(0)
    x, y = torch.randn(n * 4, 5), torch.randint(0, 2, (n * 4,))
    base = torch.nn.Linear(5, 2)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    model = torch.nn.Linear(5, 2)
    model.load_state_dict(base.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    train.fit(model, loader, torch.nn.functional.cross_entropy, opt, device=cpu, epochs=1,
              accum_steps=accum, progress=False, log=lambda *_: None)
    ref = torch.nn.Linear(5, 2)
    ref.load_state_dict(base.state_dict())
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    batches = list(loader)
    for start in range(0, n, accum):
        group = batches[start:start + accum]
        ref_opt.zero_grad()
        gx, gy = torch.cat([b[0] for b in group]), torch.cat([b[1] for b in group])
        torch.nn.functional.cross_entropy(ref(gx), gy).backward()  # the group as one batch
        ref_opt.step()
    torch.testing.assert_close(model.weight, ref.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.bias, ref.bias, rtol=0, atol=1e-6)


def test_fit_with_bf16_autocast_on_the_cpu():
    """Mixed precision is tested here too, not only on a GPU: bf16 autocast on the CPU."""
    cpu = torch.device("cpu")
    assert train.amp_dtype(cpu) == torch.bfloat16
    model, tl, vl = toy_problem()
    seen = []
    model[0].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    hist = train.fit(model, tl, torch.nn.functional.cross_entropy, opt, device=cpu, epochs=4,
                     val_loader=vl, metrics={"acc": train.accuracy}, amp=True,
                     clip_grad_norm=1.0, progress=False, log=lambda *_: None)
    assert set(seen) == {torch.bfloat16}            # the Linear really ran in bf16
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    assert hist["train_loss"][-1] < hist["train_loss"][0] and hist["val_acc"][-1] > 0.85


def test_resume_equals_an_uninterrupted_run(tmp_path):
    cpu = torch.device("cpu")
    loss = torch.nn.functional.cross_entropy

    def make():
        model, tl, vl = toy_problem()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        return model, tl, vl, opt, sched

    model, tl, vl, opt, sched = make()
    train.fit(model, tl, loss, opt, device=cpu, epochs=4, val_loader=vl, scheduler=sched,
              progress=False, log=lambda *_: None)
    straight = [p.detach().clone() for p in model.parameters()]

    ckpt = tmp_path / "run.pt"
    model, tl, vl, opt, sched = make()
    train.fit(model, tl, loss, opt, device=cpu, epochs=2, val_loader=vl, scheduler=sched,
              checkpoint=ckpt, progress=False, log=lambda *_: None)
    torch.manual_seed(999)  # a new process would start from another RNG state
    model, tl, vl, opt, sched = make()
    hist = train.fit(model, tl, loss, opt, device=cpu, epochs=4, val_loader=vl, scheduler=sched,
                     checkpoint=ckpt, resume=True, progress=False, log=lambda *_: None)
    assert hist["epoch"] == [1, 2, 3, 4]
    for a, b in zip(straight, model.parameters()):
        assert torch.equal(a, b)
    assert (tmp_path / "run-best.pt").exists()


def test_early_stopping_stops():
    model, tl, vl = toy_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # nothing improves after epoch 1
    hist = train.fit(model, tl, torch.nn.functional.cross_entropy, opt,
                     device=torch.device("cpu"), epochs=10, val_loader=vl, patience=2,
                     progress=False, log=lambda *_: None)
    assert hist["stopped_early"] == 3 and len(hist["epoch"]) == 3


def test_bad_checkpoints_are_one_line_course_errors(tmp_path):
    with pytest.raises(CourseError, match="not found"):
        train.load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CourseError, match="is a folder, not a file"):
        train.load_checkpoint(tmp_path)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CourseError, match=r"not a file written by torch.save.*\(24 bytes\)$"):
        train.load_checkpoint(bad)
    good = train.save_checkpoint(tmp_path / "good.pt", {"model": torch.nn.Linear(3, 2).state_dict()})
    for cut in (100, len(good.read_bytes()) - 40):
        truncated = tmp_path / "truncated.pt"
        truncated.write_bytes(good.read_bytes()[:cut])
        with pytest.raises(CourseError, match="cut short"):
            train.load_checkpoint(truncated)
    state = train.load_checkpoint(good)
    with pytest.raises(CourseError, match="does not fit"):
        train.restore_model(torch.nn.Linear(4, 2), state["model"])


def test_checkpoint_refuses_pickled_code(tmp_path):
    class Sneaky:
        def __reduce__(self):
            return (print, ("code ran",))

    path = tmp_path / "sneaky.pt"
    torch.save({"x": Sneaky()}, path)
    with pytest.raises(CourseError, match="weights_only=True refuses to load it"):
        train.load_checkpoint(path)


def test_bad_epochs_in_fit():
    model, tl, _ = toy_problem()
    with pytest.raises(CourseError):
        train.fit(model, tl, torch.nn.functional.cross_entropy,
                  torch.optim.SGD(model.parameters(), lr=0.1), device=torch.device("cpu"),
                  epochs=0)


@pytest.mark.gpu
def test_fit_with_amp_on_the_gpu():
    dev = device.pick(None)
    model, tl, vl = toy_problem()
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    hist = train.fit(model, tl, torch.nn.functional.cross_entropy, opt, device=dev, epochs=3,
                     val_loader=vl, metrics={"acc": train.accuracy}, amp=True, clip_grad_norm=1.0,
                     progress=False, log=lambda *_: None)
    assert hist["train_loss"][-1] < hist["train_loss"][0]


@pytest.mark.network
def test_real_download_of_tiny_shakespeare(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path))
    path = data.fetch("tinyshakespeare")
    assert path is not None and path.stat().st_size == 1115394


def test_mnist1d_is_cached_and_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_DATA", str(tmp_path))
    first = data.mnist1d(num_samples=500, seed=3)
    assert (tmp_path / "mnist1d-500-seed3.npz").exists()
    second = data.mnist1d(num_samples=500, seed=3)
    for key in first:
        assert np.array_equal(first[key], second[key])
    assert first["x_train"].shape == (400, 40) and set(first["y_train"]) <= set(range(10))
    (tmp_path / "mnist1d-500-seed3.npz").write_bytes(b"damaged")
    assert np.array_equal(data.mnist1d(num_samples=500, seed=3)["x_test"], first["x_test"])
