"""HKU A3 layers (pipeline/models/simple_cnn/layers.py) against torch's reference layers, and the allowed-operations rule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from pipeline.analysis.padding import conv_output_size
from pipeline.grading.inspection import forbidden_uses
from pipeline.models.simple_cnn import layers
from pipeline.models.simple_cnn.layers import (
    CustomConv2D,
    CustomCrossEntropyLoss,
    CustomLinear,
    CustomMaxPool2D,
)

LAYERS_SOURCE = Path(layers.__file__)
F64 = {"rtol": 1e-10, "atol": 1e-12}  # float64: only summation order may differ


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny tensors: one thread is faster and immune to a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _copy_params(custom: nn.Module, reference: nn.Module) -> None:
    with torch.no_grad():
        custom.weight.copy_(reference.weight)
        if reference.bias is not None:
            custom.bias.copy_(reference.bias)


def _forward_backward(module: nn.Module, x: torch.Tensor, upstream: torch.Tensor | None = None):
    x = x.clone().requires_grad_(True)
    y = module(x)
    y.backward(torch.ones_like(y) if upstream is None else upstream)
    params = [p.grad for p in (getattr(module, "weight", None), getattr(module, "bias", None)) if p is not None]
    return y.detach(), x.grad, params


def _assert_same_as_reference(custom, reference, x, seed=0, exact_support=False):
    gen = torch.Generator().manual_seed(seed)
    y_ref = reference(x)
    upstream = torch.randn(y_ref.shape, generator=gen, dtype=x.dtype)
    out_ref, gx_ref, gp_ref = _forward_backward(reference, x, upstream)
    out_cus, gx_cus, gp_cus = _forward_backward(custom, x, upstream)
    torch.testing.assert_close(out_cus, out_ref, **F64)
    torch.testing.assert_close(gx_cus, gx_ref, **F64)
    assert len(gp_cus) == len(gp_ref)
    for a, b in zip(gp_cus, gp_ref):
        torch.testing.assert_close(a, b, **F64)
    if exact_support:  # the gradient lands on exactly the same positions
        assert torch.equal(gx_cus != 0, gx_ref != 0)


# --------------------------------------------------------------------------- CustomLinear


@pytest.mark.parametrize(
    "in_f, out_f, bias, batch_shape",
    [(5, 3, True, (4,)), (1, 1, True, (1,)), (7, 2, False, (3,)), (6, 4, True, (2, 3)), (1024, 512, True, (8,))],
)
def test_linear_matches_torch(in_f, out_f, bias, batch_shape):
    torch.manual_seed(1)
    reference = nn.Linear(in_f, out_f, bias=bias, dtype=torch.float64)
    custom = CustomLinear(in_f, out_f, bias=bias).double()
    _copy_params(custom, reference)
    _assert_same_as_reference(custom, reference, torch.randn(*batch_shape, in_f, dtype=torch.float64))


@pytest.mark.parametrize("in_f, out_f, bias", [(20, 7, True), (1, 3, True), (9, 4, False)])
def test_linear_init_matches_torch(in_f, out_f, bias):
    torch.manual_seed(123)
    reference = nn.Linear(in_f, out_f, bias=bias)
    torch.manual_seed(123)
    custom = CustomLinear(in_f, out_f, bias=bias)
    assert custom.weight.shape == reference.weight.shape == (out_f, in_f)
    assert isinstance(custom.weight, nn.Parameter)
    assert torch.equal(custom.weight, reference.weight)  # the same draws, in the same order
    bound = 1 / math.sqrt(in_f)
    assert custom.weight.abs().max() <= bound
    if bias:
        assert torch.equal(custom.bias, reference.bias)
        assert custom.bias.abs().max() <= bound
    else:
        assert custom.bias is None
    assert {n for n, _ in custom.named_parameters()} == {n for n, _ in reference.named_parameters()}


def test_linear_init_distribution_bounds():
    torch.manual_seed(0)
    layer = CustomLinear(400, 300)
    bound = 1 / math.sqrt(400)
    w = layer.weight.detach()
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound  # uniform fills the interval
    assert abs(float(w.mean())) < 0.05 * bound
    assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.05)  # std of U(-b, b)


# --------------------------------------------------------------------------- CustomConv2D


CONV_CONFIGS = [
    # (n, c_in, c_out, (h, w), kernel, stride, padding, bias)
    (2, 3, 4, (8, 8), 3, 1, 0, True),
    (2, 3, 4, (9, 7), (3, 2), (2, 1), (1, 0), True),  # rectangular kernel, pair stride/padding
    (1, 2, 5, (10, 6), 5, 2, 2, False),
    (3, 4, 2, (5, 7), 1, 1, 0, True),  # 1x1 kernel
    (2, 2, 3, (5, 7), (5, 7), 1, 0, True),  # kernel == input
    (2, 2, 3, (9, 8), 2, 4, 0, True),  # stride > kernel
    (2, 1, 32, (28, 28), 5, 1, 0, True),  # SimpleCNN conv1
    (2, 32, 64, (12, 12), 5, 1, 0, True),  # SimpleCNN conv2
    (2, 6, 3, (10, 9), (4, 3), (1, 2), (2, 1), True),  # row path with padding and a column stride
    (3, 6, 3, (10, 9), (4, 3), 1, 1, True),  # row path, a batch that does not halve evenly
    (2, 6, 3, (10, 9), (4, 3), (2, 1), (2, 1), True),  # row stride 2: always the full path
]


@pytest.fixture(params=["row-unfold", "full-unfold"])
def conv_path(request, monkeypatch):
    """Run a convolution test through each of CustomConv2D's two code paths."""
    monkeypatch.setattr(layers, "ROW_UNFOLD_MIN_DEPTH", 1 if request.param == "row-unfold" else 10**9)
    return request.param


