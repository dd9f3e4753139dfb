"""Generate the Python code of the public contract into OUT_DIR (default: the repository root).

CI runs this into a temporary folder and compares it with the checked-in code under ownership/.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = [
    "ownership/v1/ledger.proto",
    "ownership/v1/query.proto",
    "ownership/v1/audit.proto",
]


def main(out_dir: Path) -> int:
    well_known = resources.files("grpc_tools") / "_proto"
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *PROTOS,
    ]
    status = protoc.main(args)
    for package in ("ownership", "ownership/v1"):
        init = out_dir / package / "__init__.py"
        if not init.exists():
            init.write_text(
                '"""Generated from proto/ by scripts/generate_protos.py; do not edit."""\n'
            )
    return int(status)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT))
