import sys

from mnist_deploy.cli import main

sys.exit(main())
