from aipass_tui.cli import main

raise SystemExit(main())
