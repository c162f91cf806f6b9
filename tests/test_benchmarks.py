"""The timing harness of the benchmark stages (benchmarks/timing_harness.py) and how the two
benchmarks use it, driven by fake callables, clocks and load averages: nothing here times
anything real, so the tests are fast and mean the same on a busy machine."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from benchmarks import bench_layers, bench_loader
from benchmarks import timing_harness as harness


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def calm(load: float = 0.1, cores: int = 2) -> dict:
    return {"load_average": [load, load, load], "cores": cores}


# ---------------------------------------------------------------- order and timing


def test_run_order_interleaves_the_sides():
    assert harness.run_order(["A", "B"], 3, alternate=False) == ["A", "B", "A", "B", "A", "B"]
    assert harness.run_order(["A", "B"], 4) == ["A", "B", "B", "A", "A", "B", "B", "A"]
    assert harness.run_order(["s", "f", "b"], 2) == ["s", "f", "b", "b", "f", "s"]
    assert harness.run_order(["A", "B"], 0) == []


@pytest.mark.parametrize("alternate", [True, False])
def test_interleave_executes_the_sides_in_that_order_warmup_first(alternate):
    executed = []
    sides = {name: (lambda name=name: executed.append(name)) for name in ("A", "B")}
    times = harness.interleave(sides, repeats=3, warmup=2, alternate=alternate)
    expected = harness.run_order(["A", "B"], 2, alternate) + harness.run_order(["A", "B"], 3, alternate)
    assert executed == expected
    assert executed[4:] == (["A", "B", "B", "A", "A", "B"] if alternate else ["A", "B", "A", "B", "A", "B"])
    assert [len(times["A"]), len(times["B"])] == [3, 3]  # warm-up rounds are not recorded


def test_interleave_times_with_the_clock_or_takes_the_reported_seconds():
    clock = FakeClock()
    durations = {"A": iter([3.0, 1.0, 2.0]), "B": iter([5.0, 4.0, 6.0])}

    def timed(name):
        return lambda: clock.advance(next(durations[name]))  # returns None: the clock times it

    reported = iter([0.25, 0.5, 0.125])

    def self_timed():
        clock.advance(100.0)  # set-up the side does not count itself
        return next(reported)

    times = harness.interleave({"A": timed("A"), "B": timed("B"), "C": self_timed}, repeats=3, clock=clock)
    assert times == {"A": [3.0, 1.0, 2.0], "B": [5.0, 4.0, 6.0], "C": [0.25, 0.5, 0.125]}


def test_a_slow_period_hits_both_sides_and_the_minimums_ignore_it():
    """A burst of load over a stretch of the run: timed back to back, one side would take it all;
    interleaved, both sides see it, and the ratio of the minimums stays the true one."""
    clock = FakeClock()
    calls = itertools.count()
    cost = {"A": 2.0, "B": 1.0}  # true ratio 2

    def side(name):
        def run():
            slow = 3.0 if 2 <= next(calls) < 6 else 1.0  # calls 2-5 run three times slower
            clock.advance(cost[name] * slow)

        return run

    times = harness.interleave({"A": side("A"), "B": side("B")}, repeats=4, clock=clock)
    # run order A B B A A B B A: the slow calls 2-5 are B, A, A, B
    assert times == {"A": [2.0, 6.0, 6.0, 2.0], "B": [1.0, 3.0, 3.0, 1.0]}
    a, b = harness.summarize(times["A"]), harness.summarize(times["B"])
    assert a["min_s"] / b["min_s"] == 2.0 and a["median_s"] / b["median_s"] == 2.0


def test_interleave_rejects_no_repeats():
    with pytest.raises(ValueError):
        harness.interleave({"A": lambda: None}, repeats=0)


def test_summarize_min_median_spread():
    s = harness.summarize([3.0, 1.0, 2.0, 10.0])
    assert s["min_s"] == 1.0
    assert s["median_s"] == 2.5  # even count: mean of the middle two
    assert s["spread"] == 2.5
    assert s["runs_s"] == [3.0, 1.0, 2.0, 10.0]
    odd = harness.summarize([4.0, 2.0, 8.0])
    assert (odd["min_s"], odd["median_s"], odd["spread"]) == (2.0, 4.0, 2.0)
    with pytest.raises(ValueError):
        harness.summarize([])


# ---------------------------------------------------------------- the reliability rule


def test_load_threshold():
    assert harness.load_threshold(2, 2) == 0.5
    assert harness.load_threshold(8, 2) == 6.5
    assert harness.load_threshold(2, 4) == 0.5  # oversubscribed: never below the slack


def test_a_calm_run_is_reliable():
    reliable, note = harness.judge(calm(0.2), calm(1.9), threads=2, spreads={"a": 1.05, "b": 1.29})
    assert reliable, note
    assert note.startswith("calm")


def test_high_load_before_is_flagged():
    reliable, note = harness.judge(calm(1.8), calm(2.0), threads=2, spreads={"a": 1.0})
    assert not reliable
    assert "busy before" in note and "1.80" in note and "busy after" not in note


def test_load_after_counts_the_benchmarks_own_threads():
    # 2.4 after, 2 of it the benchmark's own threads: 0.4 <= 0.5
    assert harness.judge(calm(0.1), calm(2.4), threads=2, spreads={})[0]
    reliable, note = harness.judge(calm(0.1), calm(2.7), threads=2, spreads={})
    assert not reliable and "busy after" in note and "busy before" not in note


def test_more_cores_tolerate_more_load():
    assert harness.judge(calm(3.0, cores=8), calm(5.0, cores=8), threads=2, spreads={})[0]
    assert not harness.judge(calm(7.0, cores=8), calm(5.0, cores=8), threads=2, spreads={})[0]


def test_a_large_spread_is_flagged_and_named():
    reliable, note = harness.judge(calm(), calm(), threads=2, spreads={"conv [custom]": 1.1, "epoch [torch]": 1.45})
    assert not reliable
    assert "disturbed runs" in note and "epoch [torch] 1.45" in note and "conv [custom]" not in note
    assert "1 of 2" in note


def test_missing_load_average_is_not_called_reliable():
    unavailable = harness.machine_state(loadavg=lambda: (_ for _ in ()).throw(OSError("no getloadavg")))
    assert unavailable["load_average"] == [] and unavailable["cores"] >= 1
    reliable, note = harness.judge(unavailable, unavailable, threads=1, spreads={"a": 1.0})
    assert not reliable and "unavailable" in note


def test_machine_state_reads_the_given_load_average():
    state = harness.machine_state(loadavg=lambda: (1.5, 1.25, 1.0))
    assert state["load_average"] == [1.5, 1.25, 1.0]
    assert state["cores"] == harness.cores()


def test_wait_for_calm_stops_when_the_load_falls_or_the_time_is_up():
    clock = FakeClock()
    loads = iter([2.0, 1.2, 0.4, 0.1])
    waited = harness.wait_for_calm(
        60, 0.5, loadavg=lambda: (next(loads), 0, 0), sleep=clock.advance, clock=clock, poll=5
    )
    assert waited == 10.0  # two polls at 2.0 and 1.2, calm at the third

    clock = FakeClock()
    waited = harness.wait_for_calm(12, 0.5, loadavg=lambda: (3.0, 0, 0), sleep=clock.advance, clock=clock, poll=5)
    assert waited == 12.0  # gave up at max_wait (5 + 5 + 2)

    clock = FakeClock()
    assert harness.wait_for_calm(0, 0.5, loadavg=lambda: (3.0, 0, 0), sleep=clock.advance, clock=clock) == 0.0


# ---------------------------------------------------------------- bench_layers


def test_layer_rows_quote_the_ratio_of_the_minimums_and_of_the_medians():
    fields = bench_layers.sides_fields({"custom": [3.0, 1.5, 4.0], "torch": [1.0, 1.5, 2.0]}, keep_runs=False)
    row = bench_layers.row_fields("conv", "conv x", fields)
    # the report reads name, custom_s, torch_s, ratio, target, pass: the minimums
    assert (row["custom_s"], row["torch_s"]) == (1.5, 1.0)
    assert row["ratio"] == row["ratio_min"] == 1.5 and row["pass"] is True  # target 1.5
    assert (row["custom_median_s"], row["torch_median_s"], row["ratio_median"]) == (3.0, 1.5, 2.0)
    assert row["custom_spread"] == 2.0 and row["torch_spread"] == 1.5
    assert "custom_runs_s" not in row
    slower = bench_layers.row_fields("conv", "conv y", bench_layers.sides_fields({"custom": [1.6], "torch": [1.0]}))
    assert slower["pass"] is False and slower["custom_runs_s"] == [1.6]
    epoch = bench_layers.row_fields("epoch", "epoch", bench_layers.sides_fields({"custom": [1.3], "torch": [1.0]}))
    assert epoch["target"] == 1.25 and epoch["pass"] is False


def test_time_pair_interleaves_custom_and_torch():
    executed = []
    timing = bench_layers.time_pair(
        lambda: executed.append("custom"), lambda: executed.append("torch"), repeats=2, warmup=1
    )
    assert executed == ["custom", "torch", "custom", "torch", "torch", "custom"]
    assert {"custom_s", "torch_s", "custom_median_s", "torch_median_s", "custom_spread", "torch_spread"} <= set(timing)


def state_hash(model: torch.nn.Module) -> str:
    return hashlib.sha1(b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values())).hexdigest()


def test_epochs_interleave_and_start_from_the_same_weights(monkeypatch):
    log = []
    seconds = {"custom": iter([5.0, 4.0, 6.0]), "torch": iter([2.0, 3.0, 2.5])}

    def fake_train_epoch(model, loss_fn, images, labels, order):
        kind = "custom" if isinstance(loss_fn, bench_layers.layers.CustomCrossEntropyLoss) else "torch"
        log.append((kind, len(order), state_hash(model)))
        with torch.no_grad():  # "training" changes the weights; the next run must not see it
            for p in model.parameters():
                p.add_(1.0)
        timed = len(order) == 128
        return (next(seconds[kind]) if timed else 99.0), 10.0

    monkeypatch.setattr(bench_layers, "train_epoch", fake_train_epoch)
    row = bench_layers.bench_epoch(n_images=128, seed=0, warmup_steps=1, repeats=3)
    timed = [entry for entry in log if entry[1] == 128]
    assert [kind for kind, _, _ in timed] == ["custom", "torch", "torch", "custom", "custom", "torch"]
    assert len({h for _, _, h in log}) == 1  # every run, warm-up included, from the same weights
    assert (row["custom_s"], row["custom_median_s"], row["torch_s"], row["torch_median_s"]) == (4.0, 5.0, 2.0, 2.5)
    assert row["custom_runs_s"] == [5.0, 4.0, 6.0] and row["custom_faults_per_step"] == 10.0


# ---------------------------------------------------------------- bench_loader


def test_loader_fields_quote_speedups_from_minimums_and_medians():
    base = harness.summarize([10.0, 12.0])
    r = bench_loader.loop_fields([4.0, 6.0], base)
    assert r["seconds"] == r["seconds_min"] == 4.0 and r["seconds_median"] == 5.0
    assert r["speedup_vs_seed_style"] == 2.5 and r["speedup_vs_seed_style_median"] == 11.0 / 5.0
    assert r["spread"] == 1.25 and r["runs_s"] == [4.0, 6.0]
    assert bench_loader.loop_fields([10.0, 12.0], base)["speedup_vs_seed_style"] == 1.0


def test_loader_main_interleaves_the_loops_from_the_same_weights(tiny_raw: Path, tmp_path: Path, monkeypatch):
    """The whole of main() on the tiny MNIST, with the epochs faked (nothing is timed for real)."""
    log = []
    seconds = {
        "seed_style": 4.0,
        "engine_float32": 1.0,
        "engine_bfloat16": 8.0,
        "engine_float32_channels_last": 0.8,
        "engine_bfloat16_channels_last": 10.0,
    }

    def record(label, model):
        log.append((label, state_hash(model)))
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.5)
        return seconds[label] * (1.1 if sum(entry[0] == label for entry in log) == 3 else 1.0)  # 2nd timed run slower

    def fake_seed_style_epoch(model, root, mean, std, batch_size, lr, workers, seed, images=None):
        return record("seed_style", model)

    def fake_train_one_epoch(model, images, labels, prepare, optimizer, loss_fn, cfg, generator):
        label = f"engine_{cfg.precision}" + ("_channels_last" if cfg.channels_last else "")
        return SimpleNamespace(seconds=record(label, model))

    monkeypatch.setattr(bench_loader, "seed_style_epoch", fake_seed_style_epoch)
    monkeypatch.setattr(bench_loader, "train_one_epoch", fake_train_one_epoch)
    monkeypatch.setattr(bench_loader.harness, "machine_state", lambda: calm(0.2))
    params = tmp_path / "params.yaml"
    params.write_text(
        f"benchmarks:\n  loader:\n    data: {tiny_raw / 'mnist'}\n    batch_size: 64\n    lr: 0.01\n    seed: 1\n"
    )
    out = tmp_path / "loader.json"
    assert bench_loader.main(["--params", str(params), "--json", str(out)]) == 0

    labels = list(seconds)
    assert [label for label, _ in log] == labels + labels + labels[::-1]  # warm-up, then two interleaved rounds
    assert len({h for _, h in log}) == 1  # every epoch starts from the same initial weights
    data = json.loads(out.read_text())
    assert data["repeats"] == 2 and data["images"] == 300 and data["cores"] >= 1
    assert data["reliable"] is True and data["reliability_note"].startswith("calm")
    assert data["load_average_before"] == [0.2, 0.2, 0.2]
    f32 = data["results"]["engine_float32"]
    assert f32["seconds"] == 1.0 and f32["seconds_median"] == pytest.approx(1.05)
    assert f32["speedup_vs_seed_style"] == pytest.approx(4.0)
    assert f32["speedup_vs_seed_style_median"] == pytest.approx(4.2 / 1.05)
    assert 0.0 <= f32["test_accuracy"] <= 1.0
    assert set(data["results"]) == set(labels)
