"""Layers that torch.nn lacks, as small ``nn.Module`` classes.

Each class here is self-contained (it uses ``torch`` and ``nn`` only): code export copies its
source text into ``model.py`` when a design uses it, so the exported model needs neither designer
nor torchvision, and the engine and the exported file run the same code.
"""

from __future__ import annotations

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """Randomly drops a residual branch while training (torchvision.ops.StochasticDepth): each
    sample's ("row") or the whole batch's ("batch") input is zeroed with probability p and the
    kept ones are scaled by 1 / (1 - p); identity in eval mode."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
        if mode not in ("batch", "row"):
            raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode!r}"


def learned_tensor(shape: tuple[int, ...], init: str = "normal", std: float = 0.02,
                   value: float = 1.0, batch_axis: bool = True) -> nn.Parameter:
    """The tensor of a Parameter layer (ViT's class token and position embedding, ConvNeXt's
    layer scale), registered on the network itself as ``self.<name> = nn.Parameter(...)``, so its
    state_dict key is the layer's name. Shape (1, *shape) with ``batch_axis`` (torchvision's
    class_token), else ``shape`` (a layer scale); forward expands it over the batch as a view.

    init: "zeros", "ones", "constant" (every value ``value``), "normal" (mean 0, std ``std``),
    "uniform" (from -std to std) or "trunc_normal" (normal with std ``std``, cut to [-2, 2] as
    ``nn.init.trunc_normal_`` does by default). Exported code writes the same calls, in the
    same order of random draws (designer.engine.interop.codegen)."""
    size = (1, *shape) if batch_axis else tuple(shape)  # catalog.activation.parameter_size
    if init == "zeros":
        w = torch.zeros(size)
    elif init == "ones":
        w = torch.ones(size)
    elif init == "constant":
        w = torch.full(size, value)
    elif init == "normal":
        w = nn.init.normal_(torch.empty(size), std=std)
    elif init == "uniform":
        w = nn.init.uniform_(torch.empty(size), -std, std)
    elif init == "trunc_normal":
        w = nn.init.trunc_normal_(torch.empty(size), std=std)
    else:
        raise ValueError(f"unknown init {init!r}")
    return nn.Parameter(w)


class StoredBuffer:
    """A Tensor layer's tensor that is not learned: the network registers it as a buffer
    (``persistent``: in the state_dict), under the layer's name."""

    def __init__(self, tensor: torch.Tensor, persistent: bool) -> None:
        self.tensor, self.persistent = tensor, persistent


def stored_tensor(shape: tuple[int, ...], stored: str = "buffer", dtype: str = "float32",
                  data: list | None = None) -> nn.Parameter | StoredBuffer:
    """The tensor of a Tensor layer: zeros of ``shape`` and ``dtype`` (the weights file fills a
    parameter or buffer), or a constant's ``data`` (flat values; "inf", "-inf", "nan" as texts).
    A "parameter" is an nn.Parameter; a "buffer" or "constant" a :class:`StoredBuffer`."""
    kind = getattr(torch, dtype)
    if data:
        t = torch.tensor([float(v) if isinstance(v, str) else v for v in data],
                         dtype=kind).reshape(shape)
    else:
        t = torch.zeros(shape, dtype=kind)  # shape (): a scalar
    if stored == "parameter":
        return nn.Parameter(t)
    return StoredBuffer(t, persistent=stored == "buffer")


