"""Mean-field theory at work: trainable depth at criticality, self-normalizing networks,
gradient confusion with width and depth."""
