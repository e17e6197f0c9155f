from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from seq2seq_cli.cli import app
from seq2seq_cli.config import DataConfig
from seq2seq_cli.data.batching import IGNORE_INDEX, MIXED_PIECES, epoch_batches, make_batch
from seq2seq_cli.data.corpus import load_corpus, split_pairs
from seq2seq_cli.data.encoded import EncodedPairs, one_hot_tensor
from seq2seq_cli.data.reading import DataError, read_pairs
from seq2seq_cli.data.vocabulary import (
    BOS,
    EOS,
    PAD,
    UNK,
    Vocabularies,
    Vocabulary,
    build_vocabularies,
)

from .conftest import FRA_ENG, TOY_PAIRS, write_config, write_tsv

runner = CliRunner()


def _vocabs(pairs=TOY_PAIRS) -> Vocabularies:
    return build_vocabularies(pairs)


# ---------------------------------------------------------------- reading


def test_three_column_file_reads_like_two_columns(tmp_path):
    two = write_tsv(tmp_path / "two.tsv", TOY_PAIRS)
    three = tmp_path / "three.tsv"
    three.write_text("".join(f"{s}\t{t}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}\n"
                             for i, (s, t) in enumerate(TOY_PAIRS)), encoding="utf-8")
    assert read_pairs(three).pairs == read_pairs(two).pairs == TOY_PAIRS


def test_num_samples_takes_the_first_pairs(tmp_path):
    path = write_tsv(tmp_path / "c.tsv", TOY_PAIRS)
    assert read_pairs(path, limit=3).pairs == TOY_PAIRS[:3]


