"""The algorithms: baselines, exploration strategies, tabular learners on one compiled engine
and deep agents (our DQN, Stable-Baselines3 adapters, behavioral cloning). Each registers
itself with rlcompare.spec.registry; none knows of sweeps, stores or plots."""
