from __future__ import annotations

import subprocess
import sys
import time

from typer.testing import CliRunner

from seq2seq_cli import __version__
from seq2seq_cli.cli import app

runner = CliRunner()
COMMANDS = ("train", "translate", "evaluate", "inspect-params", "inspect-data")


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_each_command_documents_its_arguments():
    for command in COMMANDS:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_help_does_not_import_torch():
    code = ("import sys; from seq2seq_cli.cli import app; from typer.testing import CliRunner;"
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0;"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_python_dash_m_runs_the_cli():
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "seq2seq_cli", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert "inspect-params" in result.stdout
    assert time.perf_counter() - started < 30  # a sanity bound, not a benchmark


def test_unknown_command_is_a_usage_error():
    result = runner.invoke(app, ["trian"])
    assert result.exit_code == 2


def test_out_of_memory_is_a_clear_error_and_other_failures_are_not_hidden(monkeypatch,
                                                                          tiny_config):
    import seq2seq_cli.training.loop

    def fail_with(exc):
        def train_from_config(*args, **kwargs):
            raise exc
        monkeypatch.setattr(seq2seq_cli.training.loop, "train_from_config", train_from_config)

    for exc in (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to "
                             "allocate 9999999999 bytes"), MemoryError()):
        fail_with(exc)
        result = runner.invoke(app, ["train", str(tiny_config)])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: out of memory") and "batch_size" in result.stderr
    fail_with(RuntimeError("a bug"))
    result = runner.invoke(app, ["train", str(tiny_config)])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)
