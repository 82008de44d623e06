"""`python -m ragqa` == the `ragqa` command."""

from ragqa.cli.main import main

main()
