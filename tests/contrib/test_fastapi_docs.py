"""What the FastAPI guide and its example promise a user who copies them."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "docs" / "guides" / "fastapi.md"


@pytest.fixture
def fresh_app_logger() -> Iterator[None]:
    """The guide's snippet runs as in a new process: the "app" logger has no level yet."""
    logger = logging.getLogger("app")
    saved = logger.level
    logger.setLevel(logging.NOTSET)
    yield
    logger.setLevel(saved)


@pytest.mark.usefixtures("fresh_app_logger")
async def test_the_guides_first_snippet_writes_its_info_lines(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    source = blocks[0].replace('"app.log"', repr(str(tmp_path / "app.log")))
    namespace: dict[str, object] = {"__name__": "guide_snippet"}
    exec(compile(source, str(GUIDE), "exec"), namespace)
    app = namespace["app"]
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/items/3")).json() == {"n": 3}
    assert (tmp_path / "app.log").read_text() == "item 3\n"


def test_the_documented_factory_needs_no_http_client() -> None:
    """``uvicorn --factory examples.fastapi_app:config_app`` with the [fastapi] extra alone."""
    script = (
        "import sys; sys.modules['httpx'] = None; "  # as if httpx were not installed
        f"sys.path.insert(0, {str(ROOT / 'examples')!r}); "
        "import fastapi_app; print(type(fastapi_app.config_app()).__name__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.stdout == "FastAPI\n", proc.stderr


def test_the_fastapi_extra_brings_what_the_documented_setup_imports() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = {
        re.split(r"[<>=\[ ]", req)[0].lower() for req in project["optional-dependencies"]["fastapi"]
    }
    # uvicorn reads the YAML --log-config of the guide and examples/ with PyYAML
    assert {"fastapi", "uvicorn", "pyyaml"} <= extra
