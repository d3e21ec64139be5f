"""Run Jauge's own benchmarks one after the other and print their figures (`make bench`).

Loopback only, bounded in count and time; every bench brings up and tears down its own
database, redis-server, gunicorn and Celery worker. Other bench scripts in this folder
(banner.py, export.py, ...) run here too when they expose a main().
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCHES = ["bench.progress", "bench.webhooks"]
OPTIONAL = ["bench.banner", "bench.export", "bench.tax_receipts"]
# The webhook figures drift with the VM's speed: three rounds of each mode, medians reported.
EXTRA_ARGS = {"bench.webhooks": ["--both", "--rounds", "3"]}


def main() -> int:
    failures = 0
    names = BENCHES + [name for name in OPTIONAL if (Path(__file__).parent / f"{name.split('.')[1]}.py").exists()]
    for name in names:
        module = importlib.import_module(name)
        print(f"\n### {name} ({time.strftime('%Y-%m-%d %H:%M:%S')})", flush=True)
        saved_argv = sys.argv
        sys.argv = [f"{name}.py", *EXTRA_ARGS.get(name, [])]  # each bench's own defaults otherwise
        try:
            code = module.main()
        except Exception as exc:  # one broken bench must not hide the others' figures
            print(f"  FAILED: {exc!r}")
            code = 1
        finally:
            sys.argv = saved_argv
        failures += bool(code)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
