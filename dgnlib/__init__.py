"""dgnlib: Dendritic Gated Networks and dis-inhibitory control in JAX.

Two research lines, each a folder with one flat public namespace, over a few small shared modules.
Importing ``dgnlib`` itself loads nothing heavy; import the part you need::

    from dgnlib import dgn      # dgn.fit, dgn.run_many, dgn.load_problem, ...
    from dgnlib import gln      # gln.train, gln.accuracy: one-vs-all GLN / DGN classifiers (MNIST)
    from dgnlib import dic      # dic.init_params, dic.solve_open_loop, dic.train_step, ...
    from dgnlib import vision   # vision.run_benchmarks, vision.load_dataset, ...
    from dgnlib import sweep    # sweep.run_sweep, sweep.aggregate_dir (python -m dgnlib.sweep)

=======================================  ===========================================================
concept                                  module
=======================================  ===========================================================
**Dendritic Gated Networks**             :mod:`dgnlib.dgn`
  options, gating, forward pass, update    ``dgn.model`` (DGNConfig, gates, forward, predict, step)
  parameters and their initialisation      ``dgn.params`` (DGNParams, init_colab, init, init_many)
  a run's inputs, precision                ``dgn.inputs``
  compiled training of one or many nets    ``dgn.training`` (train_epoch, run, run_many)
  divergence detection                     ``dgn.divergence``
  epoch by epoch, the colab's log          ``dgn.epoch_log`` (iterate_epochs, fit)
  the notebooks' experiments               ``dgn.experiments`` (compare_weight_forms, run_seeds)
  the colab's problems, figures            ``dgn.data``, ``dgn.plotting``
  the colab's NumPy loop (reference)       ``dgn.reference``
**One-vs-all GLN / DGN classifiers**     :mod:`dgnlib.gln` (work in progress, issue 13)
  options, rate schedules, parameters      ``gln.config``, ``gln.schedule``, ``gln.params``
  preprocessing, deskewing                 ``gln.preprocess``
  forward pass, update; the online scan    ``gln.model``, ``gln.training`` (train, train_many)
  the NumPy loop (reference)               ``gln.reference``
**Dis-inhibitory control**               :mod:`dgnlib.dic`
  soft rectifiers, PI controller, loss     ``dic.activations``, ``dic.controller``, ``dic.losses``
  the multi-layer E/I network              ``dic.network``
  steady states (algebraic, ODE)           ``dic.steady_state`` over ``dic.algebraic``, ``dic.ode``,
                                           ``dic.solve_stats`` (SteadyStateError)
  learning rules (each update once)        ``dic.learning_rules``
  the one training step, evaluation        ``dic.training`` (train_step, evaluate)
  microcircuit (Fig. 3)                    ``dic.microcircuit``
  student-teacher (Fig. 4)                 ``dic.student_teacher`` (model, solve, experiment)
**Vision benchmarks** (Table 1)          :mod:`dgnlib.vision`
  MNIST / Fashion-MNIST offline            ``vision.data``, ``readers``, ``sources``, ``loading``
  device arrays, run settings              ``vision.arrays``, ``vision.config`` (TrainConfig)
  the jitted epoch of all seeds            ``vision.epoch``, ``vision.metrics``
  epochs, checkpoints, resume              ``vision.loop`` (iterate_epochs)
  data sets x rules x seeds                ``vision.run`` (run_benchmarks), ``vision.reports``
  command line                             ``python -m dgnlib.vision train | data``
**Parameter sweeps**                     :mod:`dgnlib.sweep`
  spec, grid, run directories              ``sweep.spec``
  one run (papermill), the sweep on Dask   ``sweep.execute``, ``sweep.runner``
  result files, aggregation, CLI           ``sweep.results``, ``sweep.cli``
**Shared modules**
  results as data: records, Table 1        :mod:`dgnlib.records` (summarize, format_table,
                                           write_table_csv, plot_curves)
  argument checks                          :mod:`dgnlib.checks`
  atomic file writes, JSON                 :mod:`dgnlib.atomic`
  verified pytree checkpoints              :mod:`dgnlib.checkpoint`
  seeds over devices                       :mod:`dgnlib.sharding`
  compilation cache, where a result ran    :mod:`dgnlib.runtime` (environment_info)
  values given as text (YAML 1.2, lists)   :mod:`dgnlib.textvalues`
=======================================  ===========================================================
"""
__version__ = "0.1.0"
