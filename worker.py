"""RQ worker entry point: `python worker.py [--burst]` (the same as `hub worker`)."""

from hub.cli import main

if __name__ == "__main__":
    main(["worker", *__import__("sys").argv[1:]])
