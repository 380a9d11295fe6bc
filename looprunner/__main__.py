"""``python -m looprunner``: the command line (also how tmux starts the engine)."""

from looprunner.cli import main

if __name__ == "__main__":
    main()
