"""``make fixtures``: the small, deterministic demo logs committed under ``fixtures/``.

Read-side tests run against these instead of training: the same six models as the demo,
with fewer epochs, fewer samples and narrower convolutions, and model ids derived from the
seed so that regenerating them keeps every path stable.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

from tinspect.demo.train import DemoConfig, run_demo

FIXTURE_CONFIG = DemoConfig(
    epochs=3,
    vae_epochs=4,
    max_samples=48,
    every=1,
    seed=0,
    fixed_ids=True,
    conv_filters=(8, 16),
    shortcut=False,
)
#: ``fixtures/shortcut``: the planted-shortcut pair with attributions at every checkpoint
#: (0, 4, 8), only the last two layers' activations (the fixture stays ~1 MB).
SHORTCUT_FIXTURE = {
    "epochs": 8,
    "max_samples": 160,
    "every": 4,
    "batch_size": 32,
    "seed": 0,
    "conv_filters": (8, 16),
    "attribution_epochs": "all",
    "layers": ["hidden", "output"],
}


def main(argv: list[str]) -> None:
    progress = lambda line: print(line, file=sys.stderr)  # noqa: E731
    if argv and argv[0] == "--shortcut":
        from tinspect.demo.shortcut import run_shortcut
        from tinspect.demo.train import _ID_NAMESPACE

        target = Path(argv[1] if len(argv) > 1 else "fixtures/shortcut")
        if target.exists():
            shutil.rmtree(target)
        ids = lambda name: uuid.uuid5(_ID_NAMESPACE, f"0/{name}").hex  # noqa: E731
        run_shortcut(target, subdir="", ids=ids, progress=progress, **SHORTCUT_FIXTURE)  # type: ignore[arg-type]
        _report(target)
        return
    target = Path(argv[0] if argv else "fixtures/digits")
    if target.exists():
        shutil.rmtree(target)
    run_demo(target, FIXTURE_CONFIG, progress=progress)
    _report(target)


def _report(target: Path) -> None:
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"fixtures written to {target}: {size / 1e6:.2f} MB", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
