"""dgnlib: Dendritic Gated Networks and dis-inhibitory control in JAX.

Modules (import the ones you need; importing ``dgnlib`` itself loads nothing heavy):

DGN
    ``dgn`` (model), ``dgn_train`` (online training, many networks at once), ``dgn_data``
    (scikit-learn problems), ``dgn_numpy`` (the colab's NumPy loop, reference), ``plotting``.
Dis-inhibitory control
    ``activations``, ``losses``, ``controller`` (leaky PI), ``ei_network`` (multi-layer E/I network),
    ``steady_state`` (ODE and algebraic solvers), ``learning_rules``, ``ei_training`` (training step),
    ``microcircuit`` (Fig. 3), ``student_teacher`` (Fig. 4), ``vision_data`` (offline MNIST /
    Fashion-MNIST), ``vision_training`` (whole-epoch training loops).
Infrastructure
    ``runtime`` (compilation cache), ``atomic`` (atomic file writes), ``checkpoint`` (verified
    pytree checkpoints), ``sharding`` (seeds over devices), ``sweep`` (papermill parameter sweeps on
    Dask), ``sweep_results`` (a sweep's result files, Table-1 aggregation, plots).
"""
__version__ = "0.1.0"
