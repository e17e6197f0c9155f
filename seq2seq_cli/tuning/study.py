"""The Optuna study behind ``seq2seq tune``: where it is stored, how trials are drawn and
how the hopeless ones are stopped.

Storage: a SQLite file in the tune directory unless ``--storage`` names another (any URL
Optuna takes: ``postgresql://...`` lets workers on several machines share one study).
The tune directory's ``tune.json`` remembers the storage (without its password) and the
study name, so ``seq2seq tune report TUNE_DIR`` finds them.

The pruners' steps are milliseconds of training time, not epochs: trials of different
sizes and batches then meet at the same point of the budget, which is what a wall-clock
search spends.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from seq2seq_cli.atomic import atomic_write
from seq2seq_cli.errors import UserError

INSTALL_HINT = "pip install 'seq2seq-cli[tune]'"
STUDY_FILE = "study.db"
DESCRIPTION_FILE = "tune.json"
SAMPLERS = ("tpe", "random")
PRUNERS = ("halving", "hyperband", "median", "none")
REDUCTION_FACTOR = 3  # successive halving keeps the best third at every rung
HEARTBEAT_SECONDS = 30  # a worker that died mid-trial: its trial is failed after 2 beats
SQLITE_WAIT_SECONDS = 60  # workers sharing a SQLite file wait for its lock this long


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise UserError(f"seq2seq tune needs Optuna: {INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the view reports every trial
    # Heartbeats and stale-trial checks are marked experimental, and Optuna warns that it
    # records heartbeats itself only in Study.optimize: the trials here record their own.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
    return optuna


def default_storage(tune_dir: Path) -> str:
    return f"sqlite:///{(tune_dir / STUDY_FILE).resolve()}"


def open_study(storage_url: str, name: str, direction: str, sampler: str, pruner: str, *,
               seed: int, min_seconds: float, max_seconds: float) -> Any:
    """Create the study, or load it to continue; ``direction`` must match a loaded one."""
    optuna = import_optuna()
    storage = _storage(optuna, storage_url)
    try:
        study = optuna.create_study(
            storage=storage, study_name=name, direction=direction, load_if_exists=True,
            sampler=_sampler(optuna, sampler, seed),
            pruner=_pruner(optuna, pruner, min_seconds, max_seconds))
    except ValueError as exc:  # e.g. a loaded study optimises the other way
        raise UserError(f"study {name!r} in {hide_password(storage_url)}: {exc}") from None
    optuna.storages.fail_stale_trials(study)  # trials of a worker that died
    return study


def load_study(storage_url: str, name: str) -> Any:
    optuna = import_optuna()
    try:
        return optuna.load_study(study_name=name, storage=_storage(optuna, storage_url))
    except KeyError:
        raise UserError(f"no study {name!r} in {hide_password(storage_url)}") from None


def _storage(optuna: Any, url: str) -> Any:
    sqlite = url.startswith("sqlite")
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=HEARTBEAT_SECONDS,
            engine_kwargs={"connect_args": {"timeout": SQLITE_WAIT_SECONDS}} if sqlite else {})
    except ImportError as exc:  # the database's driver
        raise UserError(f"--storage {hide_password(url)}: {exc} (for PostgreSQL: pip "
                        "install psycopg2-binary)") from None
    except Exception as exc:  # SQLAlchemy's errors: a bad URL, a server that is not there
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"--storage {hide_password(url)}: cannot open it ({first})") from None


def _sampler(optuna: Any, name: str, seed: int) -> Any:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: trials running side by side are not all drawn at the same point.
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)


def _pruner(optuna: Any, name: str, min_seconds: float, max_seconds: float) -> Any:
    low, high = max(1, round(min_seconds * 1000)), max(2, round(max_seconds * 1000))
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=low,
                                                      reduction_factor=REDUCTION_FACTOR)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=low, max_resource=high,
                                              reduction_factor=REDUCTION_FACTOR)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=low)
    return optuna.pruners.NopPruner()


def hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: nothing to hide in a message
        return url


def write_description(tune_dir: Path, storage_url: str, name: str, config: Path) -> None:
    """``tune.json``: where the study is, for ``seq2seq tune report``."""
    text = json.dumps({"storage": hide_password(storage_url), "study": name,
                       "config": os.path.relpath(config.resolve(), tune_dir.resolve())},
                      indent=1) + "\n"
    atomic_write(tune_dir / DESCRIPTION_FILE, lambda handle: handle.write(text.encode()))


def read_description(tune_dir: Path) -> dict[str, Any]:
    path = tune_dir / DESCRIPTION_FILE
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{tune_dir}: not a tune directory (no {DESCRIPTION_FILE})") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read it ({exc})") from None
    return description
