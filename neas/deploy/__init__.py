"""Deployment: export front ensembles (one ONNX graph, ``model.pt``, manifest), load them back,
early-exit cascades, the final training stage.

``export`` writes ``RUN/ensembles/<id>/``; ``model_file`` owns the ``model.pt`` format and
``load_ensemble``; ``onnx_export`` exports, checks parity and times in ONNX Runtime;
``cascade`` sweeps early-exit thresholds; ``final`` trains a chosen ensemble as an ensemble,
its members apart; ``metrics`` scores it.
"""

from neas.deploy.export import export_run
from neas.deploy.model_file import DeployedEnsemble, InputSpec, load_ensemble
from neas.deploy.recascade import cascade_run

__all__ = ["DeployedEnsemble", "InputSpec", "cascade_run", "export_run", "load_ensemble"]
