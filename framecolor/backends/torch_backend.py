"""The torch backend: fp32 on CPU with the U-Net rewritten for inference (batch norm folded, sub-pixel
convolutions), fp16 or bf16 on CUDA with pinned host buffers reused from call to call."""

from __future__ import annotations

import numpy as np

from ..errors import UserError


class _PinnedIO:
    """Host <-> CUDA transfers through page-locked buffers kept from call to call (one per shape)."""

    def __init__(self, device):
        self.device = device
        self._host: dict[tuple, object] = {}

    def _buffer(self, key: tuple, shape: tuple, dtype):
        import torch

        buf = self._host.get(key)
        if buf is None or tuple(buf.shape) != shape:
            buf = torch.empty(shape, dtype=dtype, pin_memory=True)
            self._host[key] = buf
        return buf

    def upload(self, array: np.ndarray, dtype, memory_format):
        import torch

        host = self._buffer(("in",), array.shape, torch.float32)
        host.numpy()[...] = array
        x = host.to(self.device, non_blocking=True)
        return x.to(dtype).contiguous(memory_format=memory_format)

    def download(self, y) -> np.ndarray:
        import torch

        y = y.float()
        host = self._buffer(("out",), tuple(y.shape), torch.float32)
        host.copy_(y, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return host.numpy().copy()  # the buffer is overwritten by the next batch


# The U-Net's decoder spends more CPU time on memory traffic than on convolutions: each block upsamples
# (nearest) and concatenates full-size tensors before a 3x3 convolution, and batch norm and the
# activations are passes of their own.  For inference the same function is computed with
#   * batch norm folded into the convolution before it (eval mode: a fixed affine map per channel);
#   * "nearest 2x upsampling, then 3x3 convolution" as one 3x3 convolution at the low resolution with 4x
#     the output channels, one per output phase, followed by a pixel shuffle (the sub-pixel convolution
#     of Shi et al., CVPR 2016: each phase's kernel is the sum of the 3x3 taps that read the same
#     low-resolution pixel);
#   * a convolution of a concatenation as the sum of one convolution per part (no concatenated copy).
# Same outputs up to float rounding (tested); faster on the CPU (benchmarks/RESULTS.md, issue 7).
_PHASE_TAPS = {0: (0, 1, 1), 1: (1, 1, 2)}  # per output phase: low-res offset index of taps -1, 0, +1


def _folded(conv, norm):
    """(weight, bias) of ``norm(conv(x))`` as one convolution, or None for a norm that cannot fold."""
    import torch
    from torch import nn

    w = conv.weight.detach().clone()
    b = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    if isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats and norm.running_var is not None:
        scale = (norm.weight.detach() if norm.affine else torch.ones_like(b)) / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias.detach() if norm.affine else torch.zeros_like(b)
        return w * scale[:, None, None, None], (b - norm.running_mean) * scale + shift
    if isinstance(norm, nn.Identity):
        return w, b
    return None


def _subpixel_weight(w):
    """(Cout, Cin, 3, 3) applied after nearest 2x upsampling -> (4 Cout, Cin, 3, 3) applied at low
    resolution; pixel-shuffled (factor 2), its output is the same."""
    cout, cin = w.shape[:2]
    big = w.new_zeros(cout, 2, 2, cin, 3, 3)
    for a in (0, 1):
        for b in (0, 1):
            for dy in range(3):
                for dx in range(3):
                    big[:, a, b, :, _PHASE_TAPS[a][dy], _PHASE_TAPS[b][dx]] += w[:, :, dy, dx]
    return big.reshape(cout * 4, cin, 3, 3)


def _conv_from(weight, bias, stride: int = 1):
    from torch import nn

    k = weight.shape[-1]
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], k, stride=stride, padding=1, bias=bias is not None)
    conv.weight.data.copy_(weight)
    if bias is not None:
        conv.bias.data.copy_(bias)
    return conv


