"""Text laid into lanes and run chunk by chunk: each lane's state carried from one chunk to
the next and zeroed where a document starts, checked against sums computed document by
document, with no lanes at all."""

import numpy as np
import pytest
import torch

from lstmviz.text.corpus import Document, Vocab
from lstmviz.text.lanes import LaidText, logp_of_next

VOCAB = Vocab.build(["abcdef"])


def random_documents(seed: int, count: int = 12) -> list[Document]:
    rng = np.random.default_rng(seed)
    return [Document(f"d{k}", "".join(rng.choice(list("abcdef"), size=n))) for k, n in enumerate(rng.integers(1, 40, count))]


def running_sums(chunk, state):
    """A toy recurrent model: per batch row, the sum of its ids since its document began
    (``keep`` 0 zeroes the state before a step); the state is [1, rows, 1]."""
    s, out = state[0, :, 0], []
    for t in range(chunk.ids.shape[1]):
        s = s * chunk.keep[:, t] + chunk.ids[:, t]
        out.append(s)
    return torch.stack(out, 1), s[None, :, None]


def sums_by_document(docs: list[Document], add: int = 0) -> np.ndarray:
    return np.concatenate([np.cumsum(VOCAB.encode_array(d.text) + add) for d in docs])


@pytest.mark.parametrize(("lanes", "chunk_len"), [(1, 7), (3, 5), (4, 64), (16, 3)])
def test_each_lane_carries_its_state_and_starts_each_document_from_zero(lanes, chunk_len):
    docs = random_documents(lanes)
    laid = LaidText.of(docs, VOCAB, lanes)
    seen = np.full(len(laid.text), np.nan)
    zero = torch.zeros(1, laid.lanes, 1, dtype=torch.float64)
    for chunk, sums, _ in laid.run(laid.chunks(chunk_len), running_sums, zero):
        seen[chunk.pos[chunk.valid]] = sums.numpy()[chunk.valid]
    np.testing.assert_array_equal(seen, sums_by_document(docs))


def test_lanes_leave_the_batch_when_their_text_is_done():
    docs = [Document("long", "a" * 100), *(Document(f"s{k}", "b" * 10) for k in range(3))]
    laid = LaidText.of(docs, VOCAB, 2)
    rows = [chunk.rows.tolist() for chunk in laid.chunks(16)]
    assert laid.lane_len.tolist() == [100, 30]
    assert rows == [[0, 1], [0, 1], [0], [0], [0], [0], [0]]
    assert [c.ids.shape[1] for c in laid.chunks(16)][-1] == 100 - 6 * 16  # the last chunk only as long as needed


def test_a_state_may_hold_copies_of_every_lane_and_nest_them():
    """As ablation runs it: one state shared, and one with a copy of every lane per neuron set
    (copy k adds 100 k to each id here), row ``copy * lanes + lane``."""
    docs = random_documents(5)
    laid = LaidText.of(docs, VOCAB, 3)
    copies = 4

    def step(chunk, state):
        shared, copied = state
        ones, shared = running_sums(chunk, shared)
        bump = torch.arange(copies).repeat_interleave(len(chunk.rows))[:, None] * 100
        replicated = type(chunk)(
            chunk.rows, chunk.pos, chunk.valid, chunk.ids.repeat(copies, 1) + bump, chunk.keep.repeat(copies, 1), chunk.targets
        )
        many, copied = running_sums(replicated, copied)
        return (ones, many), (shared, copied)

    state = (torch.zeros(1, laid.lanes, 1, dtype=torch.float64), torch.zeros(1, copies * laid.lanes, 1, dtype=torch.float64))
    shared, copied = np.full(len(laid.text), np.nan), np.full((copies, len(laid.text)), np.nan)
    for chunk, (ones, many), _ in laid.run(laid.chunks(6), step, state):
        shared[chunk.pos[chunk.valid]] = ones.numpy()[chunk.valid]
        for k, part in enumerate(many.numpy().reshape(copies, len(chunk.rows), -1)):
            copied[k, chunk.pos[chunk.valid]] = part[chunk.valid]
    np.testing.assert_array_equal(shared, sums_by_document(docs))
    for k in range(copies):
        np.testing.assert_array_equal(copied[k], sums_by_document(docs, add=100 * k))


def test_training_lays_documents_in_whole_chunks_and_runs_every_lane_every_chunk():
    docs = [np.arange(1, 6), np.arange(10, 13), np.arange(20, 29)]  # 5, 3, 9 ids: 2, 1, 3 chunks of 4
    laid = LaidText.in_whole_chunks(docs, lanes=4, chunk_len=4)
    assert laid.lanes == 4 and laid.lane_len.tolist() == [8, 4, 12, 0]  # one lane is empty: the batch stays 4 wide
    chunks = list(laid.chunks(4, every_lane=True))
    assert laid.chunk_count(4) == len(chunks) == 3 and all(c.ids.shape == (4, 4) for c in chunks)
    assert [c.ids[0].tolist() for c in chunks[:2]] == [[1, 2, 3, 4], [5, 0, 0, 0]]  # padded to the chunk's end
    assert [c.targets[0].tolist() for c in chunks[:2]] == [[2, 3, 4, 5], [-1, -1, -1, -1]]  # padding predicts nothing
    starts = [c.keep[:, 0].tolist() for c in chunks]
    assert starts == [[0, 0, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1]]  # a document starts only where a chunk does
    assert all((c.keep[:, 1:] == 1).all() for c in chunks)  # so the fused module runs each chunk unbroken
    zero = torch.zeros(1, 4, 1, dtype=torch.float64)
    resumed = [c.ids.tolist() for c, _, _ in laid.run(laid.chunks(4, start=1, every_lane=True), running_sums, zero)]
    assert resumed == [c.ids.tolist() for c in chunks[1:]]


def test_whole_documents_side_by_side_restart_at_their_padding():
    docs = [Document("a", "abcabc"), Document("b", "de"), Document("c", "f" * 30)]
    laid = LaidText.of(docs, VOCAB, 2)
    batches = list(laid.whole_documents(batch=3, batch_chars=20))
    assert [b.rows.tolist() for b in batches] == [[0, 1], [0]]  # the long one alone: three padded to it would pass 20
    first = batches[0]
    assert first.valid.sum(1).tolist() == [6, 2]
    assert first.keep.tolist() == [[0, 1, 1, 1, 1, 1], [0, 1, 0, 1, 1, 1]]  # zero where "de" ends: its backward start


def test_logp_of_next_picks_the_predicted_character():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 4, -1], [0, -1, 2]])
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp_of_next(logp, targets)
    for b in range(2):
        for t in range(3):
            k = int(targets[b, t])
            expected = float("nan") if k < 0 else float(logits[b, t, k] - torch.logsumexp(logits[b, t], 0))
            np.testing.assert_allclose(float(picked[b, t]), expected, rtol=1e-6, equal_nan=True)
