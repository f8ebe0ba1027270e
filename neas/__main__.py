"""``python -m neas ...`` runs the command line, exactly as the ``neas`` script does."""

from neas.cli import main

if __name__ == "__main__":
    main()