def test_crlf_bom_and_blank_lines_are_tolerated(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes(b"\xef\xbb\xbfa\tb\r\n\r\nc\td\r\n")
    result = read_pairs(path)
    assert result.pairs == [("a", "b"), ("c", "d")] and result.blank_lines >= 1


BAD_CORPORA = [
    ("no tab", b"a\tb\nno tab here\n", "line 2" , "no tab"),
    ("empty source", b"a\tb\n\tx\n", "line 2", "empty source"),
    ("empty target", b"a\tb\nc\td\ne\t \n", "line 3", "empty target"),
    ("invalid utf-8", b"a\tb\n\xff\xfe\tc\n", "line 2", "invalid UTF-8 at byte 0: the corpus "
     "must be UTF-8"),
    ("too many columns", b"a\tb\tc\td\n", "line 1", "columns"),
]


@pytest.mark.parametrize("content,where,what", [c[1:] for c in BAD_CORPORA],
                         ids=[c[0] for c in BAD_CORPORA])
def test_malformed_line_fails_with_its_line_number(tmp_path, content, where, what):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_pairs(path)
    message = str(info.value)
    assert f"{path}:{where.split()[1]}:" in message and what in message


@pytest.mark.parametrize("content,where,what", [c[1:] for c in BAD_CORPORA],
                         ids=[c[0] for c in BAD_CORPORA])
def test_malformed_line_exits_2_through_the_cli(tmp_path, content, where, what):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content + b"x\ty\n")
    config = write_config(tmp_path / "c.yaml", {"data": {"path": str(path)}})
    result = runner.invoke(app, ["inspect-data", str(config)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and f":{where.split()[1]}:" in result.stderr
    assert "Traceback" not in result.output


def test_malformed_lines_can_be_skipped_and_counted(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"a\tb\nno tab\n\xff\tc\nd\te\n")
    result = read_pairs(path, skip_malformed=True)
    assert result.pairs == [("a", "b"), ("d", "e")] and result.malformed_skipped == 2


@pytest.mark.parametrize("setup,fragment", [
    (lambda p: None, "not found"),
    (lambda p: p.mkdir(), "directory"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"\n\n  \n"), "empty"),
])
def test_unusable_files(tmp_path, setup, fragment):
    path = tmp_path / "corpus.tsv"
    setup(path)
    with pytest.raises(DataError, match=fragment):
        read_pairs(path)


def test_a_leading_tilde_is_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_tsv(tmp_path / "c.tsv", TOY_PAIRS)
    assert read_pairs("~/c.tsv").pairs == TOY_PAIRS


def test_file_with_no_usable_pair(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes(b"no tab\n")
    with pytest.raises(DataError, match="no usable"):
        read_pairs(path, skip_malformed=True)


# ---------------------------------------------------------------- normalising and splitting


def test_normalisation_lowercase_and_length_filters(tmp_path):
    decomposed = "Cafe\u0301"
    path = write_tsv(tmp_path / "c.tsv", [(decomposed, "x"), ("a" * 30, "y"), ("b", "z" * 30)])
    config = DataConfig(path=str(path), lowercase=True, max_source_length=20,
                        max_target_length=20, val_fraction=0.0)
    corpus = load_corpus(config)
    assert corpus.train_texts() == [("caf\u00e9", "x")]
    assert corpus.stats.dropped_source_too_long == 1
    assert corpus.stats.dropped_target_too_long == 1
    assert corpus.stats.pairs_kept == 1


def test_held_out_files_replace_the_fractions_and_are_used_whole(tmp_path):
    corpus_path = write_tsv(tmp_path / "train.tsv", TOY_PAIRS)
    val_path = write_tsv(tmp_path / "val.tsv", [("Cafe\u0301", "x"), ("a" * 40, "long")])
    test_path = write_tsv(tmp_path / "test.tsv", [("one", "1")])
    config = DataConfig(path=str(corpus_path), val_path=str(val_path),
                        test_path=str(test_path), val_fraction=0.5, test_fraction=0.3,
                        max_source_length=20)
    corpus = load_corpus(config)
    assert sorted(corpus.train_texts()) == sorted(TOY_PAIRS)  # the fractions are not taken
    # Normalised like training pairs, never length-filtered: a held-out file counts whole.
    assert corpus.val == [("Caf\u00e9", "x"), ("a" * 40, "long")]
    assert corpus.test == [("one", "1")]


def test_held_out_file_replaces_only_its_own_fraction(tmp_path):
    corpus_path = write_tsv(tmp_path / "train.tsv", TOY_PAIRS)
    test_path = write_tsv(tmp_path / "test.tsv", [("zero", "0")])
    corpus = load_corpus(DataConfig(path=str(corpus_path), test_path=str(test_path),
                                    val_fraction=0.25))
    assert len(corpus.val) == 5 and corpus.train_size == 15
    assert corpus.test == [("zero", "0")]


@pytest.mark.parametrize("key", ["val_path", "test_path"])
def test_missing_held_out_file_exits_2_naming_its_key(tmp_path, toy_corpus, key):
    config = write_config(tmp_path / "c.yaml", {"data": {"path": str(toy_corpus),
                                                         key: str(tmp_path / "nope.tsv")}})
    result = runner.invoke(app, ["inspect-data", str(config)])
    assert result.exit_code == 2
    assert "nope.tsv" in result.output and f"data.{key}" in result.output
    assert "Traceback" not in result.output


def test_split_is_deterministic_and_disjoint():
    pairs = [(f"s{i}", f"t{i}") for i in range(1000)]
    first = split_pairs(pairs, 0.1, 0.2, seed=7)
    again = split_pairs(pairs, 0.1, 0.2, seed=7)
    other = split_pairs(pairs, 0.1, 0.2, seed=8)
    assert first == again and first != other
    train, val, test = (set(part) for part in first)
    assert len(val) == 100 and len(test) == 200 and len(train) == 700
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(pairs)


# ---------------------------------------------------------------- vocabulary


def test_reserved_symbols_never_collide_with_corpus_characters():
    texts = ["<pad>", "a\tb\n", " ", "<unk>"]
    vocab = Vocabulary.build(texts)
    assert vocab.tokens[:4] == (PAD, BOS, EOS, UNK)
    # Every corpus character, tab, newline and space included, gets its own index.
    for ch in "<pad>\t\n un":
        assert vocab.encode(ch) != [vocab.tokens.index(PAD)]
        assert vocab.tokens[vocab.encode(ch)[0]] == ch
    assert vocab.encode("Z") == [3]


def test_vocabulary_json_round_trips(tmp_path):
    vocabs = _vocabs([("héllo wörld", "日本語 ok"), ("tab\there", "x")])
    path = tmp_path / "vocab.json"
    vocabs.save(path)
    loaded = Vocabularies.load(path)
    assert loaded == vocabs
    assert loaded.source.encode("wörld") == vocabs.source.encode("wörld")
    assert json.loads(path.read_text(encoding="utf-8"))["target"][:4] == [PAD, BOS, EOS, UNK]


def test_vocabulary_comes_from_the_training_split_only(tmp_path):
    path = write_tsv(tmp_path / "c.tsv", [(f"a{i}", "b") for i in range(50)] + [("Q", "R")])
    corpus = load_corpus(DataConfig(path=str(path), val_fraction=0.2, split_seed=3))
    vocabs = corpus.vocabularies()
    held_out_chars = {ch for s, _ in corpus.val for ch in s}
    train_chars = {ch for s, _ in corpus.train_texts() for ch in s}
    assert set(vocabs.source.characters) == train_chars
    assert held_out_chars - train_chars == set(vocabs.source.unknown_characters(
        "".join(s for s, _ in corpus.val)))


# ---------------------------------------------------------------- tensors and batches


def test_full_tensor_has_one_hot_rows_and_zero_padding():
    vocabs = _vocabs()
    texts = [s for s, _ in TOY_PAIRS]
    tensor = one_hot_tensor(texts, vocabs.source)
    assert tensor.shape == (len(texts), max(map(len, texts)), vocabs.source.num_features)
    assert tensor.dtype == np.float32
    row_sums = tensor.sum(axis=2)  # (N, T)
    for i, text in enumerate(texts):
        assert (row_sums[i, :len(text)] == 1.0).all()
        assert (row_sums[i, len(text):] == 0.0).all()
        decoded = [vocabs.source.tokens[int(col) + 1] for col in tensor[i, :len(text)].argmax(1)]
        assert "".join(decoded) == text


def test_one_hot_batch_equals_rows_of_the_full_tensor():
    vocabs = _vocabs()
    pairs = EncodedPairs.from_pairs(TOY_PAIRS, vocabs)
    rows = np.array([3, 0, 17, 9])
    source_steps = max(len(s) for s, _ in TOY_PAIRS)
    target_steps = max(len(t) for _, t in TOY_PAIRS)
    batch = make_batch(pairs, rows, vocabs.source.num_features, vocabs.target.num_features,
                       source_steps, target_steps)
    sources = [s for s, _ in TOY_PAIRS]
    targets = [t for _, t in TOY_PAIRS]
    full_source = one_hot_tensor(sources, vocabs.source)
    full_decoder_in = one_hot_tensor(targets, vocabs.target, add_bos=True)
    full_decoder_out = one_hot_tensor(targets, vocabs.target, add_eos=True)
    np.testing.assert_array_equal(batch.encoder_input, full_source[rows])
    np.testing.assert_array_equal(batch.decoder_input, full_decoder_in[rows])
    # Targets are class indices; PAD positions are ignored, the rest match the one-hot argmax.
    expected = full_decoder_out[rows]  # (B, T + 1, F)
    real = expected.sum(axis=2) == 1
    np.testing.assert_array_equal(batch.decoder_target[real], expected.argmax(axis=2)[real])
    assert (batch.decoder_target[~real] == IGNORE_INDEX).all()


def test_mixed_batches_cover_every_pair_once_from_a_few_equal_length_pieces():
    lengths = np.random.default_rng(0).integers(1, 12, size=500)
    batches = epoch_batches(lengths, 16, np.random.default_rng(1), "mixed")
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    assert [len(b) for b in batches] == [16] * 31 + [4]
    assert max(len(set(lengths[b].tolist())) for b in batches) > 1
    # A piece cut at a batch boundary may add one more length to a batch.
    assert all(len(set(lengths[b].tolist())) <= MIXED_PIECES + 1 for b in batches)
    again = epoch_batches(lengths, 16, np.random.default_rng(1), "mixed")
    assert all((a == b).all() for a, b in zip(batches, again))


def test_mixed_batches_stay_full_when_few_sources_share_a_length():
    # Paragraph-like corpus: 300 sources, almost every length different.
    lengths = np.random.default_rng(0).integers(50, 1500, size=300)
    batches = epoch_batches(lengths, 64, np.random.default_rng(1), "mixed")
    assert sorted(np.concatenate(batches).tolist()) == list(range(300))
    assert [len(b) for b in batches] == [64] * 4 + [44]


def test_length_batches_cover_every_pair_once_with_one_source_length_each():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 12, size=500)
    batches = epoch_batches(lengths, 16, np.random.default_rng(1), "length")
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(500))
    assert all(len(set(lengths[b].tolist())) == 1 and len(b) <= 16 for b in batches)
    again = epoch_batches(lengths, 16, np.random.default_rng(1), "length")
    other = epoch_batches(lengths, 16, np.random.default_rng(2), "length")
    assert all((a == b).all() for a, b in zip(batches, again))
    assert any(len(a) != len(b) or (a != b).any() for a, b in zip(batches, other))


