"""Audio in: decoding, the door probe, and the features the networks read."""
