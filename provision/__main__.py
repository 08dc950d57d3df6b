"""`python -m provision` is the same as the `forge` command."""

from provision.cli.main import main

if __name__ == "__main__":
    main()
