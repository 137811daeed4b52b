"""Many runs: sweeps over a grid, SLO searches, and the load generator's self-benchmark."""
