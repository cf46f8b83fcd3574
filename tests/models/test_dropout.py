import pytest
import torch
import torch.nn.functional as F

from gnndist.models.dropout import dropout, relu_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_drop_rate_and_scale(p):
    torch.manual_seed(0)
    out = dropout(torch.ones(400, 500), p)
    assert abs((out == 0).float().mean().item() - p) < 0.01
    assert torch.allclose(out[out != 0], torch.tensor(1 / (1 - p)))


def test_eval_and_zero_are_identity_and_seeded():
    x = torch.randn(10, 10)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x
    torch.manual_seed(3)
    a = dropout(x, 0.5)
    torch.manual_seed(3)
    assert torch.equal(a, dropout(x, 0.5))


def test_full_range_lanes_give_the_requested_rate_in_every_lane():
    torch.manual_seed(1)
    dropped = dropout(torch.ones(1000, 400), 0.3) == 0  # 4 lanes per random word: columns mod 4 come from one lane
    assert all(abs(dropped[:, lane::4].float().mean().item() - 0.3) < 0.01 for lane in range(4))


def test_gradient_is_the_mask_times_the_scale():
    x = torch.randn(50, 40, requires_grad=True)
    torch.manual_seed(2)
    out = dropout(x, 0.4)
    out.sum().backward()
    kept = out != 0
    assert torch.allclose(x.grad[kept], torch.tensor(1 / 0.6)) and bool((x.grad[~kept] == 0).all())


@pytest.mark.parametrize("requires_grad", [True, False])
def test_relu_dropout_equals_dropout_of_relu_with_its_gradient(requires_grad):
    h = torch.randn(300, 70)
    h[0, :5] = 0.0  # relu's kink: no gradient at exactly 0
    a, b = h.clone().requires_grad_(requires_grad), h.clone().requires_grad_(requires_grad)
    torch.manual_seed(5)
    fused = relu_dropout(a, 0.5)
    torch.manual_seed(5)
    composed = dropout(F.relu(b), 0.5)
    assert torch.equal(fused, composed)
    if requires_grad:
        grad = torch.randn_like(h)
        fused.backward(grad)
        composed.backward(grad)
        assert torch.equal(a.grad, b.grad)


def test_relu_dropout_in_eval_is_relu():
    h = torch.randn(20, 8)
    assert torch.equal(relu_dropout(h, 0.5, training=False), F.relu(h))
