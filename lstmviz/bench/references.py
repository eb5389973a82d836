"""The references the benchmarks measure our code beside: what a careful user would write
for the same job (a plain training loop, a step loop with nn.LSTMCell's weights, a clamp
loop, vectorised scipy rankings, one standardised matrix product), and the fused forward,
the ceiling of recording. Each computes the same numbers as our code (tests/test_bench.py
holds them to it): a ratio against a reference that does something else would mean nothing."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import LstmvizError
from ..model.checkpoint import Checkpoint
from ..model.instrument import FUSED_MODULES
from ..text.lanes import select_rows, update_rows

WARM_UP_STEPS = 10  # training speed is measured from the first logged step (every 10th) on

# -- training ----------------------------------------------------------------------------------


def plain_training_loop(cfg, vocab_size: int, ids: np.ndarray) -> float:
    """Characters/s of the loop a user writes with a fused nn.LSTM (or GRU, RNN) for the
    same model, batch and optimiser as ``cfg`` (a ``TrainConfig``) over the text ``ids``:
    one stream per row, state carried and detached, cross-entropy, clipping, Adam; timed
    from step ``WARM_UP_STEPS`` on, as our training's history is."""
    torch.manual_seed(0)
    model_cfg = cfg.model_config(vocab_size)
    emb = torch.nn.Embedding(model_cfg.vocab_size, model_cfg.embed_dim)
    rnn = FUSED_MODULES[model_cfg.cell](model_cfg.embed_dim, model_cfg.hidden_size, model_cfg.num_layers, batch_first=True)
    dec = torch.nn.Linear(model_cfg.hidden_size, model_cfg.vocab_size)
    params = [*emb.parameters(), *rnn.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    stream = torch.from_numpy(ids[: (len(ids) // cfg.batch_size) * cfg.batch_size]).view(cfg.batch_size, -1)
    state, t_start = None, None
    for step in range(cfg.steps):
        if step == WARM_UP_STEPS % cfg.steps:  # same warm-up as ours
            t_start = time.perf_counter()
        a = (step * cfg.seq_len) % (stream.shape[1] - cfg.seq_len - 1)
        x, y = stream[:, a : a + cfg.seq_len], stream[:, a + 1 : a + cfg.seq_len + 1]
        out, state = rnn(emb(x), state)
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        loss = F.cross_entropy(dec(out).reshape(-1, model_cfg.vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        loss.item()
    return (cfg.steps - WARM_UP_STEPS % cfg.steps) * cfg.batch_size * cfg.seq_len / (time.perf_counter() - t_start)


# -- recording ---------------------------------------------------------------------------------


def forward_seconds(ckpt: Checkpoint, batches, wanted: list[str] | None = None) -> float:
    """Seconds of the model's fused forward over the chunks, carrying each lane's state; with
    ``wanted`` (hook names), of the instrumented forward recording runs instead, computing
    those series. Nothing is written either way."""
    model = ckpt.model
    t0 = time.perf_counter()
    with torch.inference_mode():
        state = model.initial_state(len(batches[0][0]))
        for rows, x in batches:
            if wanted is None:
                _, part = model(x, select_rows(state, rows))
            else:
                (_, part), _ = model.run_with_cache(x, wanted, select_rows(state, rows))
            state = update_rows(state, rows, part)
    return time.perf_counter() - t0


def _lstm_cells(ckpt: Checkpoint) -> list[torch.nn.LSTMCell]:
    """The checkpoint's layers as nn.LSTMCell modules (the same weights)."""
    cfg = ckpt.model_config
    if cfg.cell != "lstm":
        raise LstmvizError("bench record compares against nn.LSTMCell: it needs an LSTM checkpoint.")
    cells = []
    for layer in range(cfg.num_layers):
        cell = torch.nn.LSTMCell(cfg.embed_dim if layer == 0 else cfg.hidden_size, cfg.hidden_size)
        cell.load_state_dict({k[:-3]: v for k, v in ckpt.model.layer_weights(layer).items()})
        cells.append(cell)
    return cells


def _cell_layer(cell: torch.nn.LSTMCell, inputs: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """One layer over a chunk [rows, time, in] as a careful user writes it with an
    nn.LSTMCell's weights: the input projection of every step as one matrix product before
    the loop, then per step one addmm for the recurrent product, one sigmoid over all four
    gates (g's tanh apart) and four more pointwise kernels. Returns h and c of every
    step [rows, time, hidden]."""
    rows, steps, _ = inputs.shape
    hidden = h.shape[1]
    projected = torch.addmm(cell.bias_ih + cell.bias_hh, inputs.reshape(rows * steps, -1), cell.weight_ih.t())
    projected = projected.view(rows, steps, 4 * hidden).transpose(0, 1)  # [time, rows, 4 hidden]
    w_hh_t, hs, cs = cell.weight_hh.t(), [], []
    for t in range(steps):
        gates = torch.addmm(projected[t], h, w_hh_t)
        i, f, _, o = gates.sigmoid().chunk(4, 1)
        c = torch.addcmul(f * c, i, gates[:, 2 * hidden : 3 * hidden].tanh())
        h = o * c.tanh()
        hs.append(h)
        cs.append(c)
    return torch.stack(hs, 1), torch.stack(cs, 1)


def hoisted_cell_loop(ckpt: Checkpoint, batches) -> tuple[float, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The reference for recording: every layer by :func:`_cell_layer`, each lane's state
    carried from chunk to chunk, h and c of every layer and step kept, the decoder on the top
    layer. Returns seconds and, per chunk, (h, c) [layers, rows, time, hidden]."""
    cells, kept = _lstm_cells(ckpt), []
    t0 = time.perf_counter()
    with torch.inference_mode():
        state = ckpt.model.initial_state(len(batches[0][0]))
        for rows, x in batches:
            h0, c0 = select_rows(state, rows)
            inputs, hs, cs = ckpt.model.embedding(x), [], []
            for layer, cell in enumerate(cells):
                inputs, c = _cell_layer(cell, inputs, h0[layer], c0[layer])
                hs.append(inputs)
                cs.append(c)
            ckpt.model.decoder(inputs)
            kept.append((torch.stack(hs), torch.stack(cs)))
            state = update_rows(state, rows, (torch.stack([h[:, -1] for h in hs]), torch.stack([c[:, -1] for c in cs])))
    return time.perf_counter() - t0, kept


# -- analysis ----------------------------------------------------------------------------------


def _norms(rows: np.ndarray) -> np.ndarray:
    """Each row's norm, summed in float64; a zero row's made infinite: it correlates with nothing."""
    sd = np.sqrt(np.square(rows, dtype=np.float64).sum(1))
    sd[sd == 0] = np.inf
    return sd


REFERENCE_BLOCK = 32  # neurons ranked at once by the reference: 256 MB of float64 ranks at 1M characters


def reference_rankings(store, features, kinds: tuple[str, ...] = ("h", "c"), block_size: int = REFERENCE_BLOCK) -> dict:
    """What a careful user writes with scipy for every neuron against every feature, over all
    neurons: per block of neurons, ``scipy.stats.rankdata(block, axis=1)`` and one float32
    matrix product of [ranks; values] with [feature ranks | features], all centred. Returns
    ``{"neurons", "auroc" [n, binary], "rho" [n, numeric], "pearson" [n, numeric + binary]}``,
    features in the order of :func:`lstmviz.analysis.rankings.rank_neurons`: numeric, then binary."""
    from scipy.stats import rankdata

    names = features.names()
    binary = [k for k in names if features.is_binary(k)]
    numeric = [k for k in names if not features.is_binary(k)]
    n = len(store)
    raw = np.stack([features[k].astype(np.float64) for k in numeric + binary], 1)
    ranked = np.concatenate([rankdata(raw[:, : len(numeric)], axis=0), raw[:, len(numeric) :]], 1)
    centred = np.concatenate([ranked - ranked.mean(0), raw - raw.mean(0)], 1)
    targets = centred.astype(np.float32)  # [n, 2 features]: ranks (binary features as they are), then values
    target_sd = _norms(centred.T)
    n_pos = raw[:, len(numeric) :].sum(0)
    pairs = n_pos * (n - n_pos)
    neurons, auroc, rho, pearson = [], [], [], []
    for s in store.series:
        if s.kind not in kinds:
            continue
        for lo in range(0, s.units, block_size):
            values = np.asarray(store.activations[s.row + lo : s.row + min(lo + block_size, s.units)], dtype=np.float32)
            ranks = rankdata(values, axis=1)
            both = np.concatenate([ranks - (n + 1) / 2, values - values.mean(1, keepdims=True)]).astype(np.float32)
            product = (both @ targets).astype(np.float64)  # [2 b, 2 features]: ranks' rows, then values'
            sd = _norms(both)
            b, f = len(values), len(names)
            by_rank, by_value = product[:b, :f], product[b:, f:]
            rho.append(by_rank[:, : len(numeric)] / np.outer(sd[:b], target_sd[: len(numeric)]))
            mann_whitney = by_rank[:, len(numeric) :] + n_pos * (n + 1) / 2 - n_pos * (n_pos + 1) / 2
            auroc.append(np.where(pairs > 0, mann_whitney / np.maximum(pairs, 1), 0.5))
            pearson.append(by_value / np.outer(sd[b:], target_sd[f:]))
            neurons += [str(s.neuron(unit)) for unit in range(lo, lo + b)]
    return {"neurons": neurons, "auroc": np.concatenate(auroc), "rho": np.concatenate(rho), "pearson": np.concatenate(pearson)}


# -- compare -----------------------------------------------------------------------------------


def standardised(store) -> torch.Tensor:
    """A store's h and c series as float32 [series, chars], each with mean 0 and norm 1 (a
    constant one all zeros)."""
    from ..analysis.compare import Block

    block = Block.of(store)
    x = torch.empty(len(block.rows), len(store))
    block.widen_into(store, 0, len(store), x)
    x -= x.mean(1, keepdim=True)
    x /= torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-30)
    return x


def reference_correlations(a, b) -> np.ndarray:
    """What a careful user writes for compare's correlations: A's and B's h and c series
    widened to float32 and standardised, then one float32 matrix product, A x B only.
    Pearson r [A series, B series]."""
    return (standardised(a) @ standardised(b).T).numpy()


# -- intervene ---------------------------------------------------------------------------------


def clamped_loop(ckpt: Checkpoint, batches, unit: int, value: float) -> tuple[float, list[torch.Tensor]]:
    """The reference a careful user writes to clamp unit ``unit`` of layer 1's c: layer 1 one
    step at a time with its input projection hoisted out of the loop (one matrix product per
    chunk) and the recurrent product as one addmm, the layers above by the fused nn.LSTM
    (nothing there is replaced), then the decoder. Returns seconds and the logits."""
    model, cfg = ckpt.model, ckpt.model_config
    w_ih, w_hh, b_ih, b_hh = model.layer_weights(0).values()
    w_ih_t, w_hh_t, bias = w_ih.t(), w_hh.t(), b_ih + b_hh  # transposed views: MKL's faster layout here
    above = torch.nn.LSTM(cfg.hidden_size, cfg.hidden_size, num_layers=cfg.num_layers - 1, batch_first=True)
    weights = {}
    for layer in range(1, cfg.num_layers):
        weights.update({f"{k[:-1]}{layer - 1}": v for k, v in model.layer_weights(layer).items()})
    above.load_state_dict(weights)
    logits = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        state = model.initial_state(len(batches[0][0]))
        for rows, x in batches:
            h_all, c_all = select_rows(state, rows)
            h, c = h_all[0], c_all[0]
            gx = torch.addmm(bias, model.embedding(x).transpose(0, 1).reshape(-1, cfg.embed_dim), w_ih_t)
            gx = gx.view(x.shape[1], x.shape[0], -1)
            hs = []
            for t in range(x.shape[1]):
                i, f, g, o = torch.addmm(gx[t], h, w_hh_t).chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                c[:, unit] = value
                h = torch.sigmoid(o) * torch.tanh(c)
                hs.append(h)
            out, (h_up, c_up) = above(torch.stack(hs, 1), (h_all[1:], c_all[1:]))
            logits.append(model.decoder(out))
            state = update_rows(state, rows, (torch.cat([h[None], h_up]), torch.cat([c[None], c_up])))
    return time.perf_counter() - t0, logits


# -- attribute -----------------------------------------------------------------------------------


def captum_layer_integrated_gradients(ckpt: Checkpoint, ids: torch.Tensor, state, unit: int, steps: int):
    """What a careful Captum user writes for the integrated gradients of layer 2's c unit
    ``unit`` at the last of ``ids`` [time] from the zero embedding: ``LayerIntegratedGradients``
    on the embedding layer (Gauss-Legendre nodes, Captum's default), the fused ``nn.LSTM``
    from ``state`` (the state the text before left), c read from its final state; the
    baseline is an extra vocabulary row of zeros. Returns (seconds, per-character
    attributions, Captum's convergence delta, f(x) - f(baseline))."""
    from captum.attr import LayerIntegratedGradients

    model = ckpt.model
    embedding = torch.nn.Embedding.from_pretrained(
        torch.cat([model.embedding.weight.detach(), model.embedding.weight.new_zeros(1, model.config.embed_dim)])
    )

    def c_unit(batch: torch.Tensor) -> torch.Tensor:
        rows = batch.shape[0]
        start = tuple(s.expand(-1, rows, -1).contiguous() for s in state)
        _, (_, c) = model.rnn(embedding(batch), start)
        return c[-1, :, unit]

    x, baseline = ids.unsqueeze(0), torch.full_like(ids, model.config.vocab_size).unsqueeze(0)
    t0 = time.perf_counter()
    attributions, delta = LayerIntegratedGradients(c_unit, embedding).attribute(
        x, baselines=baseline, n_steps=steps, return_convergence_delta=True
    )
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        change = float(c_unit(x) - c_unit(baseline))
    return seconds, attributions.sum(-1)[0].detach(), float(delta), change


# -- the circuit into a cell -----------------------------------------------------------------------


def reference_circuit(ckpt: Checkpoint, store, neuron, positions: np.ndarray) -> dict[str, np.ndarray]:
    """An LSTM unit's circuit as a user writes it from the equations: the recorded series read
    whole, h_{t-1} made by a shift, then every position's terms written out (``np.einsum``,
    [positions, sources] per gate) and averaged. Per gate: the mean terms of h_{t-1}'s units,
    the input's (the first layer: each character's), and the bias."""
    from ..core.neurons import NeuronId

    if ckpt.model_config.cell != "lstm":
        raise LstmvizError("The circuit reference is written for an LSTM.")
    model, H, L = ckpt.model, ckpt.model_config.hidden_size, neuron.layer
    w_ih, w_hh, b_ih, b_hh = (w.detach().double().numpy() for w in model.layer_weights(L - 1).values())
    own = store.window([NeuronId(L, "h", k) for k in range(H)])  # [hidden, chars]
    previous = np.zeros_like(own)
    previous[:, 1:] = own[:, :-1]
    previous[:, [d.start for d in store.documents]] = 0
    previous = previous[:, positions].T  # [positions, hidden]
    if L == 1:
        w_ih = w_ih @ model.embedding.weight.detach().double().numpy().T  # [gates, vocab]
        given = np.eye(len(ckpt.vocab), dtype=np.float32)[ckpt.vocab.encode_array(store.text())[positions]]
    else:
        given = store.window([NeuronId(L - 1, "h", k) for k in range(H)])[:, positions].T
    out = {}
    for k, gate in enumerate(("i", "f", "g", "o")):
        row = k * H + neuron.index
        recurrent = np.einsum("th,h->th", previous, w_hh[row].astype(np.float32)).mean(0, dtype=np.float64)
        inputs = np.einsum("ti,i->ti", given, w_ih[row].astype(np.float32)).mean(0, dtype=np.float64)
        out[gate] = np.concatenate([recurrent, inputs, [b_ih[row] + b_hh[row]]])
    return out
