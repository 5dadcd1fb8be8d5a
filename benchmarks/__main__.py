from benchmarks.polling import main

raise SystemExit(main())
