"""``signalprop models``: list the registered model presets."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "models",
        help="list model presets",
        description="List the model presets that MODEL accepts (in spp, confusion, report "
        "and train); module:function names your own factory instead.",
        epilog="examples:\n  signalprop models\n  signalprop spp resnetv2_50 --norm bn,nf",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from signalprop.models import list_models, model_entry

    for name in list_models():
        print(f"{name:<16} {model_entry(name).description}")
    return 0
