"""The package's shape (issue 11): which subpackage may import what, how long a module may grow, how full the root is.

Read from the source with ``ast``, so an import inside a function or under ``if TYPE_CHECKING:`` counts as much
as one at the top of a module, and nothing is imported to find out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import taobao_video

PACKAGE = Path(taobao_video.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 500
MAX_ROOT_FILES = 12
# Generated media, not code: the sandbox's MP4 writer carries its box tables.
LONG_BY_NATURE = {"sandbox/mp4.py"}


def name_of(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def in_store(path: Path) -> bool:
    return name_of(path).startswith("store/")


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, wherever the statement is, with its line; ``importlib.import_module("x")``
    and ``__import__("x")`` with a literal name count too. Relative imports come back as absolute names."""
    package = ".".join(["taobao_video", *path.relative_to(PACKAGE).parent.parts])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield node.lineno, base
            for alias in node.names:  # `from taobao_video.store import schema` imports the module schema
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def imports_of(path: Path, *roots: str) -> list[str]:
    """Where ``path`` imports any of ``roots`` (a root and its submodules), as ``line: module``."""
    return [
        f"{name_of(path)}:{line}: {module}"
        for line, module in imported(path)
        if any(module == root or module.startswith(root + ".") for root in roots)
    ]


def test_the_walk_finds_the_package_and_its_imports() -> None:
    """The checks below see what they should: every subpackage, and imports wherever they are written."""
    names = {name_of(path) for path in MODULES}
    assert {"store/catalog.py", "store/items.py", "cli/main.py", "jobs/verify.py", "model.py"} <= names
    assert imports_of(PACKAGE / "store" / "migrate.py", "alembic")  # inside functions only
    assert imports_of(PACKAGE / "store" / "query.py", "sqlalchemy")  # under TYPE_CHECKING and in functions
    assert imports_of(PACKAGE / "store" / "claims.py", "taobao_video.store.items")


def test_only_store_imports_sqlalchemy_or_alembic() -> None:
    found = [hit for path in MODULES if not in_store(path) for hit in imports_of(path, "sqlalchemy", "alembic")]
    assert found == []


def test_only_storage_s3_imports_boto3() -> None:
    """The object store is one edge: boto3 and botocore (and their exceptions) stay in ``storage/s3.py``."""
    assert imports_of(PACKAGE / "storage" / "s3.py", "boto3", "botocore")
    found = [
        hit for path in MODULES if name_of(path) != "storage/s3.py" for hit in imports_of(path, "boto3", "botocore")
    ]
    assert found == []


def test_the_platform_layer_knows_nothing_of_the_catalog() -> None:
    """``top/`` talks to the platform; the catalog's ledger reaches it through a protocol (``top.apps.Ledger``)
    and the providers' memory through ``top.providers.base.VideoMemory``, never by importing ``store``."""
    top = [path for path in MODULES if name_of(path).startswith("top/")]
    assert top
    assert [hit for path in top for hit in imports_of(path, "taobao_video.store")] == []


def test_the_cli_imports_no_sqlalchemy_requests_or_tenacity() -> None:
    """The CLI is thin: it calls the library, which owns the database, the network and the retries."""
    cli = [path for path in MODULES if name_of(path).startswith("cli/")]
    assert cli
    found = [hit for path in cli for hit in imports_of(path, "sqlalchemy", "requests", "tenacity")]
    assert found == []


def test_nothing_outside_store_reaches_for_the_engine_or_the_models() -> None:
    """Outside ``store/`` the catalog is its methods and plain records: no engine (``Catalog._engine``,
    ``engine_of``), no SQLAlchemy models (``store/schema.py``) to write SQL against."""
    found = []
    for path in MODULES:
        if in_store(path):
            continue
        found += imports_of(path, "taobao_video.store.schema", "taobao_video.store.catalog.engine_of")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("engine", "_engine"):
                found.append(f"{name_of(path)}:{node.lineno}: .{node.attr}")
    assert found == []


def _length_cases() -> list[object]:
    cases = []
    for path in MODULES:
        name = name_of(path)
        if name in LONG_BY_NATURE:
            continue
        cases.append(pytest.param(path, id=name))
    return cases


@pytest.mark.parametrize("path", _length_cases())
def test_no_module_is_over_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name_of(path)} has {lines} lines: split it by job"


def test_the_exception_to_the_length_limit_exists() -> None:
    assert LONG_BY_NATURE <= {name_of(path) for path in MODULES}


def test_the_package_root_stays_small() -> None:
    files = [path.name for path in PACKAGE.iterdir() if path.is_file() and path.suffix != ".pyc"]
    assert len(files) <= MAX_ROOT_FILES, sorted(files)
