"""`kleis.py accounts login|import <provider>`: each provider's login and import commands, by provider name."""

from __future__ import annotations

import argparse
from types import ModuleType

from cli.logins import claude, codex, copilot
from core.enums import ProviderName

# name -> module with register_login(subparsers) and register_import(subparsers)
LOGIN_COMMANDS: dict[str, ModuleType] = {ProviderName.CLAUDE: claude, ProviderName.CODEX: codex, ProviderName.COPILOT: copilot}


def register(
    login_sub: argparse._SubParsersAction[argparse.ArgumentParser],
    import_sub: argparse._SubParsersAction[argparse.ArgumentParser],
    available: list[str],
) -> None:
    for name in available:
        module = LOGIN_COMMANDS.get(name)
        if module is not None:
            module.register_login(login_sub)
            module.register_import(import_sub)
