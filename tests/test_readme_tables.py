"""README figures come from the scripts that measure them: a table a script writes is embedded verbatim.

A script writes its table to `benchmarks/results/<name>.md` (with the commit it measured); the README holds
it between `<!-- from benchmarks/results/<name>.md -->` and `<!-- end of benchmarks/results/<name>.md -->`.
This test never runs a script (they take minutes): it fails when the README and the script's last
committed output differ, so a re-measured table cannot be left out of the README, nor edited by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- from (benchmarks/results/[\w.-]+\.md) -->\n(.*?)<!-- end of \1 -->", re.S)


def embedded() -> dict[str, str]:
    return {path: text for path, text in BLOCK.findall((REPO / "README.md").read_text())}


def test_every_script_table_in_the_readme_is_its_last_output():
    blocks = embedded()
    assert "benchmarks/results/table8_arm.md" in blocks  # Table 8 in Arm instructions
    for path, text in blocks.items():
        assert (REPO / path).is_file(), f"README embeds {path}, which no script has written"
        assert text == (REPO / path).read_text(), f"README's copy of {path} differs from the script's output"


def test_every_script_output_is_in_the_readme_and_says_when_it_was_measured():
    blocks = embedded()
    for path in sorted((REPO / "benchmarks" / "results").glob("*.md")):
        name = path.relative_to(REPO).as_posix()
        assert name in blocks, f"{name} is not embedded in README.md"
        assert re.search(r"on commit [0-9a-f]{7,40} \(\d{4}-\d{2}-\d{2}\)", path.read_text()), name
