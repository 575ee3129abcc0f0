"""Print the readings' design (`make readings` does, before it runs): how many readings, how the covering array
came to its size, and every reading's values.

    PYTHONPATH=workflow/scripts .venv/bin/python -m tools.readings_design [--configfile config/ci.yaml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from qtlmnist import readings
from qtlmnist.config import ConfigError, check_consistency, check_schema, with_defaults

ROOT = Path(__file__).resolve().parents[1]


def load(configfile: Path | None) -> dict:
    """config/config.yaml with `configfile` merged over it, checked as the workflow checks it."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    if configfile is not None:
        config = with_defaults(yaml.safe_load(configfile.read_text()) or {}, config)
    check_schema(config, ROOT / "workflow/schemas/config.schema.yaml")
    check_consistency(config)
    return config


def describe(config: dict) -> str:
    size = readings.design_size(config)
    lines = [
        f"readings: {size['readings']} (a strength-2 covering array of {size['covering_array']}, the lower bound "
        f"being {size['lower_bound']}, plus {size['readings'] - size['covering_array']} for the additive fit's "
        f"{size['coefficients']} coefficients; the full factorial has {size['full_factorial']})"
    ]
    for i, row in enumerate(readings.design(config), start=1):
        lines.append(f"  {i:3d}  {readings.describe(row)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", type=Path, default=None, help="merged over config/config.yaml")
    args = parser.parse_args(argv)
    try:
        print(describe(load(args.configfile)))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
