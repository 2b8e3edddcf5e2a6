import sys

from mnist_common.rollout.cli import main

sys.exit(main())
