"""`python -m registry.cli`: the same as the `iscc-registry` command."""

from registry.cli import main

main()
