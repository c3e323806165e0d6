"""nerve: train neural NER taggers and analyse them neuron by neuron."""

__version__ = "0.1.0"
# Bumped whenever the checkpoint layout changes; checkpoints record it.
FORMAT_VERSION = 1
