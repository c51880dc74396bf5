"""The simulator stands apart from our client, and its truth matches what its routes answer."""

from __future__ import annotations

import ast
from pathlib import Path

import jofi_pipeline.simulator as simulator_package

from .conftest import get_json


def test_simulator_imports_nothing_else_from_the_package():
    for path in Path(simulator_package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
                assert node.level <= 1, f"{path.name} reaches outside the simulator with a relative import"
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("jofi_pipeline") or name.startswith("jofi_pipeline.simulator"), f"{path.name} imports {name}"


def test_truth_is_what_get_by_id_answers(simulator, mode_client):
    mode, c = mode_client
    truth = simulator.truth(mode)
    assert truth["account"] == get_json(c, "/accounts")
    for key, path in (("users", "/users"), ("teams", "/teams"), ("email_templates", "/email-templates"),
                      ("assessments", "/assessments"), ("score_profiles", "/score-profiles")):
        assert truth[key] == get_json(c, path)["data"], key
    for record in truth["invitations"][::25]:
        assert get_json(c, f"/invitations/{record['id']}") == record
    for record in truth["test_takers"][::20]:
        assert get_json(c, f"/test-takers/{record['id']}") == record
    for record in truth["career_navigation_profiles"][::20]:
        assert get_json(c, f"/career-navigation-profiles/{record['id']}") == record
