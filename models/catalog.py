"""What the app lists: installed models with their measured metrics, and built-in sample images.
"""

from __future__ import annotations

import sys

from models.analysis.catalog import markdown_table


def main(argv=None) -> int:
    print(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