def _make_fast_unet(unet):
    import torch
    import torch.nn.functional as F
    from torch import nn

    from ..models.unet import pad_to_multiple

    class UpsampleConv(nn.Module):
        """conv3x3(nearest_up2(cat(parts))) as per-part sub-pixel convolutions, summed and shuffled."""

        def __init__(self, weight, bias, part_channels):
            super().__init__()
            big, start = _subpixel_weight(weight), 0
            self.convs = nn.ModuleList()
            for i, c in enumerate(part_channels):
                self.convs.append(_conv_from(big[:, start : start + c], bias.repeat_interleave(4) if i == 0 else None))
                start += c

        def forward(self, parts):
            y = self.convs[0](parts[0])
            for conv, part in zip(self.convs[1:], parts[1:]):
                y.add_(conv(part))
            return F.pixel_shuffle(y, 2)

    class FastUNet(nn.Module):
        def __init__(self):
            super().__init__()
            c = self.config = unet.config
            self.downs = nn.ModuleList()
            for block in unet.downs:
                self.downs.append(_conv_from(*_folded(block.conv, block.norm), stride=2))
            widths = [min(c.base_channels * 2**i, c.max_channels) for i in range(c.depth)]
            parts = [widths[-1]]
            self.ups = nn.ModuleList()
            for k, block in enumerate(unet.ups):
                weight, bias = _folded(block.conv, block.norm)
                self.ups.append(UpsampleConv(weight, bias, parts))
                parts = [weight.shape[0], widths[c.depth - 2 - k]]
            conv = unet.head[1]
            self.head_up = UpsampleConv(conv.weight.detach()[:, : sum(parts)], conv.bias.detach(), parts)
            self.head_input = _conv_from(conv.weight.detach()[:, sum(parts) :], None)
            self.head_out = unet.head[3]

        def forward(self, x):
            x, (h, w) = pad_to_multiple(x, 2**self.config.depth)
            skips, y = [x], x
            for conv in self.downs:
                y = F.leaky_relu(conv(y), 0.2, inplace=True)
                skips.append(y)
            skips.pop()
            parts = [y]
            for up in self.ups:
                parts = [F.relu(up(parts), inplace=True), skips.pop()]
            y = self.head_up(parts).add_(self.head_input(skips.pop()))
            return torch.tanh(self.head_out(F.relu(y, inplace=True)))[..., :h, :w]

    return FastUNet().eval()


def inference_module(model):
    """An inference-only equivalent of ``model`` that runs faster on CPU (see above) where the model is
    the plain U-Net with batch norm (or none); the model itself otherwise."""
    from torch import nn

    from ..models.unet import DownBlock, UNet, UpBlock

    if type(model) is not UNet or model.training:
        return model
    blocks_ok = all(type(b) is DownBlock and _folded(b.conv, b.norm) is not None for b in model.downs) and all(
        type(b) is UpBlock and _folded(b.conv, b.norm) is not None and b.conv.kernel_size == (3, 3)
        for b in model.ups)
    head = list(model.head)
    head_ok = (len(head) == 5 and isinstance(head[0], nn.Upsample) and head[0].mode == "nearest"
               and isinstance(head[1], nn.Conv2d) and isinstance(head[2], nn.ReLU)
               and isinstance(head[3], nn.Conv2d) and isinstance(head[4], nn.Tanh))
    if not (blocks_ok and head_ok):
        return model
    return _make_fast_unet(model)


class TorchBackend:
    """Runs a generator with torch: fp32 on CPU, fp16 (or bf16) on CUDA; channels_last by default."""

    name = "torch"

    def __init__(self, model, device: str = "cpu", precision: str | None = None, channels_last: bool = True,
                 threads: int | None = None, optimize: bool | None = None):
        import torch

        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        precision = precision or ("fp16" if cuda else "fp32")
        if precision not in ("fp32", "fp16", "bf16"):
            raise UserError(f"unknown precision {precision!r} (fp32, fp16, bf16)")
        if precision == "fp16" and not cuda:
            raise UserError("fp16 runs on CUDA only; on CPU the generator runs in fp32 (or bf16 where the CPU has it)")
        if precision == "bf16" and not cuda:
            from .runtimes import cpu_has_native_bf16

            if not cpu_has_native_bf16():
                raise UserError("bf16 on CPU needs native bf16 instructions (avx512_bf16/amx_bf16); use fp32")
        if threads is not None and not cuda:
            torch.set_num_threads(max(1, threads))
        self.precision = precision
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        self.channels_last = channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(self.device).eval()
        # The folded U-Net is measured on CPU only; CUDA keeps the module as trained (cuDNN fuses anyway).
        self.folded = False
        if optimize if optimize is not None else not cuda:
            with torch.no_grad():
                fast = inference_module(model)
            self.folded, model = fast is not model, fast
        self.model = model.to(self.dtype).to(memory_format=self.memory_format)
        self._io = _PinnedIO(self.device) if cuda else None
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes per run: let cuDNN pick its kernels once

    @property
    def half(self) -> bool:
        return self.precision != "fp32"

    def describe(self) -> str:
        return (f"torch {self.device.type} {self.precision}{' channels_last' if self.channels_last else ''}"
                f"{' folded U-Net' if self.folded else ''}")

    def __call__(self, L_batch: np.ndarray) -> np.ndarray:
        """L_batch (B, C, h, w) float32 network input -> (B, 2, h, w) float32 network output."""
        import torch

        with torch.inference_mode():
            if self._io is not None:
                return self._io.download(self.model(self._io.upload(L_batch, self.dtype, self.memory_format)))
            x = torch.from_numpy(np.ascontiguousarray(L_batch, dtype=np.float32)).to(self.dtype)
            return self.model(x.contiguous(memory_format=self.memory_format)).float().numpy()
