import pytest
import torch

from gnndist.train.dropout import dropout


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
