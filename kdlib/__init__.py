"""kdlib: the small library behind the knowledge-distillation reproduction book.

Modules, one concern each: `config` (chapter parameters and profiles), `data`,
`models`, `losses`, `training` (the one training loop), `checkpoints`,
`results` (JSON records), `stats`, `report`, `paper` (the paper's numbers),
`gradients` (per-layer gradient statistics), `mnist_kd` and `omitted_digit` (the
MNIST runs), `cifar_kd` (the ResNet runs of Tables 3-4 and Figure 2), `jobs`
(runs in parallel: processes or SLURM), `costs` (what a profile costs) and
`book` (papermill and Jupyter Book).
"""

__version__ = "0.1.0"
