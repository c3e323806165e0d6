"""Tests for nerve.model.char: the char CNN's fast convolution against torch's Conv1d."""

import pytest
import torch
import torch.nn.functional as F

from nerve.model.char import CharCNN, CharRNN


def reference_char_cnn(cnn: CharCNN, chars: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Embed, Conv1d (kernel 3, padding 1), max over each word's real characters. chars (N, C) -> (N, hidden)."""
    x = cnn.emb(chars).transpose(1, 2)  # shape: (N, emb, C)
    y = F.conv1d(x, cnn.conv.weight, cnn.conv.bias, padding=1).transpose(1, 2)  # shape: (N, C, hidden)
    return torch.stack([y[i, : max(int(n), 1)].amax(dim=0) for i, n in enumerate(lens)])


def random_words(seed: int, n_words: int, max_len: int, n_chars: int):
    gen = torch.Generator().manual_seed(seed)
    lens = torch.randint(1, max_len + 1, (n_words,), generator=gen)
    chars = torch.randint(1, n_chars, (n_words, max_len), generator=gen)
    chars[torch.arange(max_len)[None, :] >= lens[:, None]] = 0
    return chars, lens


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_char_cnn_equals_conv1d_with_max_over_real_characters(seed):
    torch.manual_seed(seed)
    cnn = CharCNN(n_chars=20, emb_dim=6, hidden=5, dropout=0.5).eval()
    chars, lens = random_words(seed, n_words=12, max_len=7, n_chars=20)
    out = cnn(chars.view(3, 4, 7), lens.view(3, 4))
    torch.testing.assert_close(out.view(12, 5), reference_char_cnn(cnn, chars, lens))


def test_char_cnn_training_path_equals_eval_path_without_dropout():
    torch.manual_seed(0)
    cnn = CharCNN(n_chars=20, emb_dim=6, hidden=5, dropout=0.0)
    chars, lens = random_words(3, n_words=8, max_len=5, n_chars=20)
    chars[4] = chars[1]  # a repeated word: eval mode encodes it once
    lens[4] = lens[1]
    train_out = cnn.train()(chars.view(2, 4, 5), lens.view(2, 4))
    torch.testing.assert_close(train_out, cnn.eval()(chars.view(2, 4, 5), lens.view(2, 4)))


def test_char_cnn_weight_gradient_equals_conv1d_gradient():
    torch.manual_seed(0)
    cnn = CharCNN(n_chars=20, emb_dim=6, hidden=5, dropout=0.0).train()
    chars, lens = random_words(4, n_words=6, max_len=6, n_chars=20)
    cnn(chars.view(2, 3, 6), lens.view(2, 3)).sum().backward()
    fast = cnn.conv.weight.grad.clone()
    cnn.zero_grad()
    reference_char_cnn(cnn, chars, lens).sum().backward()
    torch.testing.assert_close(fast, cnn.conv.weight.grad)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_char_rnn_eval_path_encoding_each_distinct_word_once_equals_training_path(cell):
    torch.manual_seed(0)
    rnn = CharRNN(n_chars=20, emb_dim=6, hidden=6, dropout=0.0, cell=cell)
    chars, lens = random_words(3, n_words=8, max_len=5, n_chars=20)
    chars[4], lens[4] = chars[1], lens[1]  # a repeated word
    train_out = rnn.train()(chars.view(2, 4, 5), lens.view(2, 4))
    torch.testing.assert_close(rnn.eval()(chars.view(2, 4, 5), lens.view(2, 4)), train_out)
