"""kdlib: the small library behind the knowledge-distillation reproduction book.

Modules, one concern each: `config` (chapter parameters and profiles), `data`,
`models`, `losses`, `training` (the one training loop), `checkpoints`,
`results` (JSON records), `stats`, `report`, `paper` (the paper's numbers),
`mnist_kd` (the MNIST runs) and `book` (papermill and Jupyter Book).
"""

__version__ = "0.1.0"
