"""Tests for nerve.model.rnn's word CNN: the matmul convolution against Conv1d, BatchNorm over real tokens only."""

import numpy as np
import pytest
import torch
from torch import nn

from nerve.model.rnn import CNNEncoder, conv1d_as_matmul, masked_batchnorm


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_conv1d_as_matmul_equals_conv1d(kernel):
    torch.manual_seed(0)
    conv = nn.Conv1d(4, 6, kernel, padding=kernel // 2)
    x = torch.randn(3, 7, 4)
    torch.testing.assert_close(conv1d_as_matmul(x, conv), conv(x.transpose(1, 2)).transpose(1, 2))


def test_conv1d_as_matmul_weight_gradient_equals_conv1d_gradient():
    torch.manual_seed(0)
    conv = nn.Conv1d(4, 6, 3, padding=1)
    x = torch.randn(3, 7, 4)
    conv1d_as_matmul(x, conv).square().sum().backward()
    fast = conv.weight.grad.clone()
    conv.zero_grad()
    conv(x.transpose(1, 2)).transpose(1, 2).square().sum().backward()
    torch.testing.assert_close(fast, conv.weight.grad)


def test_masked_batchnorm_normalises_with_statistics_of_real_tokens_only():
    torch.manual_seed(0)
    norm = nn.BatchNorm1d(3, affine=False).train()
    h = torch.randn(2, 4, 3)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    h[~mask] = 1000.0  # padding must not enter the statistics
    out = masked_batchnorm(h, mask, norm)
    real = h[mask].numpy()
    expected = (real - real.mean(0)) / np.sqrt(real.var(0) + norm.eps)
    np.testing.assert_allclose(out[mask].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert float(out[~mask].abs().sum()) == 0.0


def test_masked_batchnorm_with_one_real_token_in_training_uses_running_statistics():
    norm = nn.BatchNorm1d(2, affine=False).train()
    norm.running_mean.fill_(1.0)
    norm.running_var.fill_(4.0)
    h = torch.tensor([[[3.0, 5.0], [9.0, 9.0]]])
    out = masked_batchnorm(h, torch.tensor([[True, False]]), norm)
    torch.testing.assert_close(out[0, 0], (torch.tensor([3.0, 5.0]) - 1.0) / torch.sqrt(torch.tensor(4.0) + norm.eps))


def test_cnn_encoder_with_batchnorm_in_training_ignores_padding_length():
    torch.manual_seed(0)
    enc = CNNEncoder(5, 6, layers=2, kernel=3, dropout=0.0, batchnorm=True).train()
    x = torch.randn(2, 4, 5)
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    short = enc(x, mask, mask.sum(1))
    longer = enc(torch.cat([x, torch.randn(2, 3, 5)], 1), torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], 1),
                 mask.sum(1))
    torch.testing.assert_close(longer[:, :4], short)
