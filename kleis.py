#!/usr/bin/env python3
"""Kleis: a self-hosted OAuth account proxy for coding agents. Entry point: the CLI, with the admin beside `serve`."""

import sys

from admin.serving import start_admin
from cli import main

if __name__ == "__main__":
    sys.exit(main(start_admin=start_admin))
