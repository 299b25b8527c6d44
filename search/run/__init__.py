"""A search run: launch orchestration, the Ray runtime, Tuner assembly, the checks made before
any training, the trainable and the Tune callbacks."""
