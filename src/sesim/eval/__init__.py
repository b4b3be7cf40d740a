"""Evaluation: score a run's checkpoints, or two image folders, with the metrics (``sesim eval``).

- :mod:`sesim.eval.sets`: image folders, label maps and the test split of a run's dataset;
- :mod:`sesim.eval.scoring`: translating a split and scoring it, and the metrics' networks;
- :mod:`sesim.eval.multimodal`: the paper's Table 2 protocol for multi-modal runs;
- :mod:`sesim.eval.report`: best checkpoints, tables, CSV, plots, the training cost;
- :mod:`sesim.eval.run`: :func:`~sesim.eval.run.evaluate_run` and
  :func:`~sesim.eval.run.evaluate_folders`, which take an :class:`~sesim.eval.run.EvalOptions`.
"""
