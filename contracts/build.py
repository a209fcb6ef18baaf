"""Compile the Solidity sources into the committed artifacts: ``python -m contracts.build``.

The compiler is the npm package ``solc`` pinned in ``contracts/package.json`` (install it with
``npm ci --prefix contracts``); ``contracts/compile.js`` drives it through the node API with
standard-JSON input.  Artifacts (ABI, bytecode, compiler version, settings, sha256 of the sources)
land in ``contracts/build/<Contract>.json`` and are committed, so running the project needs no
compiler.  ``python -m contracts.build --check`` recompiles into a temporary folder and exits 1
when the committed artifacts differ from what the sources compile to.
"""
import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_DIR = HERE / "build"
COMPILE_SCRIPT = HERE / "compile.js"
SOLC_PACKAGE = HERE / "node_modules" / "solc"


def sources() -> list[Path]:
    """The Solidity sources, in the order ``compile.js`` reads them."""
    return sorted(HERE.glob("*.sol"), key=lambda p: p.name)


def sources_sha256() -> str:
    """The digest over every source that ``compile.js`` writes as ``sourcesSha256``."""
    lines = "".join(f"{p.name}\n{hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in sources())
    return hashlib.sha256(lines.encode()).hexdigest()


def compiler_missing() -> str | None:
    """Why the compiler cannot run here, or None when node and the pinned solc are installed."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not SOLC_PACKAGE.is_dir():
        return f"{SOLC_PACKAGE} is absent (run `npm ci --prefix contracts`)"
    return None


def compile_to(out_dir: Path) -> list[Path]:
    """Compile every source into ``out_dir``; return the artifact paths written."""
    missing = compiler_missing()
    if missing:
        raise RuntimeError(f"cannot compile the contracts: {missing}")
    done = subprocess.run(["node", str(COMPILE_SCRIPT), str(out_dir)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"solc failed:\n{done.stderr}")
    if done.stderr:
        print(done.stderr, file=sys.stderr, end="")
    return [Path(line) for line in done.stdout.split()]


def stale_artifacts() -> list[str]:
    """Names of committed artifacts that differ from a fresh compilation (missing or extra ones too)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: json.loads(p.read_text()) for p in compile_to(Path(tmp))}
    committed = {p.name: json.loads(p.read_text()) for p in BUILD_DIR.glob("*.json")}
    return sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="recompile into a temporary folder and fail if contracts/build/ differs")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_artifacts()
        if stale:
            print(f"stale artifacts (run `python -m contracts.build`): {', '.join(stale)}", file=sys.stderr)
            return 1
        print("contracts/build/ matches the sources")
        return 0
    for path in compile_to(BUILD_DIR):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
