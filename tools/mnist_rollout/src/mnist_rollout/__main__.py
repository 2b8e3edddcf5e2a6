import sys

from mnist_rollout.cli import main

sys.exit(main())
