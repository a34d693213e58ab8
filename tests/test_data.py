"""Reading, vocabulary and the stream layouts."""

import numpy as np
import pytest

from charrnn import data
from charrnn.errors import DataError


def test_roundtrip_unicode(tmp_path):
    text = "héllo wörld ✓ 🙂 e\u0301\n" * 3
    p = tmp_path / "u.txt"
    p.write_text(text, encoding="utf-8")
    loaded = data.load_corpus(str(p))
    ids, vocab = loaded.ids, loaded.vocab
    assert vocab.decode(ids) == text
    assert ids.dtype == np.uint8


def test_large_vocab_uses_two_bytes(tmp_path):
    text = "".join(chr(0x4E00 + i) for i in range(300))
    p = tmp_path / "cjk.txt"
    p.write_text(text, encoding="utf-8")
    loaded = data.load_corpus(str(p))
    ids, vocab = loaded.ids, loaded.vocab
    assert ids.dtype == np.uint16 and vocab.decode(ids) == text


def test_chunked_reading_matches_whole(tmp_path, monkeypatch):
    """Pieces split inside multi-byte characters and between \\r and \\n are stitched correctly."""
    text = ("ab\r\ncd é€🙂\r\n" * 50) + "x\r"
    p = tmp_path / "c.txt"
    p.write_bytes(text.encode("utf-8"))
    monkeypatch.setattr(data, "READ_BYTES", 7)
    loaded = data.load_corpus(str(p))
    ids, vocab = loaded.ids, loaded.vocab
    assert vocab.decode(ids) == text.replace("\r\n", "\n")


def test_streams_layout():
    ids = np.arange(100, dtype=np.int64)
    s = data.Streams(ids, batch_size=4, seq_len=5)
    assert s.chunks_per_epoch == (25 - 1) // 5
    x, y = s.chunk(1)
    assert x.shape == (4, 5)
    np.testing.assert_array_equal(x[2], np.arange(55, 60))
    np.testing.assert_array_equal(y, x + 1)


def test_streams_too_short_names_the_flags():
    with pytest.raises(DataError, match=r"--batch-size 4 and --seq-len 10 need at least 44"):
        data.Streams(np.zeros(40, dtype=np.uint8), 4, 10)


@pytest.mark.parametrize("n,streams,warmup,chunk", [(1000, 7, 16, 30), (50, 64, 128, 256), (11, 3, 0, 4)])
def test_eval_chunks_score_every_target_once(n, streams, warmup, chunk):
    ids = np.arange(n, dtype=np.int64)
    n_context = 5
    scored = []
    for x, y, targets in data.eval_chunks(ids, n_context, streams, warmup, chunk):
        mask = targets >= 0
        np.testing.assert_array_equal(y[mask], x[mask] + 1)  # y follows x in the text
        np.testing.assert_array_equal(y[mask], ids[targets[mask]])  # targets says where y is
        scored.extend(y[mask].tolist())
    assert sorted(scored) == list(range(n_context, n))


def test_eval_chunks_stream_is_contiguous():
    """Within a stream, the inputs are consecutive text, warm-up included."""
    ids = np.arange(400, dtype=np.int64)
    xs = [x for x, _, _ in data.eval_chunks(ids, 200, 4, 20, 1000)]
    x = np.concatenate(xs, axis=1)
    assert np.all(np.diff(x, axis=1) == 1)
