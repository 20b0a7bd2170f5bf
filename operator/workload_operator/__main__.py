import sys

from workload_operator.cli import main

sys.exit(main())