@pytest.mark.parametrize("n, c_in, c_out, hw, kernel, stride, padding, bias", CONV_CONFIGS)
def test_conv_matches_torch(n, c_in, c_out, hw, kernel, stride, padding, bias, conv_path):
    torch.manual_seed(2)
    reference = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias, dtype=torch.float64)
    custom = CustomConv2D(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias).double()
    _copy_params(custom, reference)
    _assert_same_as_reference(custom, reference, torch.randn(n, c_in, *hw, dtype=torch.float64))


def test_conv_unbatched_input(conv_path):
    torch.manual_seed(3)
    reference = nn.Conv2d(3, 2, 3, padding=1, dtype=torch.float64)
    custom = CustomConv2D(3, 2, 3, padding=1).double()
    _copy_params(custom, reference)
    _assert_same_as_reference(custom, reference, torch.randn(3, 6, 5, dtype=torch.float64))


@pytest.mark.parametrize("h, w, k, s, p", [(28, 28, 5, 1, 0), (12, 12, 5, 1, 0), (11, 9, 3, 2, 1), (7, 10, 4, 3, 2)])
def test_conv_output_size_formula(h, w, k, s, p):
    """The layer, and the formula's other copy (analysis/padding.py, TDM Q6), give torch's own output shape."""
    expected = tuple(nn.Conv2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, h, w)).shape[-2:])
    out = CustomConv2D(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, h, w))
    assert tuple(out.shape[-2:]) == expected == (conv_output_size(h, k, s, p), conv_output_size(w, k, s, p))


@pytest.mark.parametrize("c_in, c_out, kernel", [(1, 32, 5), (32, 64, 5), (3, 4, (3, 2))])
def test_conv_init_matches_torch(c_in, c_out, kernel):
    torch.manual_seed(7)
    reference = nn.Conv2d(c_in, c_out, kernel)
    torch.manual_seed(7)
    custom = CustomConv2D(c_in, c_out, kernel)
    assert custom.weight.shape == reference.weight.shape
    assert custom.bias.shape == reference.bias.shape == (c_out,)
    assert torch.equal(custom.weight, reference.weight) and torch.equal(custom.bias, reference.bias)
    fan_in = reference.weight[0].numel()
    assert custom.weight.abs().max() <= 1 / math.sqrt(fan_in)
    assert custom.bias.abs().max() <= 1 / math.sqrt(fan_in)
    assert CustomConv2D(c_in, c_out, kernel, bias=False).bias is None


@pytest.mark.parametrize(
    "kwargs", [{"kernel_size": 0}, {"kernel_size": 3, "stride": 0}, {"kernel_size": 3, "padding": -1}]
)
def test_conv_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        CustomConv2D(1, 1, **kwargs)