def test_pad_to_max_batches_cover_every_pair_once():
    lengths = np.arange(1, 101)
    batches = epoch_batches(lengths, 32, np.random.default_rng(0), mode="pad_to_max")
    assert sorted(np.concatenate(batches).tolist()) == list(range(100))
    assert [len(b) for b in batches] == [32, 32, 32, 4]


def test_index_arrays_are_compact():
    vocabs = _vocabs()
    pairs = EncodedPairs.from_pairs(TOY_PAIRS, vocabs)
    assert pairs.source.ids.dtype == np.uint8
    assert pairs.source.ids.size == sum(len(s) for s, _ in TOY_PAIRS)


# ---------------------------------------------------------------- inspect-data


def test_inspect_data_json_reports_shapes_and_sizes(tmp_path, tiny_config):
    result = runner.invoke(app, ["inspect-data", str(tiny_config), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pairs_read"] == len(TOY_PAIRS) == report["pairs_kept"]
    assert sum(report["splits"].values()) == len(TOY_PAIRS)
    n, t, f = report["tensors"]["encoder_input"]["shape"]
    assert (n, t) == (len(TOY_PAIRS), max(len(s) for s, _ in TOY_PAIRS))
    assert f == report["vocabulary"]["source"]["features"]
    assert report["tensors"]["encoder_input"]["bytes"] == n * t * f * 4
    assert report["full_tensor_bytes"] == sum(x["bytes"] for x in report["tensors"].values())
    assert report["in_memory_bytes"]["total"] > 0


def test_inspect_data_counts_held_out_pairs_and_sources_seen_in_training(tmp_path, toy_corpus):
    val_path = write_tsv(tmp_path / "val.tsv", [("one", "1"), ("one", "un"), ("zero", "0")])
    config = write_config(tmp_path / "c.yaml", {"data": {"path": str(toy_corpus),
                                                         "val_path": str(val_path)}})
    result = runner.invoke(app, ["inspect-data", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split_files"] == {"val": str(val_path), "test": None}
    assert report["splits"] == {"train": len(TOY_PAIRS), "val": 3, "test": 0}
    assert report["seen_in_train"]["val"] == {"pairs": 1, "sources": 2}
    assert report["seen_in_train"]["test"] == {"pairs": 0, "sources": 0}
    table = runner.invoke(app, ["inspect-data", str(config)]).stdout
    assert "val pairs from" in table and "val: 1 pairs, 2 sources" in table


def test_inspect_data_table(tiny_config):
    result = runner.invoke(app, ["inspect-data", str(tiny_config)])
    assert result.exit_code == 0, result.output
    assert "encoder_input" in result.stdout and "training holds" in result.stdout


@pytest.mark.skipif(not FRA_ENG.exists(), reason="the shared fra-eng corpus is not present")
def test_inspect_data_on_fra_eng_10k(tmp_path):
    config = write_config(tmp_path / "c.yaml", {"data": {"path": str(FRA_ENG),
                                                         "num_samples": 10000}})
    result = runner.invoke(app, ["inspect-data", str(config), "--format", "json"])
    report = json.loads(result.stdout)
    assert report["pairs_kept"] == 10000
    assert report["full_tensor_bytes"] > 50 * report["in_memory_bytes"]["index_arrays"]
