"""``signalprop models``: list the registered model presets."""

from __future__ import annotations

import argparse
from typing import Any

from signalprop.cli._common import HelpFormatter


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "models",
        help="list model presets",
        description="List the model presets that --model accepts.",
        epilog="example:\n  signalprop models",
        formatter_class=HelpFormatter,
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from signalprop.models import list_models, model_entry

    for name in list_models():
        print(f"{name:<16} {model_entry(name).description}")
    return 0
