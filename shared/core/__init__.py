"""The audio-ML core: decoding, features, the model and its card, prediction, training."""
