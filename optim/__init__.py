"""Optimizers and learning-rate schedules of the two papers."""

from optim.optimizers import create_optimizer
from optim.optimizers import optimizer_names
from optim.optimizers import param_group_labels
from optim.schedules import create_learning_rate_fn
from optim.trust_ratios import layer_trust_ratios