def _peak_allocated_bytes(fn) -> tuple[int, int]:
    """(peak, retained) bytes allocated by ``fn`` on the CPU, from the profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    try:
        raw = prof.profiler.kineto_results.events()
        events = sorted((e.start_ns(), e.nbytes()) for e in raw if e.name() == "[memory]")
    except AttributeError:  # a torch without these internals
        pytest.skip("this torch's profiler does not expose per-allocation memory events")
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    if not events:
        pytest.skip("the profiler recorded no CPU memory events")
    return peak, current


def _conv2_memory(monkeypatch, row_path: bool):
    """Forward peak, retained and backward peak bytes of SimpleCNN's conv2 at batch 64."""
    monkeypatch.setattr(layers, "ROW_UNFOLD_MIN_DEPTH", 1 if row_path else 10**9)
    layer = CustomConv2D(32, 64, 5)
    x = torch.randn(64, 32, 12, 12, requires_grad=True)
    layer(x).sum().backward()  # warm-up
    kept = []
    peak, retained = _peak_allocated_bytes(lambda: kept.append(layer(x)))
    upstream = torch.ones_like(kept[0])
    peak_backward, _ = _peak_allocated_bytes(lambda: kept.pop().backward(upstream))
    return peak, retained, peak_backward


# float32 bytes for SimpleCNN's conv2 (batch 64, 32 -> 64 channels, 5x5, 12x12 -> 8x8)
FULL_UNFOLDED = 64 * (32 * 5 * 5) * (8 * 8) * 4  # 13.1 MB: (N, C*kh*kw, L)
ROW_UNFOLDED = 64 * (32 * 5) * (12 * 8) * 4  # 3.9 MB: (N, C*kw, H*Wout)
OUTPUT = 64 * 64 * 8 * 8 * 4  # 1 MB
PER_SAMPLE_WEIGHT_GRAD = 64 * 64 * 32 * 5 * 5 * 4  # 13.1 MB: (N, O, C*kh*kw)


def test_conv_full_unfold_peak_memory_is_one_unfolded_matrix(monkeypatch):
    """Full im2col: the forward allocates the unfolded input once and the output once (bias
    added in place) - no permuted copy (``einsum("ok,nkl->nol")`` peaks at twice this). The
    backward adds the unfolded matrix's gradient (col2im's input) and the per-sample weight
    gradient (N, O, C*kh*kw), which for this shape happens to be as large."""
    peak, retained, peak_backward = _conv2_memory(monkeypatch, row_path=False)
    assert peak <= FULL_UNFOLDED + 1.5 * OUTPUT, peak
    assert retained <= FULL_UNFOLDED + 1.5 * OUTPUT, retained
    assert peak_backward <= FULL_UNFOLDED + PER_SAMPLE_WEIGHT_GRAD + 2 * OUTPUT, peak_backward


def test_conv_row_unfold_peak_memory_is_below_one_unfolded_matrix(monkeypatch):
    """Kernel-row decomposition (SimpleCNN's conv2 takes it): the forward holds the width-only
    unfolded matrix (0.3x the full one) and the output; the backward stays within about one
    full unfolded matrix (the full path needs two)."""
    peak, retained, peak_backward = _conv2_memory(monkeypatch, row_path=True)
    assert peak <= ROW_UNFOLDED + 2.5 * OUTPUT, peak
    assert peak < FULL_UNFOLDED / 2, peak
    assert retained <= ROW_UNFOLDED + 1.5 * OUTPUT, retained
    assert peak_backward <= 1.25 * FULL_UNFOLDED, peak_backward


def test_simple_cnn_conv2_takes_the_row_path_and_conv1_the_full_path():
    assert 32 * 5 >= layers.ROW_UNFOLD_MIN_DEPTH > 1 * 5


# --------------------------------------------------------------------------- CustomMaxPool2D


POOL_CONFIGS = [
    # (n, c, (h, w), kernel, stride, padding)
    (2, 3, (8, 8), 2, None, 0),  # SimpleCNN's: fast path
    (2, 3, (7, 9), 2, None, 0),  # fast path, last row/column dropped
    (2, 2, (9, 12), (3, 4), None, 0),  # fast path, rectangular
    (2, 3, (8, 8), 3, 2, 1),  # overlapping windows, padding
    (2, 2, (7, 6), (3, 2), (1, 2), (1, 1)),
    (2, 2, (5, 7), (5, 7), None, 0),  # kernel == input
    (2, 2, (5, 7), 1, None, 0),  # 1x1 kernel
    (2, 2, (6, 6), 2, 1, 0),  # stride 1
]


