"""Provider modules (Claude, Codex, Copilot) behind one small interface."""
