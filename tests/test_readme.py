"""The README's set-up commands are exactly what CI runs, so they cannot rot."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_setup_commands_are_run_by_ci_in_order():
    readme = (ROOT / "README.md").read_text()
    commands = [b.split("```", 1)[0].strip() for b in readme.split("```bash\n")[1:3]]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    positions = [ci.index(c) for c in commands]  # ValueError: a README command CI does not run
    assert positions == sorted(positions)
