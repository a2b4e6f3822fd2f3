"""How close each of transformers' generation decisions was, for exact-ids parity tests.

Random-weight fixtures give near-tied logits, and another CPU's floating-point order can flip a
near-tie. A parity test that finds different ids therefore asks the reference how close its own
decision was at the first step where the two implementations chose differently, and passes only
below a stated tolerance (see florence2_parity_test.cpp).

Margins are relative: gap / max(1, |score|), where the gap is
- greedy: top-1 minus top-2 processed logit at that step;
- beams: the smallest gap between adjacent candidates among the top (keep + 1) accumulated scores
  (keep = transformers' beams_to_keep), which covers the kept set, its order and the first dropped
  candidate. Candidates of beams that transformers parks at -1e9 are excluded.
A step with no finite runner-up (a forced token) has margin +inf.
"""
import torch
from transformers import LogitsProcessor, LogitsProcessorList

PARKED = -1.0e8  # transformers parks unused beams at -1e9; anything below this is one of them


class RunningSequences(LogitsProcessor):
    """Records the prefixes the decoder was fed at each step (for beams: the running beams)."""

    def __init__(self):
        self.steps = []

    def __call__(self, input_ids, scores):
        self.steps.append(input_ids.detach().clone())
        return scores


def relative_adjacent_gaps(values):
    """Smallest relative gap between adjacent finite, unparked values of a descending row."""
    values = [v for v in values.tolist() if v > PARKED and v != float("inf")]
    best = float("inf")
    for a, b in zip(values, values[1:]):
        best = min(best, (a - b) / max(1.0, abs(a)))
    return best


def greedy_margins(scores):
    """scores: transformers' per-step processed logits [B, V]. Returns [B, steps]."""
    out = torch.full((scores[0].shape[0], len(scores)), float("inf"))
    for s, step in enumerate(scores):
        top = torch.topk(step.float(), 2, dim=-1).values
        for b in range(top.shape[0]):
            out[b, s] = relative_adjacent_gaps(top[b])
    return out


def beam_margins(log_probs, running, num_beams, eos_ids, max_length):
    """Replays transformers' running-beam selection from its per-step processed log-probs
    ([B*beams, V], output_scores) to recover the accumulated candidate scores, checking the replay
    against the running beams transformers actually fed the decoder (`running`, captured by
    RunningSequences). Returns margins [B, steps] and the running prefixes as one tensor
    [steps, B*beams, max_length] padded with -1."""
    rows, vocab = log_probs[0].shape
    batch = rows // num_beams
    keep = max(2, 1 + len(eos_ids)) * num_beams
    eos = torch.tensor(eos_ids, dtype=torch.long)
    scores = torch.zeros(batch, num_beams)
    scores[:, 1:] = -1e9
    sequences = running[0].view(batch, num_beams, -1)
    margins = torch.full((batch, len(log_probs)), float("inf"))
    trace = torch.full((len(log_probs), rows, max_length), -1, dtype=torch.long)
    for s, step in enumerate(log_probs):
        cur_len = sequences.shape[2]
        if not torch.equal(sequences.reshape(rows, cur_len), running[s]):
            raise AssertionError(f"beam replay disagrees with transformers' running beams at step {s}")
        trace[s, :, :cur_len] = running[s]
        accumulated = (step.float().view(batch, num_beams, vocab) + scores[:, :, None]).view(batch, -1)
        top_scores, top_index = torch.topk(accumulated, keep + 1)
        for b in range(batch):
            margins[b, s] = relative_adjacent_gaps(top_scores[b])
        top_scores, top_index = top_scores[:, :keep], top_index[:, :keep]
        beam, token = top_index // vocab, top_index % vocab
        hits = torch.isin(token, eos) if len(eos_ids) else torch.zeros_like(token, dtype=torch.bool)
        if cur_len + 1 >= max_length:
            hits[:] = True
        running_scores = top_scores + hits.float() * -1e9
        chosen = torch.topk(running_scores, num_beams).indices
        scores = torch.gather(running_scores, 1, chosen)
        parents = torch.gather(beam, 1, chosen)
        tokens = torch.gather(token, 1, chosen)
        sequences = torch.cat([torch.gather(sequences, 1, parents[:, :, None].expand(-1, -1, cur_len)),
                               tokens[:, :, None]], dim=2)
    return margins, trace


def token_log_probs(model, out, beams):
    """The log-probability of each generated token under the scores the search chose it by, from
    transformers' own compute_transition_scores: greedy's processed logits log-softmaxed
    (normalize_logits=True), beam search's processed log-probs under the beam that produced the token
    (beam_indices). [B, T - 1], 0 where a beam had already finished."""
    if beams == 1:
        return model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    return model.compute_transition_scores(out.sequences, out.scores, out.beam_indices, normalize_logits=False)


def generate_with_margins(model, generation, **inputs):
    """model.generate(**inputs, **generation) plus the reference's margins (and, for beams, its
    running prefixes per step) and each generated token's log-probability (token_log_probs).
    Returns (ids, margins [B, steps], running or None, token log-probs [B, T - 1])."""
    capture = RunningSequences()
    out = model.generate(**inputs, **generation, logits_processor=LogitsProcessorList([capture]),
                         output_scores=True, return_dict_in_generate=True)
    beams = generation.get("num_beams", 1)
    log_probs = token_log_probs(model, out, beams).float().contiguous()
    if beams == 1:
        return out.sequences, greedy_margins(out.scores), None, log_probs
    eos = generation.get("eos_token_id")
    eos_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    max_length = 1 + generation["max_new_tokens"]
    margins, running = beam_margins(out.scores, capture.steps, beams, eos_ids, max_length)
    return out.sequences, margins, running, log_probs
