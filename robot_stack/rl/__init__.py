"""RLIF learning core: reward labelling, vision replay buffer, RLPD-style SAC, baselines."""
