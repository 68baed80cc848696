"""The tooling around the chapters: building the book (:mod:`~kdlib.tooling.book`), running a
profile's runs in parallel (:mod:`~kdlib.tooling.jobs`), what a profile costs
(:mod:`~kdlib.tooling.costs`) and the command line (:mod:`~kdlib.tooling.cli`)."""
