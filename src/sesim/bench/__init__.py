"""Benchmarks: translation methods compared on synthetic tasks with ground truth.

- :mod:`sesim.bench.presets`: the benchmark scales and the training config of each row;
- :mod:`sesim.bench.tasks`: the synthetic tasks' data (cached), the structure oracle and
  the colour-transfer reference;
- :mod:`sesim.bench.judges`: the segmenter and appearance network that score translations;
- :mod:`sesim.bench.jobs`: training runs (reused or continued) and the process pool;
- :mod:`sesim.bench.report`: the Markdown tables and results files both benchmarks write;
- :mod:`sesim.bench.quality`: ``sesim bench quality`` (structure and appearance, Table 3 rows);
- :mod:`sesim.bench.multimodal`: ``sesim bench multimodal`` (structure and diversity, Table 2).

The names below are re-exported for scripts (``benchmarks/*.py``) and tests.
"""

from sesim.bench.jobs import train_run
from sesim.bench.judges import (
    AppearanceNet,
    Judges,
    prepare_judges,
    score_translations,
    target_rate,
    train_appearance_net,
)
from sesim.bench.multimodal import ROWS, row_config, run_multimodal_bench
from sesim.bench.presets import (
    ALL_METHODS,
    BENCH_METHODS,
    BENCH_PRESETS,
    MAIN_METHODS,
    BenchPreset,
    available_methods,
    run_config,
)
from sesim.bench.quality import (
    DEFAULT_OUT,
    BenchArgs,
    aggregate_seeds,
    mean_and_se,
    resolve_bench_args,
    run_benchmark,
    translate_all,
)
from sesim.bench.tasks import TaskData, colour_transfer, prepare_data, structure_oracle

__all__ = [
    "ALL_METHODS",
    "BENCH_METHODS",
    "BENCH_PRESETS",
    "DEFAULT_OUT",
    "MAIN_METHODS",
    "ROWS",
    "AppearanceNet",
    "BenchArgs",
    "BenchPreset",
    "Judges",
    "TaskData",
    "aggregate_seeds",
    "available_methods",
    "colour_transfer",
    "mean_and_se",
    "prepare_data",
    "prepare_judges",
    "resolve_bench_args",
    "row_config",
    "run_benchmark",
    "run_config",
    "run_multimodal_bench",
    "score_translations",
    "structure_oracle",
    "target_rate",
    "train_appearance_net",
    "train_run",
    "translate_all",
]
