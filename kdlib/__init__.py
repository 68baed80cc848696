"""kdlib: the small library behind the knowledge-distillation reproduction book.

Three layers, one folder each:

- the **library** a reader could reuse: :mod:`~kdlib.data`, :mod:`~kdlib.models`,
  :mod:`~kdlib.losses`, :mod:`~kdlib.objectives` (what each method minimises),
  :mod:`~kdlib.training` (the one training loop), :mod:`~kdlib.attacks` (PGD,
  AutoAttack), :mod:`~kdlib.gradients`; and the **bookkeeping**: :mod:`~kdlib.config`
  (parameters and profiles), :mod:`~kdlib.runs` (the run abstraction),
  :mod:`~kdlib.results` (records), :mod:`~kdlib.checkpoints`, :mod:`~kdlib.paths`,
  :mod:`~kdlib.stats`, :mod:`~kdlib.report` and :mod:`~kdlib.paper` (the paper's numbers);
- :mod:`kdlib.chapters`: the experiments, one module per chapter of the book;
- :mod:`kdlib.tooling`: the book build, the job runner, the cost model and the CLI.
"""

__version__ = "0.1.0"
