"""translate: stream source lines through a trained model in chunks; no printing here.

Lines are read lazily and translated ``batch_size`` at a time, so memory stays bounded
however large the input is; each chunk's translations are yielded as soon as they are
ready, in input order. What is unusual about the input (characters, or symbols, never
seen in training, sources longer than any training source) is collected in ``InputNotes`` and
reported once, by the caller, as ``input_warnings``.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from seq2seq_cli.checkpoint import TrainedModel
from seq2seq_cli.data import units
from seq2seq_cli.data.vocabulary import UNK
from seq2seq_cli.errors import DataError, UserError
from seq2seq_cli.inference.search import Search
from seq2seq_cli.inference.translator import Translation, Translator

UTF8_BOM = b"\xef\xbb\xbf"
MAX_LISTED_CHARACTERS = 40  # a warning stays one readable line even for a foreign script


@dataclass(frozen=True)
class TranslateSettings:
    beam_size: int = 1
    n_best: int = 1
    length_penalty: float = 1.0
    batch_size: int = 256
    max_length: int | None = None  # None: default_max_length of the checkpoint
    with_attention: bool = False  # fill Hypothesis.attention (models with attention only)

    def check(self) -> None:
        """The library's rules for a search, in the words of the command's options."""
        Search(self.max_length or 1, self.beam_size, self.n_best,
               self.length_penalty).check(lambda name: "--" + name.replace("_", "-"))
        if self.max_length is not None and self.max_length < 1:
            raise UserError(f"--max-length {self.max_length}: must be at least 1")
        if self.batch_size < 1:
            raise UserError(f"--batch-size {self.batch_size}: must be at least 1")

    def check_model(self, translator: Translator) -> None:
        """Refuse weights a model cannot give, as soon as it is loaded, before any input."""
        if self.with_attention and not translator.has_attention:
            raise UserError(f"{translator.path}: {translator.no_attention_reason()}, so there "
                            "are no weights for --attention-plot or --with-attention; train "
                            "with model.attention set to dot, general or additive")


@dataclass
class InputNotes:
    """What translation noticed about its inputs, to be reported once at the end."""

    unknown_characters: set[str] = field(default_factory=set)  # units: characters or symbols
    long_inputs: int = 0
    longest_input: int = 0  # in units
    source_units: str = units.CHARACTERS  # what the model's sources are made of

    def note(self, translation: Translation, max_source_length: int) -> None:
        self.unknown_characters |= translation.unknown_characters
        self.source_units = translation.source_units
        length = units.length(translation.normalised, translation.source_units)
        # A checkpoint without recorded lengths (0) cannot say what is long.
        if 0 < max_source_length < length:
            self.long_inputs += 1
            self.longest_input = max(self.longest_input, length)


def load_model(target: str | Path, device: str) -> Translator:
    """The checkpoint of a run directory or file, on the device named (auto, cpu, cuda)."""
    return Translator.load(target, device)


def translate_stream(model: Translator | TrainedModel, lines: Iterable[str],
                     settings: TranslateSettings,
                     notes: InputNotes) -> Iterator[list[Translation]]:
    """Translations of ``lines`` (raw; the Translator normalises them), chunk by chunk."""
    translator = model if isinstance(model, Translator) else Translator(model)
    settings.check()
    settings.check_model(translator)
    lines = iter(lines)
    while chunk := list(itertools.islice(lines, settings.batch_size)):
        found = translator.translate(chunk, beam_size=settings.beam_size,
                                     n_best=settings.n_best,
                                     length_penalty=settings.length_penalty,
                                     max_length=settings.max_length,
                                     batch_size=settings.batch_size,
                                     with_attention=settings.with_attention)
        for translation in found:
            notes.note(translation, translator.max_source_length)
        yield found


def input_warnings(notes: InputNotes, max_source_length: int) -> list[str]:
    """At most one line about unseen units (characters or symbols) and one about long
    inputs."""
    warnings = []
    unit = units.SINGULAR[notes.source_units]  # character, symbol
    if notes.unknown_characters:
        chars = sorted(notes.unknown_characters)
        listed = " ".join(repr(ch) for ch in chars[:MAX_LISTED_CHARACTERS])
        more = f" and {len(chars) - MAX_LISTED_CHARACTERS} more" \
            if len(chars) > MAX_LISTED_CHARACTERS else ""
        warnings.append(f"{len(chars)} {unit}(s) never seen in training were read as "
                        f"{UNK}: {listed}{more}")
    if notes.long_inputs:
        warnings.append(f"{notes.long_inputs} input(s) longer than any training source "
                        f"({max_source_length} {unit}s; longest input "
                        f"{notes.longest_input}); their translations may be poor")
    return warnings


def read_lines(stream: BinaryIO, name: str) -> Iterator[str]:
    """Lines of a UTF-8 byte stream without their line endings, read lazily."""
    for number, raw in enumerate(stream, start=1):
        if number == 1:
            raw = raw.removeprefix(UTF8_BOM)  # a byte-order mark is not text
        raw = raw.removesuffix(b"\n").removesuffix(b"\r")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}:{number}: invalid UTF-8 at byte {exc.start}") from None


def open_source_file(path: Path) -> Iterator[str]:
    """Open ``path`` now (so a missing file fails early); its lines are read lazily."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a text file with one source "
                        "per line")
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: input file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    return _closing_lines(handle, str(path))


def _closing_lines(handle: BinaryIO, name: str) -> Iterator[str]:
    with handle:
        yield from read_lines(handle, name)


def source_lines(texts: list[str], input_option: str | None, output: Path | None,
                 only_one: bool = False) -> Iterator[str]:
    """Sources from the arguments, ``--input FILE`` or ``--input -`` (stdin); with neither,
    from stdin when something is piped in (``cat FILE | seq2seq translate RUN``).

    ``only_one`` (for --attention-plot) reads the sources now, so that more than one, or an
    empty one, is refused before the model loads.
    """
    lines = _source_lines(texts, input_option, output)
    return _the_only_source(lines) if only_one else lines


def _source_lines(texts: list[str], input_option: str | None,
                  output: Path | None) -> Iterator[str]:
    if texts and input_option is not None:
        raise UserError("give source texts as arguments or with --input, not both")
    if input_option is None:
        if texts:
            return iter(texts)
        if sys.stdin.isatty():
            raise UserError(_NOTHING_TO_TRANSLATE)
        return _at_least_one(read_lines(sys.stdin.buffer, "<stdin>"))
    if input_option == "-":
        return read_lines(sys.stdin.buffer, "<stdin>")
    path = Path(input_option)
    # Writing would truncate the file while it is still being read.
    if output is not None and output.exists() and path.exists() and output.samefile(path):
        raise UserError(f"--output {output} is the --input file; choose another file")
    return open_source_file(path)


_NOTHING_TO_TRANSLATE = ("nothing to translate: give source texts as arguments, or "
                         "--input FILE (--input - reads stdin)")


def _at_least_one(lines: Iterator[str]) -> Iterator[str]:
    """Piped lines; an empty pipe most likely means forgotten arguments, so say so."""
    empty = True
    for line in lines:
        empty = False
        yield line
    if empty:
        raise UserError(_NOTHING_TO_TRANSLATE)


def _the_only_source(lines: Iterator[str]) -> Iterator[str]:
    first_two = list(itertools.islice(lines, 2))
    if len(first_two) != 1:
        raise UserError(f"--attention-plot draws one source text, got "
                        f"{'more than one' if first_two else 'none'}; translate the others "
                        "without --attention-plot")
    if not first_two[0]:
        raise UserError("--attention-plot: the source text is empty, there is nothing to draw")
    return iter(first_two)
