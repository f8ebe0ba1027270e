"""What each measure the report shows means, in one sentence each."""

from __future__ import annotations

from typing import Any

from neas.report.markup import _e

_K = "how many networks (members) the ensemble combines; it averages their softmax probabilities."
_SPLIT = (
    "how many leading layers the members share (computed once for all of them); split = number "
    "of layers means all layers shared, only the heads differ."
)
_MACS = (
    "multiply-accumulate operations to classify one input with the whole ensemble (shared "
    "layers counted once); the search keeps every ensemble within the budget."
)
_ACC = (
    "share of the validation split classified correctly; the search maximises it. <b>test "
    "accuracy</b>: the same on the test split, which no choice in the run looked at."
)
_FINAL = (
    "the val and test accuracy of an ensemble trained again as an ensemble after the search "
    "(each member on its own batches, the shared trunk's gradient divided by K); – where it was "
    "exported with the supernet's weights. <code>load_run(...).best()</code> picks among the "
    "trained ones by the first of the two."
)
_NLL = (
    "mean negative log-likelihood of the true class under the averaged probabilities (lower is "
    "better); the search uses it only as a tie-break between equal validation accuracies."
)
_DISAGREE = (
    "fraction of validation images on which members' predicted classes differ (mean over member "
    "pairs) — 0 means the members are copies, and averaging them gains nothing."
)
_HYPERVOLUME = (
    "how much of the objective space the front dominates, with validation error, MACs / budget "
    "and predicted latency / slowest possible latency each scaled to [0, 1] and (1, 1, 1) as "
    "reference point. Higher is better; it grows when a generation finds ensembles that are more "
    "accurate, cheaper or faster than the front so far, and stays flat when it finds none."
)
_CASCADE = (
    "members run in order and stop once the running average's top probability exceeds t; "
    "t = 0 runs only the first member, t = 1 runs every member."
)
_WEIGHTS = {
    "entangled": "entangled (one weight set per layer; every op uses a slice of it)",
    "separate": "separate (one weight set per layer and op)",
    "members": "members (shared trunk weights; each member has its own weights after the split)",
}


def _predicted_latency_note(device: str | None, batch: Any) -> str:
    where = f" ({_e(device)})" if device else ""
    at = f" at batch {_e(batch)}" if batch is not None else ""
    return (
        f"PyTorch latency{at} <i>predicted</i> by the search from a per-(layer, op) lookup table "
        f"timed on the search device{where} and calibrated on whole ensembles "
        "(<code>latency_table.json</code>); it ranks ensembles against each other, it is not a "
        "measurement of the exported model."
    )


_ORT_NOTE = (
    "median time of one batch-1 call of the exported <code>model.onnx</code> in ONNX Runtime, "
    "<i>measured</i> on the machine that exported it (see each ensemble below)."
)
