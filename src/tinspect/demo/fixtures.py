"""``make fixtures``: the small, deterministic demo logs committed under ``fixtures/``.

Read-side tests run against these instead of training: the same six models as the demo,
with fewer epochs, fewer samples and narrower convolutions, and model ids derived from the
seed so that regenerating them keeps every path stable.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tinspect.demo.train import DemoConfig, run_demo

FIXTURE_CONFIG = DemoConfig(
    epochs=3, vae_epochs=4, max_samples=48, every=1, seed=0, fixed_ids=True, conv_filters=(8, 16)
)


def main(argv: list[str]) -> None:
    target = Path(argv[0] if argv else "fixtures/digits")
    if target.exists():
        shutil.rmtree(target)
    run_demo(target, FIXTURE_CONFIG, progress=lambda line: print(line, file=sys.stderr))
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"fixtures written to {target}: {size / 1e6:.2f} MB", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
