"""The LAMB paper's ResNet-50 experiments besides Table 5 (configs/lamb_resnet.py).

You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
minutes": Table 3 (table3.py), the grids of Appendix H.1 that tuned its
adaptive baselines (grid_*.py), N-LAMB and NN-LAMB (Appendix D,
nesterov_lamb.py), and LAMB without bias correction and with other trust-ratio
norms (Appendices E and F, lamb_ablations.py).
"""
