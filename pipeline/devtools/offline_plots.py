"""Build DVC's offline HTML template for ``dvc plots show/diff`` (``.dvc/plots/offline.html``).

DVC's default page loads Vega, Vega-Lite and vega-embed from a CDN, so the charts are
blank without internet. This template carries the three libraries inline (the versions
DVC's own page asks for, from the npm registry's packages, checked against the SHA-256
below) and a charset; ``.dvc/config`` names it (``plots.html_template``). It has no
``{scripts}`` placeholder, which is where DVC would put its CDN ``<script>`` tags.

    python -m pipeline.devtools.offline_plots            # npm pack into a temporary folder
    python -m pipeline.devtools.offline_plots --packages DIR   # use DIR/<name>-<version>.tgz

The output is committed; rebuilding it gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tarfile
import tempfile
from pathlib import Path

from pipeline.core.io import write_text

# name, version, file inside the package, SHA-256 of the npm tarball (`npm pack`)
PACKAGES = [
    ("vega", "5.20.2", "package/build/vega.min.js", "d77deab01d6104b1239228720721f93003e60797d2faced7ffdd759fa70f989d"),
    (
        "vega-lite",
        "5.2.0",
        "package/build/vega-lite.min.js",
        "f64ca4745f043447ac86b67dc9e9592ec2b85ac8b8dafc35faf970f142463e4b",
    ),
    (
        "vega-embed",
        "6.18.2",
        "package/build/vega-embed.min.js",
        "93aeee312e92077b0252ef026c0fe0ec8fa430c19825aeada6cd3a6804e68e1b",
    ),
]
OUT = Path(".dvc/plots/offline.html")

HEAD = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{refresh_tag}
<title>DVC plots</title>
<style>
body { font-family: sans-serif; }
table { border-spacing: 15px; }
</style>
<!-- Built by `python -m pipeline.devtools.offline_plots`: Vega, Vega-Lite and vega-embed
     inline (BSD-3-Clause, Copyright University of Washington Interactive Data Lab), so the
     page draws its charts without a network. -->
"""
TAIL = """</head>
<body>
{plot_divs}
</body>
</html>
"""


def fetch_packages(folder: Path) -> None:
    """``npm pack`` each package into ``folder`` (the npm registry is reachable where the web is not)."""
    specs = [f"{name}@{version}" for name, version, _, _ in PACKAGES]
    subprocess.run(["npm", "pack", "--silent", *specs], cwd=folder, check=True, capture_output=True)


def library_sources(folder: Path) -> list[tuple[str, str]]:
    """``(name@version, minified source)`` of each package, after checking its tarball's hash."""
    sources = []
    for name, version, member, sha256 in PACKAGES:
        tarball = folder / f"{name}-{version}.tgz"
        if not tarball.is_file():
            raise FileNotFoundError(f"{tarball}: missing (run `npm pack {name}@{version}` there)")
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        if digest != sha256:
            raise ValueError(f"{tarball}: SHA-256 {digest}, expected {sha256}")
        with tarfile.open(tarball) as archive:
            handle = archive.extractfile(member)
            if handle is None:
                raise ValueError(f"{tarball}:{member}: not a regular file in the package")
            source = handle.read().decode("utf-8")
        if "</script" in source.lower():
            raise ValueError(f"{tarball}:{member} contains '</script', which would end the inline script")
        sources.append((f"{name}@{version}", source))
    return sources


def build_template(sources: list[tuple[str, str]]) -> str:
    scripts = "".join(f"<!-- {label} -->\n<script>\n{source.strip()}\n</script>\n" for label, source in sources)
    return HEAD + scripts + TAIL


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=Path, help="folder with the npm tarballs (default: npm pack them)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.packages is not None:
        sources = library_sources(args.packages)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            fetch_packages(Path(tmp))
            sources = library_sources(Path(tmp))
    write_text(args.out, build_template(sources))
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