class WindowAttention(nn.Module):
    """What Swin's two window attentions share (ShiftedWindowAttention and its V2 derive from
    it): the window and shift sizes, ``qkv`` and ``proj``, the relative position index of a
    window's tokens and the attention itself over the (shifted) windows of a channels-last map
    (N, H, W, C); each subclass adds its position bias and calls ``window_attention``."""

    def __init__(self, dim: int, window_size: int | list[int], shift_size: int | list[int],
                 num_heads: int, qkv_bias: bool = True, proj_bias: bool = True,
                 attention_dropout: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__()
        window_size = [window_size] * 2 if isinstance(window_size, int) else list(window_size)
        shift_size = [shift_size] * 2 if isinstance(shift_size, int) else list(shift_size)
        if len(window_size) != 2 or len(shift_size) != 2:
            raise ValueError("window_size and shift_size must be of length 2")
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.window_size, self.shift_size = window_size, shift_size
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def window_index(self) -> torch.Tensor:
        """Token i = (hi, wi) of a window, token j = (hj, wj): the bias row for offset i - j,
        flattened over (i, j) (the ``relative_position_index`` buffer)."""
        wh, ww = self.window_size
        hs = torch.arange(wh).repeat_interleave(ww)
        ws = torch.arange(ww).repeat(wh)
        dh = hs[:, None] - hs[None, :] + (wh - 1)
        dw = ws[:, None] - ws[None, :] + (ww - 1)
        return (dh * (2 * ww - 1) + dw).flatten()

    def window_attention(self, x: torch.Tensor, bias: torch.Tensor,
                         logit_scale: torch.Tensor | None,
                         qkv_bias: torch.Tensor | None) -> torch.Tensor:
        b, h, w, c = x.shape
        wh, ww = self.window_size
        heads = self.num_heads
        x = nn.functional.pad(x, (0, 0, 0, (ww - w % ww) % ww, 0, (wh - h % wh) % wh))
        ph, pw = x.shape[1], x.shape[2]
        sh = self.shift_size[0] if wh < ph else 0  # one window covers the axis: no shift
        sw = self.shift_size[1] if ww < pw else 0
        shifted = sh + sw > 0
        if shifted:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        nh, nw = ph // wh, pw // ww
        n = wh * ww
        x = x.view(b, nh, wh, nw, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b * nh * nw, n, c)
        qkv = nn.functional.linear(x, self.qkv.weight, qkv_bias)
        q, k, v = qkv.reshape(x.shape[0], n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        if logit_scale is not None:  # cosine attention
            attn = nn.functional.normalize(q, dim=-1) @ nn.functional.normalize(k, dim=-1) \
                .transpose(-2, -1)
            attn = attn * torch.clamp(logit_scale, max=4.605170185988092).exp()  # log(100)
        else:
            attn = (q * (c // heads) ** -0.5) @ k.transpose(-2, -1)
        attn = attn + bias
        if shifted:
            # region of each position of the padded, rolled map: 0 before the last window,
            # 1 in it, 2 in the part the roll brought round; 3 * row region + column region
            rows = torch.arange(ph, device=x.device)
            cols = torch.arange(pw, device=x.device)
            rr = (rows >= ph - wh).long() + (rows >= ph - sh).long()
            rc = (cols >= pw - ww).long() + (cols >= pw - sw).long()
            region = (3 * rr[:, None] + rc[None, :]).view(nh, wh, nw, ww)
            region = region.permute(0, 2, 1, 3).reshape(nh * nw, n)
            mask = (region[:, None, :] != region[:, :, None]).to(attn.dtype) * -100.0
            attn = attn.view(b, nh * nw, heads, n, n) + mask[None, :, None]
            attn = attn.view(-1, heads, n, n)
        attn = nn.functional.softmax(attn, dim=-1)
        attn = nn.functional.dropout(attn, p=self.attention_dropout, training=self.training)
        x = (attn @ v).transpose(1, 2).reshape(x.shape[0], n, c)
        x = nn.functional.linear(x, self.proj.weight, self.proj.bias)
        x = nn.functional.dropout(x, p=self.dropout, training=self.training)
        x = x.view(b, nh, nw, wh, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
        if shifted:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        return x[:, :h, :w, :].contiguous()

    def extra_repr(self) -> str:
        return (f"window_size={self.window_size}, shift_size={self.shift_size}, "
                f"num_heads={self.num_heads}")


class ShiftedWindowAttention(WindowAttention):
    """Multi-head self-attention inside non-overlapping windows of a channels-last map (N, H, W, C),
    with a learned relative position bias, as Swin Transformer's (torchvision's
    ShiftedWindowAttention, same parameter and buffer names). The map is padded on the bottom and
    right to a multiple of the window; with a shift it is first rolled up and left by shift_size
    and positions that came from different regions are kept apart by a -100 added to their
    scores. Per window and head: softmax(Q K^T / sqrt(C / heads) + B) V, then ``proj``."""

    def __init__(self, dim: int, window_size: int | list[int], shift_size: int | list[int],
                 num_heads: int, qkv_bias: bool = True, proj_bias: bool = True,
                 attention_dropout: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__(dim, window_size, shift_size, num_heads, qkv_bias, proj_bias,
                         attention_dropout, dropout)
        wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", self.window_index())

    def relative_position_bias(self) -> torch.Tensor:
        n = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index]
        return bias.view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.window_attention(x, self.relative_position_bias(), None, self.qkv.bias)


class ShiftedWindowAttentionV2(WindowAttention):
    """Swin Transformer V2's window attention (torchvision's ShiftedWindowAttentionV2, same
    parameter and buffer names): as ShiftedWindowAttention, but with cosine attention,
    cos(Q, K) * exp(min(logit_scale, log 100)), and a position bias 16 * sigmoid(cpb_mlp(log-spaced
    relative coordinates)) from a small MLP instead of a table; the key bias is always zero."""

    def __init__(self, dim: int, window_size: int | list[int], shift_size: int | list[int],
                 num_heads: int, qkv_bias: bool = True, proj_bias: bool = True,
                 attention_dropout: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__(dim, window_size, shift_size, num_heads, qkv_bias, proj_bias,
                         attention_dropout, dropout)
        wh, ww = self.window_size
        # relative offsets (dh, dw), scaled to [-8, 8] and spaced as sign * log2(1 + |t|) / 3
        dh = torch.arange(-(wh - 1), wh, dtype=torch.float32) / (wh - 1) * 8
        dw = torch.arange(-(ww - 1), ww, dtype=torch.float32) / (ww - 1) * 8
        table = torch.stack(torch.meshgrid(dh, dw, indexing="ij"), dim=-1).unsqueeze(0)
        table = torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0
        self.register_buffer("relative_coords_table", table)
        self.register_buffer("relative_position_index", self.window_index())
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((num_heads, 1, 1))))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512, bias=True), nn.ReLU(inplace=True),
                                     nn.Linear(512, num_heads, bias=False))
        if qkv_bias:
            with torch.no_grad():
                self.qkv.bias[dim:2 * dim].zero_()

    def relative_position_bias(self) -> torch.Tensor:
        n = self.window_size[0] * self.window_size[1]
        table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        bias = table[self.relative_position_index].view(n, n, -1)
        return 16 * torch.sigmoid(bias.permute(2, 0, 1).contiguous().unsqueeze(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv_bias = self.qkv.bias
        if qkv_bias is not None:  # no key bias
            c = qkv_bias.numel() // 3
            qkv_bias = torch.cat([qkv_bias[:c], torch.zeros_like(qkv_bias[c:2 * c]),
                                  qkv_bias[2 * c:]])
        return self.window_attention(x, self.relative_position_bias(), self.logit_scale,
                                     qkv_bias)


class PatchMerging(nn.Module):
    """Swin Transformer's downsampling of a channels-last map (..., H, W, C) (torchvision's
    PatchMerging): each 2x2 patch (a zero row or column added when H or W is odd) becomes one
    position of 4C features, in the order (0,0), (1,0), (0,1), (1,1), then LayerNorm(4C) and a
    Linear(4C -> 2C) without bias: (..., ceil(H/2), ceil(W/2), 2C)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=eps)

    @staticmethod
    def patches(x: torch.Tensor) -> torch.Tensor:
        """Each 2x2 patch as one position of 4C features (odd H or W padded with zeros)."""
        h, w = x.shape[-3], x.shape[-2]
        x = nn.functional.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        return torch.cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :],
                          x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduction(self.norm(self.patches(x)))


class PatchMergingV2(PatchMerging):
    """Swin Transformer V2's downsampling (torchvision's PatchMergingV2): as PatchMerging, but
    the Linear(4C -> 2C) comes first and LayerNorm(2C) after it."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__(dim, eps)
        self.norm = nn.LayerNorm(2 * dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.reduction(self.patches(x)))


class RelativePositionAttention(nn.Module):
    """Multi-head self-attention over the positions of square windows with a learned bias per
    relative offset (MaxViT's attention, torchvision's RelativePositionalMultiHeadAttention, with
    its state_dict keys). Input (..., P, D): P = max_seq_len positions of a window of side
    s = sqrt(P), D = feat_dim features; heads = feat_dim // head_dim. Per head
    y = softmax(q k^T * feat_dim^-0.5 + B) v, where B[i, j] is the table's row for the offset
    between positions i and j (one of (2s - 1)^2); then a Linear (``merge``)."""

    def __init__(self, feat_dim: int, head_dim: int, max_seq_len: int) -> None:
        super().__init__()
        if feat_dim % head_dim != 0:
            raise ValueError(f"feat_dim {feat_dim} is not a multiple of head_dim {head_dim}")
        side = round(max_seq_len ** 0.5)
        if side * side != max_seq_len:
            raise ValueError(f"max_seq_len {max_seq_len} is not the square of a window side")
        self.n_heads, self.head_dim, self.size = feat_dim // head_dim, head_dim, side
        self.max_seq_len, self.scale_factor = max_seq_len, feat_dim ** -0.5
        self.to_qkv = nn.Linear(feat_dim, 3 * feat_dim)
        self.merge = nn.Linear(feat_dim, feat_dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.empty((2 * side - 1) ** 2, self.n_heads))
        # position p sits at row p // side, column p % side; the offset (dr, dc) between two
        # positions, each in [-(side - 1), side - 1], picks row (dr + side - 1) * (2 side - 1) +
        # dc + side - 1 of the table
        pos = torch.arange(max_seq_len)
        dr = (pos // side)[:, None] - (pos // side)[None, :] + side - 1
        dc = (pos % side)[:, None] - (pos % side)[None, :] + side - 1
        self.register_buffer("relative_position_index", dr * (2 * side - 1) + dc)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, n, d = x.shape
        heads = self.n_heads
        q, k, v = (t.reshape(*lead, n, heads, self.head_dim).transpose(-2, -3)
                   for t in self.to_qkv(x).split(d, dim=-1))  # (..., heads, n, head_dim)
        scores = q @ (k * self.scale_factor).transpose(-1, -2)  # (..., heads, n, n)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        scores = scores + bias.reshape(n, n, heads).permute(2, 0, 1)
        out = scores.softmax(dim=-1) @ v
        return self.merge(out.transpose(-2, -3).reshape(*lead, n, d))

    def extra_repr(self) -> str:
        return f"heads={self.n_heads}, head_dim={self.head_dim}, window={self.size}"


class QuickGELU(nn.Module):
    """GELU approximated with a sigmoid (CLIP; Hugging Face's QuickGELUActivation):
    y = x * sigmoid(1.702 * x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Conv1D(nn.Module):
    """A linear layer whose weight is stored transposed, (in_features, out_features), as GPT-2's
    Conv1D (transformers.pytorch_utils.Conv1D): y = x @ weight + bias over the last axis."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.size()[:-1] + (self.out_features,)
        return torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight).view(size)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class Conv2dSame(nn.Conv2d):
    """A 2-D convolution padded as TensorFlow's "SAME" (timm's Conv2dSame, in its tf_ ports):
    each spatial axis is padded so that out = ceil(in / stride), the odd row or column at the
    bottom or right; the padding follows the input's size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1,
                 groups: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups,
                         bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for i in (1, 0):  # F.pad takes the last axis (width) first
            size, k, s, d = x.shape[-2 + i], self.kernel_size[i], self.stride[i], self.dilation[i]
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return self._conv_forward(nn.functional.pad(x, pads), self.weight, self.bias)


class StdConv2d(nn.Conv2d):
    """A 2-D convolution whose weight is standardised per output channel before each use
    (weight standardisation; BiT's ResNet-V2, timm's StdConv2d): W' = (W - mean(W)) /
    sqrt(var(W) + eps), statistics over each filter."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
                 eps: float = 1e-6) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = nn.functional.batch_norm(
            self.weight.reshape(1, self.out_channels, -1), None, None, training=True,
            momentum=0.0, eps=self.eps).reshape_as(self.weight)
        return self._conv_forward(x, weight, self.bias)


class ScaledStdConv2d(nn.Conv2d):
    """A 2-D convolution with scaled weight standardisation (NFNets, timm's ScaledStdConv2d):
    each filter standardised, then scaled by its learned ``gain`` times gamma / sqrt(fan-in)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
                 gamma: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias)
        self.scale = gamma * self.weight[0].numel() ** -0.5
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(out_channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = nn.functional.batch_norm(
            self.weight.reshape(1, self.out_channels, -1), None, None,
            weight=(self.gain * self.scale).view(-1), training=True, momentum=0.0,
            eps=self.eps).reshape_as(self.weight)
        return self._conv_forward(x, weight, self.bias)


class LayerScale(nn.Module):
    """A learned scale per channel (timm's LayerScale and LayerScale2d; CaiT, DeiT III, EVA):
    y = x * gamma over the last axis, or over axis 1 with ``channels_first`` (N, C, H, W);
    gamma starts at ``init_values``."""

    def __init__(self, dim: int, init_values: float = 1e-5, channels_first: bool = False) -> None:
        super().__init__()
        self.channels_first = channels_first
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_first:
            return x * self.gamma.view(1, -1, *[1] * (x.dim() - 2))
        return x * self.gamma


# Classes code export may copy into model.py, by name.
HELPER_CLASSES = ("StochasticDepth", "WindowAttention", "ShiftedWindowAttention",
                  "ShiftedWindowAttentionV2", "PatchMerging", "PatchMergingV2",
                  "RelativePositionAttention", "QuickGELU", "Conv1D", "Conv2dSame", "StdConv2d", "ScaledStdConv2d", "LayerScale")
# The helper classes each one derives from: code export copies them too, before it (above).
HELPER_NEEDS = {"ShiftedWindowAttention": ("WindowAttention",),
                "ShiftedWindowAttentionV2": ("WindowAttention",),
                "PatchMergingV2": ("PatchMerging",)}
