#!/usr/bin/env python3
"""Kleis: a self-hosted OAuth account proxy for coding agents. Entry point and CLI."""

import sys

from cli import main

if __name__ == "__main__":
    sys.exit(main())
