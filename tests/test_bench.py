"""`framecolor bench quality` / `bench speed` on a tiny synthetic clip, the --data spec parser, and the
ECCV16 yardstick's layout.  No timing is asserted: speed figures are read, not tested."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from benchmarks.quality import DataSpec, _Broadcast, parse_data_spec
from clips import make_shapes_clip
from framecolor.cli import cli
from framecolor.errors import UserError


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return make_shapes_clip(tmp_path_factory.mktemp("clip") / "shapes.mp4", frames=12, size=(64, 48), audio=False)


# ------------------------------------------------------------------------------------------ data spec
def test_data_spec_parses_path_domain_and_range(tiny_clip):
    s = parse_data_spec(f"{tiny_clip}:cartoon@2:10:4")
    assert (s.path, s.domain, s.start, s.end, s.step, s.has_range) == (tiny_clip, "cartoon", 2, 10, 4, True)
    s = parse_data_spec(str(tiny_clip))
    assert (s.domain, s.start, s.end, s.step, s.has_range) == ("shapes", 0, None, 10, False)
    s = parse_data_spec(f"{tiny_clip}@5:")
    assert (s.start, s.end, s.step) == (5, None, 10)


@pytest.mark.parametrize("bad", ["", "@1:2", "{clip}@a:b", "{clip}@5:3", "{clip}@1:2:0", "{clip}:two words",
                                 "/no/such/file.mp4", "{clip}@1:2:3:4"])
def test_malformed_data_spec_is_a_user_error(tiny_clip, bad):
    with pytest.raises(UserError):
        parse_data_spec(bad.format(clip=tiny_clip))


def test_broadcast_gives_every_consumer_every_item_in_order_across_threads():
    hub = _Broadcast(iter(range(500)), 3)
    got = [[] for _ in range(3)]

    def take(k):
        got[k].extend(hub.consumer(k))

    threads = [threading.Thread(target=take, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [list(range(500))] * 3


# ------------------------------------------------------------------------------------------ commands
def test_bench_quality_writes_every_promised_file(tiny_clip, tiny_model_path, tmp_path):
    out = tmp_path / "q"
    result = CliRunner().invoke(cli, ["bench", "quality", "--model", str(tiny_model_path),
                                      "--data", f"{tiny_clip}:cartoon@0:12:4", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    metrics = ["ciede2000_mean", "ciede2000_median", "ssim", "psnr", "colourfulness_ratio", "cdc", "warp_error"]
    assert {"results.md", "results.csv", "results.json", "contact_shapes_cartoon.png"} <= names
    assert {f"chart_{m}.png" for m in metrics} <= names
    assert not any(n.endswith(".part") for n in names)
    data = json.loads((out / "results.json").read_text())
    ds = data["datasets"][0]
    assert ds["accuracy_frames"] == [0, 4, 8]
    assert set(ds["methods"]) == {"gray", "flow propagation", "tiny", "ground truth"}
    for name, s in ds["methods"].items():
        assert s["cdc"] is not None and s["warp_error"] is not None, name
    assert ds["methods"]["ground truth"]["ssim"] == pytest.approx(1.0)
    assert ds["methods"]["gray"]["colourfulness_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert ds["methods"]["flow propagation"]["accuracy_frames"] == 2  # frame 0 is its reference
    csv_lines = (out / "results.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 1 + 4
    assert "| flow propagation |" in (out / "results.md").read_text()


def test_bench_quality_scores_temporal_off_and_flow_side_by_side(tiny_clip, tiny_model_path, tmp_path):
    """--temporal off --temporal flow: the same model twice, on the same frames, as two methods."""
    out = tmp_path / "t"
    result = CliRunner().invoke(cli, ["bench", "quality", "--model", str(tiny_model_path), "--temporal", "off",
                                      "--temporal", "flow", "--data", f"{tiny_clip}:cartoon@0:12:4",
                                      "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    methods = json.loads((out / "results.json").read_text())["datasets"][0]["methods"]
    off, flow = methods["tiny [temporal off]"], methods["tiny [temporal flow]"]
    assert off["accuracy_frames"] == flow["accuracy_frames"] == 3
    assert off["warp_error"] is not None and flow["warp_error"] is not None


def test_bench_quality_scores_backends_side_by_side(tiny_clip, tiny_model_path, tmp_path):
    """--backend torch:fp32 --backend onnxruntime:fp32: the same model on two runtimes, scored on the same
    frames as two methods whose CIEDE2000 agree (fp32 on both: float rounding only)."""
    from framecolor.backends.runtimes import runtime_installed

    if not runtime_installed("onnxruntime"):
        pytest.skip("onnxruntime is not installed")
    out = tmp_path / "b"
    result = CliRunner().invoke(cli, ["bench", "quality", "--model", str(tiny_model_path), "--backend", "torch:fp32",
                                      "--backend", "onnxruntime:fp32", "--data", f"{tiny_clip}:cartoon@0:12:4",
                                      "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    methods = json.loads((out / "results.json").read_text())["datasets"][0]["methods"]
    a, b = methods["tiny [torch fp32]"], methods["tiny [onnxruntime fp32]"]
    assert a["accuracy_frames"] == b["accuracy_frames"] == 3
    assert abs(a["ciede2000_mean"] - b["ciede2000_mean"]) < 0.01


def test_bench_quality_on_a_still_image_has_no_temporal_figures(tiny_model_path, tmp_path):
    import cv2

    from clips import shapes_image

    img = tmp_path / "still.png"
    cv2.imwrite(str(img), cv2.cvtColor(shapes_image(3, 40, 32), cv2.COLOR_RGB2BGR))
    out = tmp_path / "q"
    result = CliRunner().invoke(cli, ["bench", "quality", "--model", str(tiny_model_path), "--data", f"{img}:photo",
                                      "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    ds = json.loads((out / "results.json").read_text())["datasets"][0]
    assert ds["sequence"] is False and "cdc" not in ds["methods"]["tiny"]
    assert "flow propagation" not in ds["methods"]


def test_bench_quality_malformed_data_is_one_line_error(tiny_clip, tiny_model_path, tmp_path):
    result = CliRunner().invoke(cli, ["bench", "quality", "--model", str(tiny_model_path),
                                      "--data", f"{tiny_clip}@9:3", "--out", str(tmp_path / "q")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "range end" in lines[0]
    assert not (tmp_path / "q").exists()


def test_bench_speed_prints_table_and_writes_json(tiny_clip, tiny_model_path, tmp_path):
    out = tmp_path / "speed.json"
    result = CliRunner().invoke(cli, ["bench", "speed", str(tiny_clip), "--model", str(tiny_model_path),
                                      "--batch", "1", "--batch", "4", "--render-size", "32", "--device", "cpu",
                                      "--backend", "torch", "--no-stages", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [c["batch"] for c in data["configs"]] == [1, 4]
    for c in data["configs"]:
        assert c["frames"] == 12
        for key in ("io_fps", "model_fps", "e2e_fps", "e2e_over_io", "e2e_over_min", "peak_rss_mb"):
            assert c[key] > 0, key
        assert c["render_size"] == 32
    assert data["meta"]["device_name"]
    assert "e2e/io" in result.output


def test_bench_speed_times_temporal_off_and_flow_side_by_side(tiny_clip, tiny_model_path, tmp_path):
    out = tmp_path / "s.json"
    result = CliRunner().invoke(cli, ["bench", "speed", str(tiny_clip), "--model", str(tiny_model_path),
                                      "--temporal", "off", "--temporal", "flow", "--json", str(out),
                                      "--device", "cpu", "--backend", "torch", "--no-stages"])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["configs"]
    assert [r["temporal"] for r in rows] == ["off", "flow"]
    assert all(r["e2e_fps"] > 0 and r["frames"] == rows[0]["frames"] for r in rows)


def test_bench_speed_compares_every_installed_backend_with_torch_and_costs_each_stage(tiny_clip, tiny_model_path,
                                                                                     tmp_path):
    """Without --backend, every installed backend runs side by side, torch fp32 first; each row carries its
    ab difference against torch fp32 on the clip's frames (float rounding for fp32 runtimes), and each
    backend a per-stage CPU table covering every stage of the pipeline."""
    from benchmarks.speed import installed_backends
    from benchmarks.stages import STAGES

    out = tmp_path / "s.json"
    result = CliRunner().invoke(cli, ["bench", "speed", str(tiny_clip), "--model", str(tiny_model_path),
                                      "--device", "cpu", "--render-size", "32", "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["configs"]
    specs = installed_backends("cpu")
    assert [f"{r['backend']}:{r['precision']}" for r in rows] == specs and specs[0] == "torch:fp32"
    for r in rows:
        assert r["ab_diff_frames"] > 0 and r["e2e_fps"] > 0
        assert r["ab_max_diff"] < (1e-2 if r["precision"] == "fp32" else 5.0), r
        assert set(STAGES) <= set(r["stages"]) and all(r["stages"][s] >= 0 for s in STAGES)
        assert r["stages"]["frames"] == 12
    assert "| decode |" in result.output and "| inference |" in result.output


def test_bench_speed_unknown_backend_is_one_line_error(tiny_clip, tmp_path):
    result = CliRunner().invoke(cli, ["bench", "speed", str(tiny_clip), "--backend", "openvino:int4",
                                      "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len([ln for ln in result.output.splitlines() if ln.strip()]) == 1 and "--precision" in result.output


def test_bench_speed_missing_input_is_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "speed", str(tmp_path / "nope.mp4"), "--json", str(tmp_path / "s.json")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len([ln for ln in result.output.splitlines() if ln.strip()]) == 1


def test_eccv16_yardstick_has_the_published_parameter_count():
    import torch

    from benchmarks.eccv16 import ECCV16Colorizer, parameter_count

    net = ECCV16Colorizer().eval()
    assert parameter_count(net) / 1e6 == pytest.approx(32.2, abs=0.1)
    with torch.no_grad():
        assert net(torch.zeros(1, 1, 32, 48)).shape == (1, 2, 32, 48)


# ------------------------------------------------------------------------------------------ reference
def test_bench_reference_keys_each_shot_and_scores_only_other_frames(tmp_path):
    """`bench reference`: the detected shot starts are the keys, keys are never scored, every STEP-th other
    frame is, and both methods carry the keys' colours (errors far below what gray scores on these
    saturated shapes)."""
    from clips import make_cut_clip

    clip, starts = make_cut_clip(tmp_path / "cuts.mp4")  # shots at 0, 10, 18
    out = tmp_path / "ref.json"
    result = CliRunner().invoke(cli, ["bench", "reference", "--data", f"{clip}@0:30:5",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    (r,) = json.loads(out.read_text())["results"]
    assert r["keys"] == starts
    assert r["scored"] == [i for i in range(0, 30, 5) if i not in starts]
    assert len(r["per_frame"]["reference_mode"]) == len(r["scored"])
    assert r["reference_mode"] < 5.0 and r["flow_propagation"] < 5.0


def test_bench_reference_rejects_keys_that_are_not_numbers(tiny_clip):
    result = CliRunner().invoke(cli, ["bench", "reference", "--data", str(tiny_clip), "--keys", "0,x"])
    assert result.exit_code != 0
    assert "--keys" in result.output and "Traceback" not in result.output


def test_cpu_bound_ceiling_counts_the_model_only_where_it_runs_on_the_cpu():
    """Two cores, 100 ms of decode+encode and 300 ms of model per frame: at most 2 / 0.4 = 5 frames/s on CPU;
    on a GPU only decode+encode occupies the cores (20 frames/s)."""
    from benchmarks.speed import cpu_bound_fps

    assert cpu_bound_fps(100.0, 300.0, "cpu", cores=2) == pytest.approx(5.0)
    assert cpu_bound_fps(100.0, 300.0, "cuda", cores=2) == pytest.approx(20.0)


# ------------------------------------------------------------------------------ reference scenarios (issue 16)
def _fake_eval_anime(root, make_cut_clip):
    """A miniature eval-anime folder: an anidoc-style clip with its model sheet, a konobi-named two-shot clip
    (cut at 12: the tests shorten the real clip's 108 in TRUE_CUTS), two ToonCrafter-style colour pairs and a
    line-art sketch that is not a pair."""
    import cv2

    from clips import read_all_frames, shapes_image

    (root / "clips").mkdir(parents=True)
    (root / "stills" / "anidoc-refs").mkdir(parents=True)
    (root / "stills" / "tooncrafter").mkdir(parents=True)
    make_cut_clip(root / "clips" / "anidoc-sample1.mp4", shot_lengths=(8,), size=(64, 48))
    make_cut_clip(root / "clips" / "eisai-konobi-e012-339_64x48_12fps.mp4", shot_lengths=(12, 12), size=(64, 48))
    first = read_all_frames(root / "clips" / "anidoc-sample1.mp4")[0][2]
    cv2.imwrite(str(root / "stills" / "anidoc-refs" / "sample1.png"), cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
    ts = root / "stills" / "tooncrafter"
    for name, (a, b) in {"x_frame1": (0, 2), "y.mp4_00-00": (5, 6)}.items():
        second = name.replace("frame1", "frame3").replace("00-00", "00-01")
        cv2.imwrite(str(ts / f"{name}.png"), cv2.cvtColor(shapes_image(a, 64, 48), cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(ts / f"{second}.png"), cv2.cvtColor(shapes_image(b, 64, 48), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(ts / "frame0001_05.png"), np.full((48, 64, 3), 255, np.uint8))


def test_bench_reference_scenarios_score_every_method_and_never_a_key(tmp_path, tiny_model_path, monkeypatch):
    """`bench reference --scenario all`: the three scenarios' items (keyed clips, konobi from 108 and the
    ToonCrafter pairs only, the model sheet), each with gray, automatic (the --model given), flow propagation
    and reference mode scored on the same frames, keys never scored, warp errors beside the original's, a
    table with ratios and a contact sheet."""
    from clips import make_cut_clip

    from benchmarks import reference as R

    monkeypatch.setitem(R.TRUE_CUTS, "eisai-konobi-e012-339", [12])
    root = tmp_path / "eval-anime"
    _fake_eval_anime(root, make_cut_clip)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["bench", "reference", "--scenario", "all", "--eval-anime", str(root),
                                      "--model", str(tiny_model_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    items = {(r["scenario"], r["name"]): r for r in data["results"]}
    assert set(items) == {("keyed", "anidoc-sample1"), ("keyed", "eisai-konobi-e012-339"),
                          ("other", "eisai-konobi-e012-339 from 12"), ("other", "tooncrafter x"),
                          ("other", "tooncrafter y.mp4"), ("sheet", "anidoc-sample1")}
    assert data["model"] == str(tiny_model_path)
    konobi = items[("keyed", "eisai-konobi-e012-339")]
    assert konobi["scored"] == [2, 4, 6, 8, 10, 14, 16, 18, 20, 22]  # every 2nd on a short clip, keys 0, 12 not
    assert items[("other", "eisai-konobi-e012-339 from 12")]["scored"] == [12, 17, 22]
    assert items[("other", "tooncrafter x")]["scored"] == [1]
    for r in data["results"]:
        assert set(r["ciede2000"]) == {"gray", "automatic", "flow", "reference"}
        assert all(v is not None and v >= 0 for v in r["ciede2000"].values()), r
    # the keyed shots are carried: reference mode and flow far below gray on these saturated shapes
    for key in [("keyed", "anidoc-sample1"), ("keyed", "eisai-konobi-e012-339"), ("sheet", "anidoc-sample1")]:
        c = items[key]["ciede2000"]
        assert c["reference"] < 0.5 * c["gray"] and c["flow"] < 0.5 * c["gray"], (key, c)
    assert set(konobi["warp_error"]) == {"reference", "truth"}
    table = (out / "results.md").read_text()
    assert "(a) keyed shots" in table and "(b) other shots" in table and "(c) model sheet" in table
    assert "ref / gray" in table and "ref / flow" in table
    import cv2

    assert cv2.imread(str(out / "contact.png")) is not None


def test_bench_reference_scenarios_need_the_eval_folder(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "reference", "--scenario", "other"])
    assert result.exit_code == 2 and "--eval-anime" in result.output
    result = CliRunner().invoke(cli, ["bench", "reference", "--scenario", "sheet", "--eval-anime", str(tmp_path)])
    assert result.exit_code == 2 and "clips/" in result.output


def test_tooncrafter_pairs_leave_out_the_sketches(tmp_path):
    """Pairs are `X_frame1`/`X_frame3` and `X_00-00`/`X_00-01`; `frame00xx_yy` sketches and unpaired files
    are not part of them."""
    from benchmarks.reference import _pairs

    for n in ["a_frame1", "a_frame3", "b.mp4_00-00", "b.mp4_00-01", "c_frame1", "frame0001_05", "frame0001_09"]:
        (tmp_path / f"{n}.png").write_bytes(b"")
    assert [(a.stem, b.stem) for a, b in _pairs(tmp_path)] == [("a_frame1", "a_frame3"),
                                                                ("b.mp4_00-00", "b.mp4_00-01")]
