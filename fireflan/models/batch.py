"""Several sampled continuations in one llama.cpp context, sharing every token they have in common:
multi-branch reasoning at a fraction of k trajectories' cost.

Each branch is a sequence id in one unified KV cache. A new prompt is matched against every
sequence's evaluated tokens, so the few-shot prefix and question shared by all branches are
evaluated once and copied (`llama_memory_seq_cp` shares the cells, it does not recompute them), and
a branch's next step evaluates only its new tokens. During generation, branches whose tokens are
still identical are one node of a sampling tree: the next token is computed once for all of them
(one batch entry carrying several sequence ids) and each samples from those logits with its own
seed. A fine-tuned model is confident, so its branches share most tokens.

    decoder = BatchDecoder(llm, n_seq=5)
    outs = decoder.generate([Job(tokens, temperature=0.7, seed=i) for i in range(5)], stop=["Observation:"])
    outs[0].text, outs[0].completion_tokens

Sampling is llama.cpp's own chain (top-k 40, top-p 0.95, min-p 0.05, temperature, a seeded
distribution; greedy at temperature 0), the chain `create_completion` uses by default; attention
as `llama_cpp.Llama` sets it (no flash attention), so greedy output equals one-by-one decoding.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass

import numpy as np


class RefusedBatch(RuntimeError):
    """llama.cpp refused a batch whose positions do not continue what its memory holds."""


@dataclass
class Job:
    tokens: list[int]  # the whole prompt
    temperature: float = 0.0
    seed: int = 0
    processor: object = None  # a logits processor (input_ids, scores) -> scores, e.g. ActionConstraint


@dataclass
class Output:
    text: str
    completion_tokens: int
    prompt_tokens: int
    evaluated_tokens: int  # prompt tokens actually computed (the rest were reused or shared)


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix. ([1, 2, 3], [1, 2, 4]) -> 2"""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class BatchDecoder:
    """`n_seq` sequences in one llama.cpp context over the model of `llm` (a `llama_cpp.Llama`)."""

    def __init__(self, llm, n_seq: int, n_ctx: int = 8192, threads: int = 1, n_batch: int = 512,
                 together: bool | None = None):
        import llama_cpp as L

        self.L, self.llm, self.n_seq, self.n_batch = L, llm, n_seq, n_batch
        params = L.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, n_batch, n_batch
        params.n_seq_max = n_seq
        params.kv_unified = True  # the branches share a long prefix: one buffer, shared cells
        params.swa_full = True  # a full sliding-window cache, so that a sequence can be rolled back
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        params.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as llama_cpp.Llama: the same logits as one-by-one
        self.threads = threads
        self.ctx = L.llama_init_from_model(llm.model, params)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not make a context of {n_ctx} tokens for {n_seq} sequences")
        self.mem = L.llama_get_memory(self.ctx)
        self.vocab = L.llama_model_get_vocab(llm.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.batch = L.llama_batch_init(n_batch, 0, n_seq)
        self.cached: list[list[int]] = [[] for _ in range(n_seq)]  # tokens in each sequence's cache
        self._piece = ctypes.create_string_buffer(256)
        self.together = together  # decode distinct nodes in one llama_decode (None: measured on first use)
        self.stats = {f"{kind}_{what}": 0 for kind in ("prompt", "generate") for what in ("calls", "tokens", "seconds")}

    def close(self) -> None:
        if self.ctx:
            self.L.llama_batch_free(self.batch)
            self.L.llama_free(self.ctx)
            self.ctx = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # --- the KV cache of each sequence ---

    def _decode(self, items: list[tuple[int, int, list[int], bool]]) -> None:
        """One llama_decode over (token, position, sequences, wants logits) items. A token that belongs
        to several sequences is computed once and its cache cell shared. `stats` counts the calls, the
        tokens and the seconds, apart for prompts (no logits wanted but the last) and generated nodes."""
        started = time.perf_counter()
        kind = "generate" if all(logits for *_, logits in items) else "prompt"
        b = self.batch
        b.n_tokens = len(items)
        for i, (token, pos, seqs, logits) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, len(seqs), logits
            for j, seq in enumerate(seqs):
                b.seq_id[i][j] = seq
        rc = self.L.llama_decode(self.ctx, b)
        self.stats[f"{kind}_calls"] += 1
        self.stats[f"{kind}_tokens"] += len(items)
        self.stats[f"{kind}_seconds"] += time.perf_counter() - started
        if rc != 0:
            why = (f"the {self.n_seq} sequences outgrew the context; give the batch decoder a larger n_ctx" if rc == 1
                   else "llama.cpp refused the batch (its positions do not continue what the memory holds)")
            raise (RuntimeError if rc == 1 else RefusedBatch)(f"llama_decode failed ({rc}): {why}")

    def _hold(self, seq: int, tokens: list[int]) -> int:
        """Make sequence `seq` hold exactly `tokens` in its cache: keep its own matching prefix or copy a
        longer one from another sequence (shared cells, no compute), evaluate the rest. Returns the
        number of tokens computed."""
        L = self.L
        keep, source = common_prefix(self.cached[seq], tokens), seq
        for other in range(self.n_seq):
            if other != seq:
                shared = common_prefix(self.cached[other], tokens)
                if shared > keep:
                    keep, source = shared, other
        if source != seq:
            L.llama_memory_seq_rm(self.mem, seq, 0, -1)
            L.llama_memory_seq_cp(self.mem, source, seq, 0, keep)
        elif not L.llama_memory_seq_rm(self.mem, seq, keep, -1):
            keep = 0  # llama.cpp could not cut the sequence there: it is dropped whole below
        if keep and L.llama_memory_seq_pos_max(self.mem, seq) != keep - 1:
            # The memory does not hold what the bookkeeping says (seen with Gemma 3's sliding-window cache
            # after many branched questions: the next decode was refused for inconsistent positions). Trust
            # the memory: drop the sequence and evaluate its tokens again (the same logits, only slower).
            keep = 0
        if not keep:
            L.llama_memory_seq_rm(self.mem, seq, 0, -1)
        rest = tokens[keep:]
        for start in range(0, len(rest), self.n_batch):
            chunk = rest[start:start + self.n_batch]
            self._decode([(t, keep + start + i, [seq], False) for i, t in enumerate(chunk)])
        self.cached[seq] = list(tokens)
        return len(rest)

    def next_logits(self, prompts: list[list[int]]) -> list[tuple[np.ndarray, int]]:
        """(the logits of the token after each prompt, prompt tokens computed): prompt i held in sequence i,
        sharing what it has in common with any sequence (the agent's conversation a judge prompt extends)."""
        if len(prompts) > self.n_seq:
            raise ValueError(f"{len(prompts)} prompts for a decoder of {self.n_seq} sequences")
        out = []
        for seq, tokens in enumerate(prompts):
            if not tokens:
                raise ValueError("a prompt is empty")
            evaluated = self._hold(seq, tokens[:-1]) + 1
            self._decode([(tokens[-1], len(tokens) - 1, [seq], True)])
            self.cached[seq].append(tokens[-1])
            logits = np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
            out.append((logits.copy(), evaluated))
        return out

    # --- sampling ---

    def _sampler(self, temperature: float, seed: int):
        L = self.L
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        if temperature <= 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
        else:
            for s in (L.llama_sampler_init_top_k(40), L.llama_sampler_init_top_p(0.95, 1),
                      L.llama_sampler_init_min_p(0.05, 1), L.llama_sampler_init_temp(temperature),
                      L.llama_sampler_init_dist(seed & 0xFFFFFFFF)):
                L.llama_sampler_chain_add(chain, s)
        return chain

    def _sample(self, chain, job: Job, generated: list[int], row: int = -1) -> int:
        """The next token of one sequence from row `row` of the last decode's logits (-1: the last)."""
        if job.processor is not None:  # the processor edits llama.cpp's logits in place
            logits = np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, row), shape=(self.n_vocab,))
            job.processor(np.asarray(job.tokens + generated, dtype=np.intc), logits)
        return self.L.llama_sampler_sample(chain, self.ctx, row)

    def _text(self, token: int) -> bytes:
        n = self.L.llama_token_to_piece(self.vocab, token, self._piece, len(self._piece), 0, False)
        return self._piece.raw[:max(n, 0)]

    # --- generation ---

    def generate(self, jobs: list[Job], *, stop: list[str] | None = None, max_tokens: int = 256) -> list[Output]:
        """`_generate`, done again on an emptied memory if llama.cpp refuses a batch (rc -1: the memory does not
        hold what the bookkeeping says; seen in branched runs, cause not found). The cache only saves work, and
        sampling is seeded per call, so the outputs are the same."""
        try:
            return self._generate(jobs, stop=stop, max_tokens=max_tokens)
        except RefusedBatch:
            self.L.llama_memory_clear(self.mem, True)
            self.cached = [[] for _ in range(self.n_seq)]
            return self._generate(jobs, stop=stop, max_tokens=max_tokens)

    def _generate(self, jobs: list[Job], *, stop: list[str] | None = None, max_tokens: int = 256) -> list[Output]:
        """Continue each job's prompt in its own sequence; each stops at an end-of-generation token, a
        stop string (cut off, as a server does) or `max_tokens`.

        Sequences whose tokens so far are identical (the same prompt, the same tokens sampled) are one
        node of a sampling tree: their next token is computed once, for all of them, and each samples
        from those logits with its own seed; they part where they sample different tokens. A confident
        model's branches share most of their tokens, so k branches cost far less than k trajectories."""
        if len(jobs) > self.n_seq:
            raise ValueError(f"{len(jobs)} jobs for a decoder of {self.n_seq} sequences")
        if any(not j.tokens for j in jobs):
            raise ValueError("a job has an empty prompt")
        stop = list(stop or [])
        if self.together is None and len(jobs) > 1:  # before any prompt is held: it uses scratch sequences
            self.together = self.decodes_together_faster()
        chains = [self._sampler(j.temperature, j.seed) for j in jobs]
        generated: list[list[int]] = [[] for _ in jobs]
        pieces = [bytearray() for _ in jobs]
        texts: list[str | None] = [None] * len(jobs)
        evaluated = [0] * len(jobs)
        pending: dict[int, int] = {}
        try:
            prompts: dict[tuple, list[int]] = {}
            for s, job in enumerate(jobs):
                prompts.setdefault(tuple(job.tokens), []).append(s)
            for tokens, group in prompts.items():  # each distinct prompt evaluated once
                for s in group:
                    evaluated[s] = self._hold(s, list(tokens[:-1]))
                evaluated[group[0]] += 1
                pending.update(self._step(group, tokens[-1], len(tokens) - 1, jobs, chains, generated))
            while pending:
                live: dict[tuple, list[int]] = {}
                for s, token in pending.items():
                    if self.L.llama_vocab_is_eog(self.vocab, token):
                        texts[s] = pieces[s].decode("utf-8", errors="ignore")
                        continue
                    generated[s].append(token)
                    pieces[s] += self._text(token)
                    text = pieces[s].decode("utf-8", errors="ignore")
                    cut = min((i for i in (text.find(x) for x in stop) if i != -1), default=-1)
                    if cut != -1:
                        texts[s] = text[:cut]
                    elif len(generated[s]) >= max_tokens:
                        texts[s] = text
                    else:
                        live.setdefault((tuple(jobs[s].tokens), tuple(generated[s])), []).append(s)
                pending = self._step_nodes(list(live.values()), jobs, chains, generated)
        finally:
            for chain in chains:
                self.L.llama_sampler_free(chain)
        return [Output(text=texts[s], completion_tokens=len(generated[s]), prompt_tokens=len(jobs[s].tokens),
                       evaluated_tokens=evaluated[s]) for s in range(len(jobs))]

    def _step(self, group: list[int], token: int, pos: int, jobs, chains, generated) -> dict[int, int]:
        """Evaluate `token` at `pos` once for every sequence of `group`; each samples its next token."""
        self._decode([(token, pos, group, True)])
        for s in group:
            self.cached[s].append(token)
        return {s: self._sample(chains[s], jobs[s], generated[s]) for s in group}

    def _step_nodes(self, groups: list[list[int]], jobs, chains, generated) -> dict[int, int]:
        """The next token of every live node of the sampling tree (a node: sequences whose tokens are so far
        the same), each node's last token evaluated once: all nodes in one llama_decode when `together`
        (each sequence samples from its node's row of logits), else one call per node."""
        nodes = [(generated[g[0]][-1], len(jobs[g[0]].tokens) + len(generated[g[0]]) - 1, g) for g in groups]
        if not self.together or len(nodes) <= 1:
            out = {}
            for token, pos, group in nodes:
                out.update(self._step(group, token, pos, jobs, chains, generated))
            return out
        self._decode([(token, pos, group, True) for token, pos, group in nodes])
        out = {}
        for row, (token, _, group) in enumerate(nodes):
            for s in group:
                self.cached[s].append(token)
                out[s] = self._sample(chains[s], jobs[s], generated[s], row)
        return out

    def decodes_together_faster(self, n: int = 3, tries: int = 3) -> bool:
        """Whether llama.cpp on this machine computes `n` distinct tokens (one per sequence, each with its
        logits) in one call in less time than in `n` one-token calls. Not a given on a CPU: the 262k-word
        output layer dominates, and whether its batched matmul reuses the weights it reads depends on the
        CPU and llama.cpp's kernels (1.2x one token for two, 2.4x for five, on one 2-core machine; 7.4x for
        five on another, where one node per call was the faster). Measured in a scratch context of its own
        (this decoder's memory is not touched): a few dozen milliseconds, once per decoder."""
        L, n = self.L, min(n, self.n_seq)
        if n < 2:
            return False
        params = L.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch, params.n_seq_max = 64, 16, 16, n
        params.kv_unified, params.no_perf = True, True
        params.n_threads = params.n_threads_batch = self.threads
        params.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        ctx = L.llama_init_from_model(self.llm.model, params)
        if not ctx:
            return False
        batch = L.llama_batch_init(16, 0, n)

        def decode(items) -> float:
            batch.n_tokens = len(items)
            for i, (token, pos, seq) in enumerate(items):
                batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, True
                batch.seq_id[i][0] = seq
            started = time.perf_counter()
            if L.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")
            return time.perf_counter() - started

        try:
            alone = together = float("inf")
            for t in range(tries):
                alone = min(alone, sum(decode([(1000 + s, 2 * t, s)]) for s in range(n)))
                together = min(together, decode([(1000 + s, 2 * t + 1, s) for s in range(n)]))
            return together < 0.8 * alone
        except RuntimeError:
            return False
        finally:
            L.llama_batch_free(batch)
            L.llama_free(ctx)
