"""Data: reading corpus files, units and vocabularies, encoding, the store, batching.

The pipeline in order: ``reading`` (one path for every corpus file) -> ``units`` (text <->
units, no torch) -> ``vocabulary`` (units <-> ids) -> ``encoding`` / ``encode_files`` /
``store`` (the encoded corpus on disk) -> ``corpus`` (the split) -> ``encoded`` (index
arrays) -> ``batching`` (one-hot batches). ``report`` is inspect-data; ``unit_choice`` picks
a side's units from a corpus. Nothing here imports torch.
"""
