"""The parts of a model description that `inference.metadata.build_meta` assembles.

Each module holds one concern: the vocabulary, where the raw values are read from, turning
one raw value into a checked one, labels, what the model's shapes fix, and the preprocessing
values that constrain each other. Callers use `inference.metadata`; nothing is re-exported here.
"""
