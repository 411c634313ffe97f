"""`python -m setu`: the same command line as `setu`."""

from setu.cli import main

main()