@pytest.mark.parametrize("n, c, hw, kernel, stride, padding", POOL_CONFIGS)
@pytest.mark.parametrize("kind", ["normal", "relu"])
def test_maxpool_matches_torch(n, c, hw, kernel, stride, padding, kind):
    torch.manual_seed(4)
    x = torch.randn(n, c, *hw, dtype=torch.float64)
    if kind == "relu":
        x = x.clamp(min=0)
    _assert_same_as_reference(
        CustomMaxPool2D(kernel, stride, padding), nn.MaxPool2d(kernel, stride, padding), x, exact_support=True
    )


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), ((2, 3), 1, 0), (3, None, 0)])
@pytest.mark.parametrize("values", ["zeros", "integers"])
def test_maxpool_tie_gradient_matches_torch(kernel, stride, padding, values):
    """Ties: torch sends each window's gradient to ONE position (the first maximum), not split."""
    gen = torch.Generator().manual_seed(5)
    shape = (2, 3, 9, 9)
    x = torch.zeros(shape) if values == "zeros" else torch.randint(0, 2, shape, generator=gen).float()
    reference, custom = nn.MaxPool2d(kernel, stride, padding), CustomMaxPool2D(kernel, stride, padding)
    upstream = torch.rand(reference(x).shape, generator=gen) + 0.5
    _, g_ref, _ = _forward_backward(reference, x, upstream)
    _, g_cus, _ = _forward_backward(custom, x, upstream)
    assert torch.equal(g_cus != 0, g_ref != 0)
    torch.testing.assert_close(g_cus, g_ref)
    if stride is None and padding == 0:  # non-overlapping windows: each gradient value lands as is
        assert torch.equal(g_cus, g_ref)


def test_maxpool_padding_never_wins():
    x = -torch.rand(2, 3, 6, 6, dtype=torch.float64) - 1.0  # all in [-2, -1): zero padding would win
    custom, reference = CustomMaxPool2D(3, 2, 1), nn.MaxPool2d(3, 2, 1)
    out = custom(x)
    assert bool((out < -1 + 1e-12).all()), "a padded position won the max"
    _assert_same_as_reference(custom, reference, x, exact_support=True)


@pytest.mark.parametrize(
    "kwargs", [{"kernel_size": 2, "padding": 2}, {"kernel_size": 0}, {"kernel_size": 2, "stride": 0}]
)
def test_maxpool_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        CustomMaxPool2D(**kwargs)


def test_maxpool_default_stride_is_kernel():
    assert CustomMaxPool2D(3).stride == (3, 3)
    assert CustomMaxPool2D((2, 3)).stride == (2, 3)
    assert CustomMaxPool2D(2)(torch.zeros(1, 1, 24, 24)).shape == (1, 1, 12, 12)


# --------------------------------------------------------------------------- CustomCrossEntropyLoss


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("n, classes, scale", [(8, 10, 1.0), (1, 2, 3.0), (64, 10, 10.0), (5, 3, 0.01)])
def test_cross_entropy_matches_torch(reduction, n, classes, scale):
    gen = torch.Generator().manual_seed(6)
    logits = torch.randn(n, classes, generator=gen, dtype=torch.float64) * scale
    target = torch.randint(0, classes, (n,), generator=gen)
    losses, grads = [], []
    for module in (CustomCrossEntropyLoss(reduction), nn.CrossEntropyLoss(reduction=reduction)):
        x = logits.clone().requires_grad_(True)
        loss = module(x, target)
        (loss * torch.arange(1, loss.numel() + 1, dtype=loss.dtype).view(loss.shape)).sum().backward()
        losses.append(loss.detach())
        grads.append(x.grad)
    assert losses[0].shape == losses[1].shape
    torch.testing.assert_close(losses[0], losses[1], **F64)
    torch.testing.assert_close(grads[0], grads[1], **F64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_stable_at_1e4_logits(dtype, reduction):
    gen = torch.Generator().manual_seed(8)
    logits = torch.randn(16, 10, generator=gen, dtype=dtype) * 1e4
    logits[:, 0], logits[:, 1] = 1e4, -1e4
    target = torch.randint(0, 10, (16,), generator=gen)
    x_cus, x_ref = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    loss_cus = CustomCrossEntropyLoss(reduction)(x_cus, target)
    loss_ref = nn.CrossEntropyLoss(reduction=reduction)(x_ref, target)
    loss_cus.sum().backward()
    loss_ref.sum().backward()
    assert torch.isfinite(loss_cus).all() and torch.isfinite(x_cus.grad).all()
    tol = {"rtol": 1e-5, "atol": 1e-3} if dtype == torch.float32 else F64
    torch.testing.assert_close(loss_cus.detach(), loss_ref.detach(), **tol)
    torch.testing.assert_close(x_cus.grad, x_ref.grad, **tol)


def test_cross_entropy_perfect_and_hopeless_predictions():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=torch.float64)
    losses = CustomCrossEntropyLoss("none")(logits, torch.tensor([0, 0]))
    assert losses[0] == 0.0  # exp underflows to 0 cleanly, log(1) = 0
    assert losses[1] == pytest.approx(2e4)  # no inf: the shift keeps it finite


