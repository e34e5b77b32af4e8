"""Scale-out on Ray: many inputs, or one long episode split at scene cuts, across workers and machines.

``framecolor run INPUT... --ray [ADDRESS]`` hands the work to a Ray cluster (the optional extra ``ray``):

* One **worker actor** per GPU (``--gpus-per-worker``) or per N CPU cores (``--cpus-per-worker``) loads the
  model once (:class:`framecolor.colorizers.automatic.Colorizer`) and colours whole inputs through the very code of the
  single-process run (:func:`framecolor.job.colour_input`), so several episodes and frame folders progress
  at once.
* **Splitting** (``--split-episodes``): a video is first scanned for hard cuts on L with the same detector
  the temporal smoother uses (:class:`framecolor.temporal.cuts.CutDetector`, on the same render-size L), its
  shots grouped into segments of roughly equal length that start at cuts, each segment coloured into a
  video-only file, and the segments joined by packet copy (no re-encode) into one file, with the source's
  audio and subtitle packets copied once. The smoother resets at every cut, so a segment that starts at a
  cut is coloured exactly as in the unsplit run (Lai et al., ECCV 2018, and this project's
  ``framecolor.temporal``: history never crosses a cut). Every segment starts with a key frame, so the packet
  concatenation is a valid stream; timestamps are the source's own, hence continuous.
* **Progress** of the whole cluster in one tqdm bar: workers add their frame counts to a small progress
  actor that the driver polls.
* **Faults**: a worker process that dies is restarted by Ray (``max_restarts``) and its task is run again
  (``max_task_retries``), on whichever node has room; a transient ``OSError`` (shared storage) is retried
  (``retry_exceptions``). A bad input (``UserError``/``MediaError``: truncated, not media...) is not
  retried: that input fails with its one-line message while the others finish. Outputs are complete or
  absent: videos are written under a hidden temporary name and renamed; temporaries of dead workers and
  segment folders are removed.

Inputs, outputs and the model must be on **shared storage** (the same path on every node): workers read
and write the files themselves; only small messages travel through Ray.

``ray`` is imported inside functions: importing this package does not need it.

* ``plan``: options, results, segment planning, ``--ray`` addresses;
* ``worker``: the actor that colours inputs, scans, segments and joins, and the progress board;
* ``driver``: connecting, handing out tasks, retries and failures, one progress bar.
"""

from .driver import run_cluster, run_jobs_on_ray, run_on_cluster
from .plan import (MIN_SEGMENT_FRAMES, ClusterOptions, ClusterProgress, ClusterResult, JobsFailed, parse_address,
                   plan_segments)

__all__ = ["parse_address", "ClusterOptions", "ClusterResult", "ClusterProgress", "JobsFailed", "plan_segments",
           "run_cluster", "run_on_cluster", "run_jobs_on_ray", "MIN_SEGMENT_FRAMES"]
