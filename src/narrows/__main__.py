"""``python -m narrows``: the same as the ``narrows`` command."""

from narrows.cli import main

if __name__ == "__main__":
    main()