@pytest.mark.parametrize("bad", ["average", "MEAN", "", None])
def test_cross_entropy_bad_reduction(bad):
    with pytest.raises(ValueError) as info:
        CustomCrossEntropyLoss(reduction=bad)
    for allowed in ("mean", "sum", "none"):
        assert allowed in str(info.value)


def test_cross_entropy_rejects_bad_targets():
    loss = CustomCrossEntropyLoss()
    with pytest.raises(ValueError):
        loss(torch.zeros(3, 4), torch.tensor([0, 1, 4]))  # class 4 of 4
    with pytest.raises(ValueError):
        loss(torch.zeros(3, 4), torch.zeros(3))  # float targets


# --------------------------------------------------------------------------- allowed operations


def test_layers_use_only_allowed_operations():
    assert forbidden_uses(LAYERS_SOURCE.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import torch.nn.functional as F\nclass A:\n    def forward(self, x, w):\n        return F.conv2d(x, w)\n",
        "from torch.nn import functional as F\nclass A:\n    def forward(self, x):\n        return F.max_pool2d(x, 2)\n",
        "import torch\nclass A:\n    def forward(self, x):\n        return torch.logsumexp(x, 1)\n",
        "import torch\nclass A:\n    def forward(self, x):\n        return torch.nn.functional.cross_entropy(x, x)\n",
        "class A:\n    def forward(self, x):\n        return x.log_softmax(1)\n",
        "from torch import nn\nclass A:\n    def __init__(self):\n        self.fc = nn.Linear(3, 4)\n",
        "from torch import nn\nclass A:\n    def forward(self, x):\n        return nn.CrossEntropyLoss()(x, x)\n",
        "from torch.nn.functional import linear\n",
        "from torch.nn import init\nclass A:\n    def forward(self, x):\n        init.zeros_(x)\n",
        "import torch\nclass A:\n    def forward(self, x):\n        return torch.ops.aten.convolution(x)\n",
    ],
)
def test_forbidden_use_checker_catches(snippet):
    assert forbidden_uses(snippet), snippet


def test_forbidden_use_checker_allows_unfold_and_basics():
    snippet = (
        "import torch\nfrom torch import nn\nfrom torch.nn import functional as F\nfrom torch.nn import init\n"
        "class A(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.w = nn.Parameter(torch.empty(3))\n"
        "    def reset_parameters(self):\n        init.uniform_(self.w)\n"
        "    def forward(self, x):\n"
        "        c = F.unfold(x, 3)\n        return torch.einsum('ij,jk->ik', c, c).max(dim=1).values.exp().log()\n"
    )
    assert forbidden_uses(snippet) == []


# --------------------------------------------------------------------------- integration


def test_simple_cnn_custom_equals_torch():
    """SimpleCNN built from the custom layers computes what the torch.nn version computes."""
    from pipeline.models import create_model

    torch.manual_seed(9)
    reference = create_model("simple_cnn", layers="torch").double().eval()
    custom = create_model("simple_cnn", layers="custom").double().eval()
    custom.load_state_dict(reference.state_dict())
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    target = torch.tensor([0, 3, 9, 1])
    out_ref, out_cus = reference(x), custom(x)
    torch.testing.assert_close(out_cus, out_ref, **F64)
    nn.CrossEntropyLoss()(out_ref, target).backward()
    CustomCrossEntropyLoss()(out_cus, target).backward()
    grads_ref = dict(reference.named_parameters())
    for name, p in custom.named_parameters():
        torch.testing.assert_close(p.grad, grads_ref[name].grad, **F64, msg=name)
