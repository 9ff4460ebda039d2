"""`python -m bench.profiled OUT MODULE [ARGS…]`: run a benchmark process (`python -m MODULE ARGS…`) with cProfile
switched on and off by SIGUSR2 (so start-up and warm-up stay out of the figures), and write the statistics to OUT
when it stops (SIGTERM included)."""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys


def main() -> None:
    out, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # Kleis installs its own clean shutdown over this
    profiler = cProfile.Profile()
    running = [False]

    def toggle(*_: object) -> None:  # runs in the main thread, where the event loop (and every hook) runs
        (profiler.disable if running[0] else profiler.enable)()
        running[0] = not running[0]

    signal.signal(signal.SIGUSR2, toggle)
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
