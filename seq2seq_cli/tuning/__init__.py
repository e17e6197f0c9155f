"""``seq2seq tune``, in the order a search runs: ``space`` (what a trial varies), ``study``
(Optuna: storage, sampler, pruner), ``trial`` (one trial as a child training run),
``search`` (trials side by side under the budget), ``final`` (the model it ends with) and
``leaderboard`` (every trial, best first). Optuna is the optional extra ``tune``, imported
only when a search runs."""
