"""CPU milliseconds per frame of each stage of the pipeline, measured one stage at a time.

The product runs the stages overlapped on three threads (framecolor.stream); to charge each its own
cost, this runs them as phases over the same first N frames of a video: every frame goes through one
stage before any goes through the next, and each phase is timed with the process's CPU clock (all its
threads, so a stage's helper threads -- the codec's, OpenVINO's, the two upsampling strips -- count, and
an encoder's buffered frames are flushed inside the encode phase).  Per-frame results are copied out of
the timed region and their temporaries freed, as the streaming pipeline frees them: otherwise every
stage would also pay for first-touching fresh memory (page faults: about 10 ms per 1080p float frame)
that the pipeline, which reuses its buffers, does not.  The same functions as the pipeline's
are called: VideoReader(luma_only=True), frame_luminance, resize(..., "area"), Colorizer.predict,
FlowSmoother (its optical flow timed apart), upsample_to_rgb (upsampling fused with Lab -> RGB), and
VideoWriter with the product's default codec settings.

Figures to read, not assertions: nothing here is timed in the tests.
"""

from __future__ import annotations

import time
from pathlib import Path

STAGES = ("decode", "L extraction", "resize", "inference", "smoothing (without flow)", "optical flow",
          "upsampling + Lab->RGB (fused)", "encode")


def stage_costs(path: Path, colorizer, frames: int = 24, workdir: Path | None = None,
                temporal: str = "flow") -> dict:
    """{stage: CPU ms per frame} (plus 'total' and 'frames') for the first ``frames`` frames of a video."""
    import tempfile

    from framecolor.io.video_reader import VideoReader
    from framecolor.io.video_writer import VideoWriter
    from framecolor.stream import frame_luminance, render_shape
    from framecolor.temporal import make_smoother
    from framecolor.upsample import resize, upsample_to_rgb

    cpu: dict[str, float] = {}

    def phase(name, fn):
        c0 = time.process_time()
        result = fn()
        cpu[name] = cpu.get(name, 0.0) + time.process_time() - c0
        return result

    reader = VideoReader(path, end=frames, luma_only=True)
    info = reader.info
    decoded = phase("decode", lambda: list(reader))
    reader.close()
    n = len(decoded)
    if n == 0:
        raise ValueError(f"{path}: no frames decoded")
    def each(name, fn, items):
        """fn over items, only the calls timed; results kept as copies made outside the timed region."""
        out = []
        for item in items:
            c0 = time.process_time()
            y = fn(item)
            cpu[name] = cpu.get(name, 0.0) + time.process_time() - c0
            out.append(y.copy())
            del y
        return out

    L_full = each("L extraction", lambda f: frame_luminance(f.image), decoded)
    H, W = L_full[0].shape
    h, w = render_shape(H, W, colorizer.render_size)
    L_small = each("resize", lambda L: resize(L, w, h, "area"), L_full)
    colorizer.predict(L_small[: colorizer.batch])  # warm-up (compilation, first-call allocations)
    ab_small = phase("inference", lambda: colorizer.predict(L_small))

    smoother = make_smoother(temporal)
    if smoother is not None:
        from framecolor.temporal.smoothers import TemporalItem

        flow_cpu = [0.0]
        plain_flow = smoother._flow

        def timed_flow(a, b):  # the flow's own share of the smoothing stage
            c0 = time.process_time()
            try:
                return plain_flow(a, b)
            finally:
                flow_cpu[0] += time.process_time() - c0

        smoother._flow = timed_flow

        def smooth():
            out = {}
            for i in range(n):
                for item in smoother.process(TemporalItem(index=i, L=L_small[i], ab=ab_small[i], payload=i)):
                    out[item.payload] = item.ab
            for item in smoother.flush():
                out[item.payload] = item.ab
            return [out[i] for i in range(n)]

        ab_small = phase("smoothing (without flow)", smooth)
        cpu["smoothing (without flow)"] -= flow_cpu[0]
        cpu["optical flow"] = flow_cpu[0]
    dtype = decoded[0].image.dtype
    rgb = each("upsampling + Lab->RGB (fused)", lambda t: upsample_to_rgb(t[0], t[1], t[2], dtype),
               list(zip(ab_small, L_small, L_full)))
    with tempfile.TemporaryDirectory(prefix="framecolor-stages-") as tmp:
        out = Path(workdir or tmp) / f"stages{path.suffix or '.mkv'}"

        def encode():
            with VideoWriter(out, source=info, overwrite=True) as writer:
                for frame, image in zip(decoded, rgb):
                    frame.image = image
                    writer.write(frame)

        phase("encode", encode)
    result = {name: 1000.0 * cpu[name] / n for name in STAGES if name in cpu}
    result["total"] = sum(result.values())
    result["frames"] = n
    result["frame_size"] = [W, H]
    result["render_shape"] = [w, h]
    return result


def format_stages(rows: list[tuple[str, dict]]) -> str:
    """A markdown table: one column per measured configuration (label, stage_costs result)."""
    head = "| stage (CPU ms per frame) | " + " | ".join(label for label, _ in rows) + " |"
    lines = [head, "|" + " --- |" * (len(rows) + 1)]
    for name in STAGES + ("total",):
        if any(name in r for _, r in rows):
            cells = [f"{r[name]:.1f}" if name in r else "-" for _, r in rows]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
