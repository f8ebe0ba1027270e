"""``python -m neas``: the command line, also as ``torchrun --nproc-per-node N -m neas ...``."""

from neas.cli import main

if __name__ == "__main__":
    main()
