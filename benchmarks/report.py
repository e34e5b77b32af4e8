"""Writing the quality results: results.json / .csv / .md, one PNG chart per metric and a contact sheet
per data set.  Every file is written under a temporary name and renamed when complete."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

METRICS = [
    # key, label, better
    ("ciede2000_mean", "CIEDE2000 mean", "lower"),
    ("ciede2000_median", "CIEDE2000 median", "lower"),
    ("ssim", "SSIM (RGB)", "higher"),
    ("psnr", "PSNR (dB)", "higher"),
    ("colourfulness_ratio", "colourfulness ratio (pred / truth)", "closer to 1"),
    ("neutral_chroma", "chroma on neutral whites/blacks", "lower"),
    ("cdc", "CDC (truth's own beside it)", "closer to truth"),
    ("warp_error", "ab warp error (truth's own beside it)", "closer to truth"),
]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.{digits}f}"


def _json_safe(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return _json_safe(x.item())
    return x


def rows(results: list[dict]) -> list[dict]:
    """One flat row per (data set, method)."""
    out = []
    for r in results:
        for method, s in r["methods"].items():
            row = {"data": r["data"], "name": r["name"], "domain": r["domain"], "method": method}
            for key, _, _ in METRICS:
                row[key] = s.get(key, float("nan"))
            row["accuracy_frames"] = s.get("accuracy_frames")
            out.append(row)
    return out


def write_results(out_dir: Path, results: list[dict], meta: dict) -> list[Path]:
    """Write every promised file; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    table = rows(results)

    payload = {"meta": meta, "datasets": [{k: v for k, v in r.items() if k != "sheet"} for r in results]}
    p = out_dir / "results.json"
    _write_atomic(p, json.dumps(_json_safe(payload), indent=2).encode())
    written.append(p)

    buf = io.StringIO()
    fields = ["data", "name", "domain", "method", *[k for k, _, _ in METRICS], "accuracy_frames"]
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    for row in table:
        w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    p = out_dir / "results.csv"
    _write_atomic(p, buf.getvalue().encode())
    written.append(p)

    p = out_dir / "results.md"
    _write_atomic(p, markdown(results, meta).encode())
    written.append(p)

    written += write_charts(out_dir, results)
    for r in results:
        if r.get("sheet"):
            written.append(write_contact_sheet(out_dir, r))
    return written


def markdown(results: list[dict], meta: dict) -> str:
    lines = ["# framecolor bench quality", ""]
    lines.append(f"Models: {', '.join(meta.get('models', [])) or '-'}. Device {meta.get('device')}, batch "
                 f"{meta.get('batch')}, render size {meta.get('render_size') or 'model default'}. "
                 f"Took {meta.get('seconds', 0):.1f} s.")
    lines.append("")
    lines.append("Protocol (design notes): L only in, compared with the original in exact CIE Lab (D65). "
                 "CIEDE2000 lower is better; SSIM on RGB (data range 255) and PSNR higher is better; "
                 "colourfulness ratio (Hasler & Suesstrunk 2003) near 1; CDC (mean JS divergence of RGB "
                 "histograms 1, 2, 4 frames apart) and ab warp error (Lab units, non-occluded pixels, flow of "
                 "the true L) are best judged against the ground truth's own figure.")
    for r in results:
        lines += ["", f"## {r['name']} ({r['domain']})", ""]
        acc = r["accuracy_frames"]
        lines.append(f"`{r['data']}`: accuracy on {len(acc)} frame(s) "
                     f"({_frames_text(acc)}); "
                     + (f"temporal figures on frames {r['temporal_frames'][0]}.."
                        f"{r['temporal_frames'][1] if r['temporal_frames'][1] is not None else 'end'} "
                        f"(exclusive end); flow propagation reference frames {r['flow_reference_frames']} "
                        f"(left out of its accuracy)." if r["sequence"] else "stills: no temporal figures."))
        lines.append("")
        head = ["method", "CIEDE2000 mean", "median", "SSIM", "PSNR", "colourfulness ratio", "neutral chroma"]
        if r["sequence"]:
            head += ["CDC", "warp error"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + " --- |" * len(head))
        for method, s in r["methods"].items():
            cells = [method, _fmt(s["ciede2000_mean"], 2), _fmt(s["ciede2000_median"], 2), _fmt(s["ssim"], 3),
                     _fmt(s["psnr"], 1), _fmt(s["colourfulness_ratio"], 2), _fmt(s.get("neutral_chroma"), 2)]
            if r["sequence"]:
                cells += [_fmt(s.get("cdc"), 4), _fmt(s.get("warp_error"), 2)]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def _frames_text(frames: list[int]) -> str:
    if len(frames) <= 8:
        return ", ".join(map(str, frames))
    step = frames[1] - frames[0]
    return f"{frames[0]}, {frames[1]}, ... {frames[-1]} (every {step})"


def write_charts(out_dir: Path, results: list[dict]) -> list[Path]:
    """One grouped bar chart per metric: data sets (domain) on the x axis, one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    methods = []
    for r in results:
        for m in r["methods"]:
            if m not in methods:
                methods.append(m)
    groups = [f"{r['name']}\n({r['domain']})" for r in results]
    for key, label, better in METRICS:
        fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(groups) * max(1, len(methods)) / 3), 3.6), dpi=100)
        width = 0.8 / max(1, len(methods))
        for k, m in enumerate(methods):
            vals = [r["methods"].get(m, {}).get(key, float("nan")) for r in results]
            vals = [float("nan") if v is None else v for v in vals]
            xs = np.arange(len(groups)) + (k - (len(methods) - 1) / 2) * width
            ax.bar(xs, vals, width, label=m)
        ax.set_xticks(np.arange(len(groups)))
        ax.set_xticklabels(groups, fontsize=8)
        ax.set_title(f"{label} ({better} is better)", fontsize=10)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        p = out_dir / f"chart_{key}.png"
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        _write_atomic(p, buf.getvalue())
        written.append(p)
    return written


def write_contact_sheet(out_dir: Path, result: dict) -> Path:
    """Rows: the sampled frames; columns: gray input | each model | flow propagation | truth."""
    import cv2

    from .quality import FLOW, GRAY, TRUTH

    columns = [GRAY, *result["models"], FLOW, TRUTH]
    rows_img = []
    for entry in result["sheet"]:
        tiles = []
        for c in columns:
            t = entry.get(c)
            if t is None:
                continue
            tile = t.copy()
            label = "gray input" if c == GRAY else c
            cv2.putText(tile, f"{label[:24]} #{entry['index']}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (255, 255, 255), 2, cv2.LINE_AA)
            cv2.putText(tile, f"{label[:24]} #{entry['index']}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(tile)
        rows_img.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows_img)
    rows_img = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows_img]
    sheet = np.concatenate(rows_img, axis=0)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{result['name']}_{result['domain']}")
    p = out_dir / f"contact_{safe}.png"
    ok, data = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding of the contact sheet failed")
    _write_atomic(p, data.tobytes())
    return p
