"""`python -m VEZEPyEmail.services.srs rotate`: a new SRS signing secret (see rotate.py)."""

from __future__ import annotations

import argparse

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.srs.rotate import KEPT_EARLIER_SECRETS, rotate
from VEZEPyEmail.services.srs.service import key_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m VEZEPyEmail.services.srs")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "rotate",
        help=f"sign with a new secret; keep {KEPT_EARLIER_SECRETS} earlier ones for bounces",
    )
    parser.parse_args(argv)
    path = key_path(EmailSettings())
    kept = rotate(path)
    print(f"{path}: new signing secret; {kept} earlier kept for returning bounces.")
    print("Restart the Email processes (web and SMTP) to sign with it.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
