"""One module per subcommand; see tfsbench.cli.COMMANDS."""
