"""How training several members side by side looks: a line per member's validation, then
the ensemble's summary."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from seq2seq_cli.training.members import MembersResult, MembersStarted, MemberValidated


class MembersView:
    def __init__(self, config_path: Path, quiet: bool = False,
                 console: Console | None = None):
        self.config_path, self.quiet = config_path, quiet
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)
        self.epochs: int | None = None

    def handle(self, event: object) -> None:
        if self.quiet:
            return
        if isinstance(event, MembersStarted):
            how = "resuming" if event.resumed else "training"
            self.console.print(
                f"{how} {event.members} members side by side in {event.run_dir} "
                f"({event.threads} thread{'s' if event.threads > 1 else ''} each, seeds "
                f"{', '.join(map(str, event.seeds))}); each member's output: "
                f"{event.run_dir}/member-N.log")
        elif isinstance(event, MemberValidated):
            m = event.metrics
            exact = "-" if m.get("exact_match") is None else f"{m['exact_match']:.3f}"
            self.console.print(
                f"member {event.member}/{event.members}  epoch {m['epoch']:>3}  loss "
                f"{m['loss']:.4f}  val_loss {m['val_loss']:.4f}  exact {exact}  "
                f"{m.get('seconds', 0):.1f}s")

    def summary(self, result: MembersResult) -> None:
        if self.quiet:
            return
        lines = []
        for i, (member, test) in enumerate(zip(result.member_dirs, result.member_tests), 1):
            score = "" if test is None else f": test exact match {test['exact_match']:.3f}"
            lines.append(f"member {i} {member}{score}")
        if result.test is not None:
            lines.append(f"ensemble test exact match: {result.test['exact_match']:.3f}, chrF "
                         f"{result.test['chrf']:.1f} ({result.test['n']:,} held-out pairs, "
                         "greedy)")
        lines.append(f"ensemble: {result.run_dir} (ensemble.json names the members)")
        lines.append(f'translate: seq2seq translate {result.run_dir} "some text"')
        self.console.print("\n".join(lines))

    def stopped(self, run_dir: Path) -> None:
        self.errors.print(f"stopped; every member saved its position. Resume with:\n"
                          f"  seq2seq train {self.config_path} --run-dir {run_dir} --resume")
