from tfsbench.cli import main

raise SystemExit(main())
