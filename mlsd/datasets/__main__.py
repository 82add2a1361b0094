"""``python -m mlsd.datasets [--out DIR] [NAME ...]``: regenerate the book's data (``make data``)."""

import argparse

from mlsd.datasets import GENERATORS, data_dir, write_all


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"worlds to write (default: all of {sorted(GENERATORS)})")
    parser.add_argument("--out", default=None, help="root folder (default: the repository's data/)")
    args = parser.parse_args(argv)
    path = write_all(args.out or data_dir(), args.names or None)
    print(f"wrote {', '.join(args.names or sorted(GENERATORS))}; checksums in {path}")


if __name__ == "__main__":
    main()
