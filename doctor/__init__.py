"""`tfsbench doctor`: checks a target and the client machine and says what to fix. Measures nothing."""
