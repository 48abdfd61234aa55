"""The documentation cannot rot: its Python snippets compile and import what exists, and every
`deepfake-detect` command line it shows names a real command with real options.

The site itself is built with ``mkdocs build --strict`` in .ci/run (broken links, anchors
and API references fail there).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from deepfake_detect.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"(?:^|[\s/])deepfake-detect\s+([a-z][a-z-]*)")


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _blocks(page: Path, languages: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line number, code) of each fenced block of one of `languages`."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 2, m.group(2)) for m in FENCE.finditer(text)
            if m.group(1).lower() in languages]


def _python_snippets() -> list:
    return [pytest.param(page, line, code, id=f"{_name(page)}:{line}")
            for page in PAGES for line, code in _blocks(page, ("python", "py"))]


def _command_lines() -> list:
    """Each `deepfake-detect ...` command line of the docs: in shell blocks and inline code."""
    found: dict[str, str] = {}
    for page in PAGES:
        text = page.read_text()
        lines = []
        for _, code in _blocks(page, ("bash", "sh", "console", "shell")):
            lines += code.replace("\\\n", " ").splitlines()
        prose = FENCE.sub("", text)
        lines += INLINE.findall(prose)
        for line in lines:
            at = line.find("deepfake-detect ")
            if at >= 0 and COMMAND.search(line):
                found.setdefault(line[at:].split("#")[0].strip(), _name(page))
    return [pytest.param(line, id=f"{page}: {line}") for line, page in sorted(found.items())]


def test_docs_exist():
    assert (ROOT / "mkdocs.yml").is_file()
    assert len(PAGES) > 5, PAGES


@pytest.mark.parametrize("page, line, code", _python_snippets())
def test_python_snippets_compile_and_import_what_exists(page, line, code):
    tree = ast.parse(compile(code, f"{_name(page)}:{line}", "exec", ast.PyCF_ONLY_AST))
    beam = any(isinstance(node, ast.ImportFrom) and node.module == "deepfake_detect.beam" for node in ast.walk(tree))
    if beam and importlib.util.find_spec("apache_beam") is None:
        pytest.skip("needs the optional apache-beam (the beam extra)")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "deepfake_detect":
            module = importlib.import_module(node.module)
            missing = [a.name for a in node.names if not hasattr(module, a.name)]
            assert not missing, f"{_name(page)}:{line} imports {missing} from {node.module}, which has no such name"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "deepfake_detect":
                    importlib.import_module(alias.name)


@pytest.mark.parametrize("line", _command_lines())
def test_documented_command_lines_exist(line):
    words = shlex.split(line)[1:]
    command: click.Command = main
    path = []
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        name = words.pop(0)
        assert name in command.commands, f"`{line}`: {' '.join(['deepfake-detect', *path])} has no command {name!r}"
        command = command.commands[name]
        path.append(name)
    assert path, f"`{line}` names no command"
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    options = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("-")}
    options |= {"-h", "--help"}
    used = {w.split("=")[0] for w in words if w.startswith("-")}
    assert used <= options, f"`{line}`: {' '.join(path)} has no option {sorted(used - options)}"


def test_cli_reference_covers_every_command_and_option():
    """docs/reference/cli.md documents each command and each of its options."""
    text = (ROOT / "docs" / "reference" / "cli.md").read_text()
    missing = []
    for name, command in main.commands.items():
        if f"## {name}\n" not in text:
            missing.append(f"command {name}")
        for param in command.params:
            if isinstance(param, click.Option):
                missing += [f"{name} {opt}" for opt in param.opts if f"`{opt}" not in text and f" {opt}`" not in text]
    assert not missing, f"docs/reference/cli.md does not document: {missing}"


def test_every_registered_part_is_documented():
    """Each built-in sampler, face detector, backbone, head and aggregator is named (in
    backticks) on some page of docs/: add new parts to docs/how-to/choose-parts.md (face
    detectors: docs/face-detectors.md)."""
    listing = ("import json, deepfake_detect as dd; print(json.dumps({k: getattr(dd, 'list_' + k)() for k in "
               "('samplers', 'face_detectors', 'backbones', 'heads', 'aggregators')}))")
    # a fresh process: parts that other tests register in this one are not the library's
    out = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, check=True, timeout=300)
    parts = json.loads(out.stdout.strip().splitlines()[-1])
    text = "\n".join(p.read_text() for p in PAGES if p.is_relative_to(ROOT / "docs"))
    missing = [f"{kind[:-1]} {name}" for kind, names in parts.items() for name in names if f"`{name}`" not in text]
    assert not missing, f"registered but named on no page of docs/: {missing}"
