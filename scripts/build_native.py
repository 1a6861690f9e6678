"""Compile the cascade engine with mypyc into ``purpleflea.engine._cascade_native``.

    .venv/bin/python scripts/build_native.py

The engine is pure Python (``src/purpleflea/engine/cascade.py``) and stays the reference; this
builds the same source as a C extension, about twice as fast (bench/results/cascade.md).
``purpleflea.engine`` uses the extension only when it was built from the current
``cascade.py`` (the extension carries the source's SHA-256), so an edit without a rebuild falls
back to the pure engine instead of running stale code; ``PURPLEFLEA_PURE_ENGINE=1`` forces the
pure one. ``scripts/setup`` runs this after installing; without a C compiler or mypyc it says
so and the pure engine is used.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
ENGINE = SRC / "purpleflea" / "engine"
SOURCE = ENGINE / "cascade.py"
NAME = "_cascade_native"


def main() -> int:
    try:
        from mypyc.build import mypycify  # noqa: PLC0415 (optional: absent means pure engine)
        from setuptools import setup  # noqa: PLC0415
    except ImportError as exc:
        print(f"build_native: {exc}; the pure-Python cascade engine will be used", file=sys.stderr)
        return 1
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    for old in ENGINE.glob(f"{NAME}*"):
        old.unlink()
    generated = ENGINE / f"{NAME}.py"
    stamp = f'\n\nNATIVE_SOURCE_SHA256 = "{digest}"  # set by scripts/build_native.py\n'
    generated.write_bytes(source + stamp.encode())
    cwd = Path.cwd()
    try:
        with tempfile.TemporaryDirectory(prefix="purpleflea-native-") as tmp:
            # --inplace copies the extension next to its module, relative to the cwd: src/.
            os.chdir(SRC)
            setup(
                name="purpleflea-native",
                ext_modules=mypycify(
                    [str(generated.relative_to(SRC))], opt_level="3", target_dir=f"{tmp}/c"
                ),
                script_args=[
                    "-q",
                    "build_ext",
                    "--inplace",
                    "--build-temp",
                    f"{tmp}/t",
                    "--build-lib",
                    f"{tmp}/l",
                ],
            )
    except (Exception, SystemExit) as exc:  # a compiler error ends in SystemExit
        print(f"build_native: failed ({exc}); the pure-Python engine will be used", file=sys.stderr)
        for built in ENGINE.glob(f"{NAME}*"):
            built.unlink()
        return 1
    finally:
        os.chdir(cwd)
        # The source copy goes: the extension is the module (and a stale .py is never imported).
        generated.unlink(missing_ok=True)
    built = sorted(p.name for p in ENGINE.glob(f"{NAME}*"))
    print(f"build_native: {', '.join(built)} (from cascade.py sha256 {digest[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
