import sys

from invoicer.service import main

sys.exit(main())
