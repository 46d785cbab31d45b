"""Experiment tracking (sft.report_to): a run's training curves and eval scores in one tracked run, offline by default.

    tunebot run examples/acme-demo.yaml --set sft.report_to=mlflow && mlflow ui --backend-store-uri runs/mlruns

- tensorboard: events in RUN_DIR/sft/tensorboard (tensorboardX writes them; `tensorboard --logdir`);
- mlflow: a local file store, RUNS_DIR/mlruns (experiment "tunebot", one MLflow run a tunebot run),
  unless `sft.tracking_uri` or $MLFLOW_TRACKING_URI names another: a server is used only when
  the user configures one;
- trackio: its local SQLite store in RUNS_DIR/trackio, or $TRACKIO_DIR (project "tunebot", `trackio
  show`), never a Hugging Face Space (tunebot passes no space id and turns the post-training Space
  freeze off). trackio fixes its folder when first imported, so a process that imported it before
  training keeps that folder; sft/DONE records the one used.
HF Trainer's own callbacks log the training (loss, learning rate, eval loss); the eval stage then
logs every system's scores and the recommendation into the same tracked run. What was used is
kept in sft/DONE ("tracking"), so eval finds the run later. Changing the tracker does not retrain
(it is not part of the sft fingerprint).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from tunebot.errors import TunebotError

PACKAGES = {"tensorboard": "tensorboardX", "mlflow": "mlflow",
            "trackio": "trackio"}  # sft.report_to -> the package it needs
EXPERIMENT = "tunebot"


def start_tracking(kind: str, name: str, run_root: Path, runs_dir: Path, uri: str | None) -> dict[str, Any]:
    """Prepares the tracker HF Trainer will report to (environment, run); returns what eval needs to log there."""
    if kind == "none":
        return {}
    if importlib.util.find_spec(PACKAGES[kind]) is None:
        raise TunebotError(f"sft.report_to: {kind} needs the {PACKAGES[kind]} package: pip install 'tunebot[tracking]'")
    if kind == "tensorboard":
        folder = Path(uri) if uri else run_root / "sft" / "tensorboard"
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(folder)
        return {"kind": kind, "dir": str(folder)}
    if kind == "trackio":
        if "trackio" not in sys.modules:  # trackio reads TRACKIO_DIR once, when first imported (TRL imports it too)
            os.environ.setdefault("TRACKIO_DIR", str((Path(uri) if uri else runs_dir / "trackio").resolve()))
        import trackio.utils

        return {"kind": kind, "dir": str(trackio.utils.TRACKIO_DIR), "project": EXPERIMENT, "run": name}
    import mlflow

    target = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"file:{(runs_dir / 'mlruns').resolve()}"
    client = _mlflow_client(target)
    mlflow.set_tracking_uri(target)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    run = client.create_run(experiment_id, run_name=name, tags={"tunebot.run_dir": str(run_root)})
    os.environ.update(MLFLOW_TRACKING_URI=target, MLFLOW_EXPERIMENT_NAME=EXPERIMENT, MLFLOW_RUN_ID=run.info.run_id)
    return {"kind": kind, "uri": target, "run_id": run.info.run_id}


def log_scores(tracking: dict[str, Any], scores: dict[str, Any]) -> None:
    """Logs eval's scores (every system's metric means) and the recommendation into the tracked run."""
    if not tracking:
        return
    if importlib.util.find_spec(PACKAGES[tracking["kind"]]) is None:  # uninstalled since training: scores stay in eval/
        print(f"eval: {tracking['kind']} is no longer installed; scores not sent to the tracked run")
        return
    values = {f"eval/{system}/{metric}": entry["mean"] for system, body in scores.get("systems", {}).items()
              for metric, entry in body["metrics"].items()}
    recommended = (scores.get("recommendation") or {}).get("system", "")
    if tracking["kind"] == "tensorboard":
        from tensorboardX import SummaryWriter

        with SummaryWriter(tracking["dir"]) as writer:
            for key, value in values.items():
                writer.add_scalar(key, value, 0)
            writer.add_text("eval/recommendation", recommended, 0)
        return
    if tracking["kind"] == "trackio":
        if "trackio" not in sys.modules:
            os.environ.setdefault("TRACKIO_DIR", tracking["dir"])
        import trackio

        trackio.init(project=tracking["project"], name=tracking["run"], resume="must")
        trackio.log(values | {"eval/recommended_answer_match": _right(scores, recommended)})
        trackio.finish()
        return
    client = _mlflow_client(tracking["uri"])
    for key, value in values.items():
        client.log_metric(tracking["run_id"], key.replace("/", "."), value)
    client.set_tag(tracking["run_id"], "recommended", recommended)
    client.log_metric(tracking["run_id"], "recommended.answer_match", _right(scores, recommended))
    client.set_terminated(tracking["run_id"])


def _right(scores: dict[str, Any], system: str) -> float:
    """The system's answer_match mean (0 when it has none)."""
    entry = ((scores.get("systems") or {}).get(system) or {}).get("metrics", {}).get("answer_match")
    return entry["mean"] if entry else 0.0


def _mlflow_client(uri: str) -> Any:
    """An MLflow client for `uri`; a file: store is allowed (a local folder, no database or server)."""
    import mlflow

    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return mlflow.MlflowClient(uri)
