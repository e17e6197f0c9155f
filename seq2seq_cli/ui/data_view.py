"""How ``seq2seq inspect-data`` looks: a table for people, JSON for scripts."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from seq2seq_cli.ui.json_output import print_json
from seq2seq_cli.ui.loading_view import home_as_tilde


def render_data_report(report: dict[str, Any], output_format: str,
                       console: Console | None = None) -> None:
    if output_format == "json":
        print_json(report)
        return
    console = console or Console()
    console.print(_summary_table(report))
    console.print(_tensor_table(report))


def _summary_table(r: dict[str, Any]) -> Table:
    table = Table(title=f"corpus {r['path']}", show_header=False, title_justify="left")
    table.add_column("what", no_wrap=True)
    table.add_column("value", overflow="fold")  # vocabularies are shown whole, never cut
    dropped = r["dropped"]
    splits = r["splits"]
    table.add_row("pairs read / kept", f"{r['pairs_read']:,} / {r['pairs_kept']:,}")
    table.add_row("dropped", f"source too long {dropped['source_too_long']:,}, target too long "
                  f"{dropped['target_too_long']:,}, malformed skipped {dropped['malformed']:,}, "
                  f"blank lines {dropped['blank_lines']:,}")
    load = r["load"]
    processes = f" by {load['processes']} processes" if load["processes"] > 1 else ""
    table.add_row("loaded in", f"{load['seconds']:.2f} s{processes}, "
                  f"{load['pairs_per_second']:,} pairs/s; cache {load['cache']}")
    if load["cache_path"]:
        table.add_row("corpus store", home_as_tilde(load["cache_path"]))
    precision = r["precision"]
    table.add_row(f"precision on the {precision['device'].upper()}",
                  f"{precision['running'] or 'refused'}"
                  + (f" ({precision['requested']} asked: {precision['reason']})"
                     if precision["reason"] else ""))
    table.add_row("split train / val / test",
                  f"{splits['train']:,} / {splits['val']:,} / {splits['test']:,}")
    for split, path in r["split_files"].items():
        if path is not None:
            table.add_row(f"{split} pairs from", path)
    seen = r["seen_in_train"]
    table.add_row("held out, also in train", ", ".join(
        f"{split}: {seen[split]['pairs']:,} pairs, {seen[split]['sources']:,} sources"
        for split in ("val", "test") if splits[split]) or "nothing held out")
    for side in ("source", "target"):
        vocab, lengths = r["vocabulary"][side], r["lengths"][side]
        units = vocab.get("units", "characters")
        listed = (repr(vocab["characters"]) if units == "characters"
                  else " ".join(vocab[units]))  # symbols, one space between
        table.add_row(f"{side} vocabulary", f"{vocab['size']} symbols ({vocab['features']} "
                      f"one-hot features): {listed}")
        table.add_row(f"{side} length", f"max {lengths['max']}, mean {lengths['mean']}"
                      + ("" if units == "characters" else f" ({units})"))
    return table


def _tensor_table(r: dict[str, Any]) -> Table:
    table = Table("tensor", "shape (samples, timesteps, features)", "float32 bytes",
                  title="full one-hot tensors (Keras recipe) vs what training holds",
                  title_justify="left")
    for name, tensor in r["tensors"].items():
        table.add_row(name, str(tuple(tensor["shape"])), _size(tensor["bytes"]))
    memory = r["in_memory_bytes"]
    table.add_row("[bold]full tensors total", "", f"[bold]{_size(r['full_tensor_bytes'])}")
    table.add_row("index arrays (training)", "", _size(memory["index_arrays"]))
    table.add_row("largest one-hot batch", "", _size(memory["largest_batch"]))
    table.add_row("[bold]training holds", "", f"[bold]{_size(memory['total'])} "
                  f"({r['memory_ratio']:,.0f}× smaller)")
    return table


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    return f"{count:,.1f} GB"
