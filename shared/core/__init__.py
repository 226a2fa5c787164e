"""The audio-ML core, one sub-room per pipeline stage: audio, nets, serving, learning."""
