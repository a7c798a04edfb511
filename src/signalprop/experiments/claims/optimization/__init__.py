"""Optimizers and their noise: batch size and learning rate in SGD, Adam vs Nesterov."""
