"""Entry point for ``python -m seq2seq_cli`` (and ``torchrun -m seq2seq_cli``)."""

from seq2seq_cli.cli import main

if __name__ == "__main__":
    main()
