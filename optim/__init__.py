"""Optimizers and learning-rate schedules of the two papers, and today's
optimizers through optax (NAdamW, Lion, Schedule-Free SGD and AdamW, Muon)."""

from optim.optimizers import create_optimizer
from optim.optimizers import optimizer_names
from optim.optimizers import param_group_labels
from optim.schedule_free import evaluation_params
from optim.schedules import create_learning_rate_fn
from optim.trust_ratios import layer_trust_ratios
