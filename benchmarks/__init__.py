"""Benchmarks for framecolor: metrics (CIEDE2000, SSIM, PSNR, colourfulness, CDC, warp error), the
quality bench with its baselines, the speed bench, the ECCV16 yardstick and the cross-domain experiment.
Builds on framecolor; framecolor never imports it."""
